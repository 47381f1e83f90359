package brokertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// A host processor that restarts without its local storage (a new pod)
// rebuilds its table from the changelog topic: it answers for every host
// the old instance knew, recognises repeated registrations as nothing
// new, and continues each host's versions where they were.
func TestHostProcessorRecoversTableFromChangelog(t *testing.T) {
	e := newEnv(t, 4)
	group := e.topics.Group(kafka.HostGroup)
	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	first := start(t, "first instance", e.hostProcessor(t, nil).Run)
	var cmds []*fleetv1.Command
	for i := range n {
		cmds = append(cmds, register(hostID(i), 1, 2), updateCPUs(hostID(i), 2, 4))
	}
	if err := e.send(ctx, cmds...); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, group)
	first.stop(t)
	before := e.events(t)
	if len(before) != 2*n {
		t.Fatalf("%d events before the restart, want %d", len(before), 2*n)
	}

	reg := prometheus.NewRegistry()
	p := e.hostProcessor(t, reg)
	start(t, "second instance", p.Run)
	if err := p.WaitForReadyContext(ctx); err != nil {
		t.Fatalf("second instance not ready: %v", err)
	}
	for i := range n {
		id := hostID(i)
		var h *fleetv1.Host
		// Ready means recovered, but ask until the partition is assigned.
		eventually(t, 30*time.Second, "the second instance answers for "+id, func() error {
			v, err := p.Get(id)
			if err != nil {
				return err
			}
			if h, _ = v.(*fleetv1.Host); h == nil {
				return fmt.Errorf("no host %s in the table (%T)", id, v)
			}
			return nil
		})
		if h.GetVersion() != 2 || h.GetDetails().GetCpuCount() != 4 || h.GetDetails().GetHostname() != id {
			t.Fatalf("recovered host %s: version %d, details %v", id, h.GetVersion(), h.GetDetails())
		}
	}

	cmds = cmds[:0]
	for i := range n {
		cmds = append(cmds, register(hostID(i), 3, 4), updateCPUs(hostID(i), 4, 8))
	}
	if err := e.send(ctx, cmds...); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, group)
	if noops := counter(t, reg, "fleetstream_host_commands_total", map[string]string{"outcome": "noop"}); noops != n {
		t.Errorf("%v repeated registrations were no-ops, want %d", noops, n)
	}
	second := map[string]bool{}
	for _, c := range cmds {
		second[c.GetCommandId()] = true
	}
	all := e.events(t)
	if len(all) != len(before)+n {
		t.Fatalf("%d events after the restart, want %d (one update per host)", len(all)-len(before), n)
	}
	seen := map[string]bool{}
	for _, ev := range before {
		seen[ev.GetEventId()] = true
	}
	for _, ev := range all {
		if !second[ev.GetCommandId()] {
			continue
		}
		if ev.GetHostDetailsUpdated() == nil || ev.GetVersion() != 3 || ev.GetHostDetailsUpdated().GetDetails().GetCpuCount() != 8 {
			t.Errorf("event after the restart for %s: version %d, %v", ev.GetAggregateId(), ev.GetVersion(), ev.GetPayload())
		}
		if seen[ev.GetEventId()] {
			t.Errorf("event id %s of %s reused after the restart", ev.GetEventId(), ev.GetAggregateId())
		}
		seen[ev.GetEventId()] = true
	}
}
