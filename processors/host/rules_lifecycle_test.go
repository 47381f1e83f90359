package host

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const timeout = 15 * time.Second

// lost is beating() after a sweep found its heartbeat lost.
func lost() *fleetv1.Host {
	h := beating()
	h.Heartbeat, h.Health, h.Version = HealthCritical, HealthCritical, 5
	return h
}

// gone is lost() deregistered at t2.
func gone() *fleetv1.Host {
	h := lost()
	h.Deregistered, h.DeregisteredAt, h.UpdatedAt, h.Version = true, ts(t2), ts(t2), 6
	return h
}

func TestHeartbeatSweep(t *testing.T) {
	tests := []struct {
		name    string
		current *fleetv1.Host
		cmd     *fleetv1.Command
		want    aggregatetest.Want
		check   func(t *testing.T, d decision)
	}{
		{name: "within the timeout", current: beating(), cmd: sweep("s1", t1.Add(timeout), timeout),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "past the timeout", current: beating(), cmd: sweep("s1", t1.Add(timeout+time.Millisecond), timeout),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HeartbeatFailed", "HostHealthChanged"}, Versions: []uint64{4, 5}},
			check: func(t *testing.T, d decision) {
				want := lost()
				want.UpdatedAt = ts(t1.Add(timeout + time.Millisecond))
				if !proto.Equal(d.State, want) {
					t.Errorf("state\n%v\nwant\n%v", d.State, want)
				}
				if !d.Events[0].GetHeartbeatFailed().GetLastHeartbeatAt().AsTime().Equal(t1) {
					t.Errorf("HeartbeatFailed %v", d.Events[0].GetHeartbeatFailed())
				}
			}},
		{name: "already lost", current: lost(), cmd: sweep("s2", t2.Add(time.Hour), timeout),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "never beat", current: registered(), cmd: sweep("s2", t2.Add(time.Hour), timeout),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "not registered", cmd: sweep("s2", t2, timeout),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "deregistered", current: gone(), cmd: sweep("s2", t2.Add(time.Hour), timeout),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "a heartbeat after the loss", current: lost(), cmd: heartbeatAt("c9", t2),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HeartbeatSucceeded", "HostHealthChanged"}, Versions: []uint64{6, 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := aggregatetest.Decide(t, decide, tt.current, tt.cmd, tt.want)
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestDeregistration(t *testing.T) {
	tests := []struct {
		name    string
		current *fleetv1.Host
		cmd     *fleetv1.Command
		want    aggregatetest.Want
		check   func(t *testing.T, d decision)
	}{
		{name: "alive host", current: beating(), cmd: deregister("d1", t2),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 3},
			check: func(t *testing.T, d decision) {
				if r := d.Events[0].GetCommandRejected().GetReason(); !strings.Contains(r, "host h1 is alive (last heartbeat at 2026-03-01T12:01:00Z)") {
					t.Errorf("reason %q", r)
				}
			}},
		{name: "unknown host", cmd: deregister("d1", t2),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}}},
		{name: "lost host", current: lost(), cmd: deregister("d1", t2),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HostDeregistered"}, Version: 6},
			check: func(t *testing.T, d decision) {
				if !proto.Equal(d.State, gone()) {
					t.Errorf("state\n%v\nwant\n%v", d.State, gone())
				}
			}},
		{name: "never beat", current: registered(), cmd: deregister("d1", t2),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HostDeregistered"}, Version: 2}},
		{name: "deregistered twice", current: gone(), cmd: deregister("d2", t2),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 6}},
		{name: "heartbeat of a deregistered host", current: gone(), cmd: heartbeatAt("c9", t2.Add(time.Minute)),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 6},
			check: func(t *testing.T, d decision) {
				if r := d.Events[0].GetCommandRejected().GetReason(); !strings.Contains(r, "deregistered: only RegisterHost") {
					t.Errorf("reason %q", r)
				}
			}},
		{name: "details of a deregistered host", current: gone(), cmd: update("c9", t2, &fleetv1.HostDetails{CpuCount: 4}, "cpu_count"),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 6}},
		{name: "register restores", current: gone(), cmd: register("c9", t2.Add(time.Minute), sampleDetails()),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HostRestored"}, Version: 7},
			check: func(t *testing.T, d decision) {
				if d.State.Deregistered || d.State.DeregisteredAt != nil || !proto.Equal(d.Events[0].GetHostRestored().GetDetails(), sampleDetails()) {
					t.Errorf("state %v, event %v", d.State, d.Events[0])
				}
				// Live again: a heartbeat is accepted.
				aggregatetest.Decide(t, decide, d.State, heartbeatAt("c10", t2.Add(2*time.Minute)),
					aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HeartbeatSucceeded", "HostHealthChanged"}, Versions: []uint64{8, 9}})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := aggregatetest.Decide(t, decide, tt.current, tt.cmd, tt.want)
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}
