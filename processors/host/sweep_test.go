package host

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A host that misses its heartbeats is found by the sweep (a goka visitor
// over the processor's partitions) and gets HeartbeatFailed; its next
// heartbeat restores it.
func TestSweepFailsLostHeartbeats(t *testing.T) {
	h := run(t)
	cfg := HeartbeatConfig{Interval: 5 * time.Second, Missed: 2}
	ctx := context.Background()

	h.Send(t, register("c1", t0, sampleDetails()))
	h.Send(t, heartbeatAt("c2", t1))
	if evs := h.Drain(t); len(evs) != 3 {
		t.Fatalf("register and first heartbeat emitted %v", evs)
	}

	visited, err := SweepOnce(ctx, h.Processor, t1.Add(cfg.Timeout()), cfg)
	if err != nil || visited != 1 {
		t.Fatalf("sweep visited %d hosts: %v", visited, err)
	}
	h.Tester.Catchup()
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("a sweep within the timeout emitted %v", evs)
	}

	at := t1.Add(cfg.Timeout() + time.Second)
	if _, err := SweepOnce(ctx, h.Processor, at, cfg); err != nil {
		t.Fatal(err)
	}
	h.Tester.Catchup()
	evs := h.Drain(t)
	if len(evs) != 2 || evs[0].GetHeartbeatFailed() == nil || evs[1].GetHostHealthChanged().GetHealth() != HealthCritical {
		t.Fatalf("the sweep past the timeout emitted %v", evs)
	}
	failed := evs[0]
	if !failed.GetHeartbeatFailed().GetLastHeartbeatAt().AsTime().Equal(t1) || !failed.OccurredAt.AsTime().Equal(at) || failed.Version != 4 {
		t.Errorf("HeartbeatFailed %v", failed)
	}
	// The command id derives from the host and the sweep time only.
	if want := uuid.NewSHA1(sweepNamespace, []byte("heartbeat/h1/1772366476000000000")).String(); failed.CommandId != want {
		t.Errorf("command id %s, want %s", failed.CommandId, want)
	}
	if got := tableHost(h, hostID); got.Heartbeat != HealthCritical || got.Health != HealthCritical {
		t.Fatalf("table after the sweep: %v", got)
	}

	// Sweeping again changes nothing.
	if _, err := SweepOnce(ctx, h.Processor, at.Add(time.Minute), cfg); err != nil {
		t.Fatal(err)
	}
	h.Tester.Catchup()
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("a second sweep emitted %v", evs)
	}

	h.Send(t, heartbeatAt("c3", at.Add(time.Minute)))
	evs = h.Drain(t)
	if len(evs) != 2 || evs[0].GetHeartbeatSucceeded() == nil || evs[1].GetHostHealthChanged().GetHealth() != HealthPassing {
		t.Fatalf("the heartbeat after the failure emitted %v", evs)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	for _, tt := range []struct {
		cfg  HeartbeatConfig
		want time.Duration
	}{
		{HeartbeatConfig{}, 15 * time.Second},
		{HeartbeatConfig{Interval: time.Second, Missed: 1}, 2 * time.Second},
		{HeartbeatConfig{Interval: 10 * time.Second, Missed: 3}, 40 * time.Second},
	} {
		if got := tt.cfg.Timeout(); got != tt.want {
			t.Errorf("%+v: timeout %v, want %v", tt.cfg, got, tt.want)
		}
	}
}
