package database

import (
	"testing"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
)

var topics = kafka.DefaultTopics()

// Through the processor: a held secondary is not readable, the primary
// registers both, a redelivered command changes nothing, and the reader
// serves the table.
func TestProcessorAndReader(t *testing.T) {
	h := aggregatetest.Run(t, topics, topics.DatabaseCommands, NewProcessor, NewMetrics(prometheus.NewRegistry()))
	view, err := NewView(nil, topics, goka.WithViewTester(h.Tester))
	if err != nil {
		t.Fatal(err)
	}
	aggregatetest.GoRun(t, view.Run)
	r := NewReader(view)

	h.Send(t, register("c1", instance("h2", "10", HealthPassing, "Secondary")))
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("a held secondary emitted %v", evs)
	}
	if got, err := r.Get(dbID); got != nil || err != nil {
		t.Fatalf("pending database readable: %v, %v", got, err)
	}
	primary := register("c2", instance("h1", "10", HealthPassing, "Primary"))
	h.Send(t, primary)
	evs := h.Drain(t)
	if len(evs) != 3 || evs[0].GetDatabaseRegistered() == nil || evs[2].GetVersion() != 3 {
		t.Fatalf("registration emitted %v", evs)
	}
	h.Send(t, primary)
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("redelivery emitted %v", evs)
	}
	got, err := r.Get(dbID)
	if err != nil || !proto.Equal(got, evs[2].GetState().GetDatabase()) {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if got, err := r.Get("nope"); got != nil || err != nil {
		t.Fatalf("Get(nope) = %v, %v", got, err)
	}
}
