package scenario

import (
	"slices"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Resource commands go to the cloud_resource topic keyed by resource key,
// never to the host topic.
func TestResourceCommandsAreRoutedToTheirAggregate(t *testing.T) {
	h := run(t)
	cloud := h.tt.NewQueueTracker(topics.CloudResourceCommands)
	next := func() (goka.Headers, string, *fleetv1.Command, bool) {
		headers, key, value, ok := cloud.NextWithHeaders()
		if !ok {
			return nil, "", nil, false
		}
		return headers, key, value.(*fleetv1.Command), true
	}

	h.send(t, chunk(t, "c1", 0, 1, true, collectedAt, sampleInstances()...), "trace-c1")
	var keys []string
	for {
		headers, key, cmd, ok := next()
		if !ok {
			break
		}
		if key != cmd.GetAggregateId() || cmd.GetDiscoverResource() == nil || cmd.GetTraceId() != "trace-c1" {
			t.Fatalf("command keyed %q: %v", key, cmd)
		}
		if string(headers[kafka.HeaderSchema]) != "fleetstream.v1.Command" {
			t.Errorf("headers %v", headers)
		}
		keys = append(keys, key)
	}
	if want := []string{"aws:111122223333:i-1", "aws:111122223333:i-2", "aws:111122223333:i-3"}; !slices.Equal(keys, want) {
		t.Fatalf("commands for %v, want %v", keys, want)
	}
	h.noCommand(t) // nothing on the host topic

	h.send(t, chunk(t, "c2", 0, 1, true, collectedAt.Add(time.Minute), sampleInstances()[1:]...), "")
	_, key, cmd, ok := next()
	if !ok || key != "aws:111122223333:i-1" || cmd.GetDeleteResource().GetCollectionId() != "c2" {
		t.Fatalf("after i-1 disappeared: %q %v", key, cmd)
	}
	if _, _, cmd, ok := next(); ok {
		t.Fatalf("unexpected %v", cmd)
	}
	state := h.tt.TableValue(scenarioTable, collectionKey).(*fleetv1.ScenarioState)
	if len(state.GetResources().GetFingerprints()) != 2 || state.GetHostRegistered() {
		t.Fatalf("table value %v", state)
	}
}
