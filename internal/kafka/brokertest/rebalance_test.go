package brokertest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// A second host-processor instance joins a running one while commands
// keep arriving, takes half the partitions (recovering their tables from
// the changelog), and leaves again; the first takes everything back. Every
// command's event appears exactly once, with per-host versions in order:
// nothing is lost or duplicated across either rebalance.
func TestHostProcessorRebalance(t *testing.T) {
	e := newEnv(t, 4)
	group := e.topics.Group(kafka.HostGroup)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := start(t, "instance A", e.hostProcessor(t, regA).Run)

	// A steady stream: each tick registers a new host and updates the one
	// registered `behind` ticks earlier, so updates often reach a
	// partition's new owner, which must know the host from the table.
	const behind = 10
	ctx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	var mu sync.Mutex
	var sent []*fleetv1.Command
	sendErr := make(chan error, 1)
	var hosts int
	go func() {
		defer close(sendErr)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			cmds := []*fleetv1.Command{register(hostID(i), i, 2)}
			if i >= behind {
				cmds = append(cmds, updateCPUs(hostID(i-behind), i, 4))
			}
			if err := e.send(context.Background(), cmds...); err != nil {
				sendErr <- err
				return
			}
			mu.Lock()
			sent = append(sent, cmds...)
			hosts = i + 1
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	processed := func(reg *prometheus.Registry) float64 {
		return counter(t, reg, "fleetstream_host_commands_total", nil)
	}
	eventually(t, 60*time.Second, "instance A processes commands", func() error {
		if n := processed(regA); n < 20 {
			return fmt.Errorf("%v processed", n)
		}
		return nil
	})

	b := start(t, "instance B", e.hostProcessor(t, regB).Run)
	e.waitForMembers(t, group, 2)
	eventually(t, 60*time.Second, "instance B processes commands", func() error {
		if n := processed(regB); n < 20 {
			return fmt.Errorf("%v processed", n)
		}
		return nil
	})
	aBefore := processed(regA)
	b.stop(t)
	e.waitForMembers(t, group, 1)
	eventually(t, 60*time.Second, "instance A processes commands after B left", func() error {
		if n := processed(regA); n < aBefore+40 {
			return fmt.Errorf("%v processed, %v before B left", n, aBefore)
		}
		return nil
	})
	stopSending()
	if err := <-sendErr; err != nil {
		t.Fatalf("send: %v", err)
	}
	// The hosts registered last get their update too.
	for i := max(hosts-behind, 0); i < hosts; i++ {
		c := updateCPUs(hostID(i), i+behind, 4)
		if err := e.send(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, c)
	}
	e.caughtUp(t, group)
	a.stop(t)

	events := e.events(t)
	byCommand := map[string]int{}
	versions := map[string][]uint64{}
	for _, ev := range events {
		byCommand[ev.GetCommandId()]++
		if r := ev.GetCommandRejected(); r != nil {
			t.Errorf("command %s for %s rejected: %s", ev.GetCommandId(), ev.GetAggregateId(), r.GetReason())
		}
		versions[ev.GetAggregateId()] = append(versions[ev.GetAggregateId()], ev.GetVersion())
	}
	for _, c := range sent {
		if n := byCommand[c.GetCommandId()]; n != 1 {
			t.Errorf("command %s (%s of %s) has %d events, want exactly 1", c.GetCommandId(), commandKind(c), c.GetAggregateId(), n)
		}
	}
	if len(events) != len(sent) {
		t.Errorf("%d events for %d commands", len(events), len(sent))
	}
	for id, vs := range versions {
		if !slices.Equal(vs, []uint64{1, 2}) {
			t.Errorf("host %s has versions %v in the event store, want [1 2]", id, vs)
		}
	}
	if len(versions) != hosts {
		t.Errorf("events name %d hosts, %d registered", len(versions), hosts)
	}
	t.Logf("%d commands for %d hosts; instance A processed %v, B %v", len(sent), hosts, processed(regA), processed(regB))
}

func commandKind(c *fleetv1.Command) string {
	if c.GetRegisterHost() != nil {
		return "RegisterHost"
	}
	return "UpdateHostDetails"
}

// waitForMembers waits until the broker reports group stable with n
// members that split every partition of the group's input between them.
func (e *env) waitForMembers(t *testing.T, group string, n int) {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("group %s stable with %d members", group, n), func() error {
		described, err := e.adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return err
		}
		g := described[group]
		if g.Err != nil {
			return g.Err
		}
		if g.State != "Stable" || len(g.Members) != n {
			return fmt.Errorf("%s with %d members", g.State, len(g.Members))
		}
		var owned []int32
		for _, m := range g.Members {
			c, ok := m.Assigned.AsConsumer()
			if !ok {
				return fmt.Errorf("member %s has no consumer assignment", m.MemberID)
			}
			var mine []int32
			for _, tp := range c.Topics {
				if tp.Topic == e.topics.HostCommands {
					mine = append(mine, tp.Partitions...)
				}
			}
			if len(mine) == 0 {
				return fmt.Errorf("member %s owns no partition", m.MemberID)
			}
			owned = append(owned, mine...)
		}
		slices.Sort(owned)
		want := make([]int32, e.topics.Partitions)
		for i := range want {
			want[i] = int32(i)
		}
		if !slices.Equal(owned, want) {
			return fmt.Errorf("partitions owned %v, want each of %v once", owned, want)
		}
		return nil
	})
}
