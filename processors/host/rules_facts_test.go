package host

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func withBody(id string, at time.Time, set func(c *fleetv1.Command)) *fleetv1.Command {
	c := command(id, at)
	set(c)
	return c
}

func provider(id string, p *fleetv1.HostProvider) *fleetv1.Command {
	return withBody(id, t2, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_UpdateProvider{UpdateProvider: &fleetv1.UpdateProvider{Provider: p}}
	})
}

func subscriptions(id string, subs ...*fleetv1.SlesSubscription) *fleetv1.Command {
	return withBody(id, t2, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_UpdateSlesSubscriptions{UpdateSlesSubscriptions: &fleetv1.UpdateSlesSubscriptions{Subscriptions: subs}}
	})
}

func saptune(id string, s *fleetv1.SaptuneStatus) *fleetv1.Command {
	return withBody(id, t2, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_UpdateSaptuneStatus{UpdateSaptuneStatus: &fleetv1.UpdateSaptuneStatus{Status: s}}
	})
}

func checks(id, h string) *fleetv1.Command {
	return withBody(id, t2, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_UpdateHostChecksHealth{UpdateHostChecksHealth: &fleetv1.UpdateChecksHealth{Health: h}}
	})
}

func sweep(id string, at time.Time, timeout time.Duration) *fleetv1.Command {
	return withBody(id, at, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_SweepHeartbeat{SweepHeartbeat: &fleetv1.SweepHeartbeat{At: ts(at), Timeout: durationpb.New(timeout)}}
	})
}

func deregister(id string, at time.Time) *fleetv1.Command {
	return withBody(id, at, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_DeregisterHost{DeregisterHost: &fleetv1.DeregisterHost{At: ts(at)}}
	})
}

func tuned(state string) *fleetv1.SaptuneStatus {
	return &fleetv1.SaptuneStatus{Installed: true, PackageVersion: "3.1.0", Tuning: &fleetv1.SaptuneTuning{TuningState: state}}
}

var kvm = &fleetv1.HostProvider{Provider: "kvm"}

func TestHostFacts(t *testing.T) {
	withProvider := registered()
	withProvider.Provider = kvm
	sub := &fleetv1.SlesSubscription{Identifier: "SLES_SAP", Version: "15.3"}
	withSubs := registered()
	withSubs.SlesSubscriptions = []*fleetv1.SlesSubscription{sub}
	withSaptune := beating()
	withSaptune.SaptuneStatus, withSaptune.SaptuneHealth = tuned(TuningCompliant), HealthPassing

	tests := []struct {
		name     string
		current  *fleetv1.Host
		cmd      *fleetv1.Command
		want     aggregatetest.Want
		check    func(t *testing.T, d decision)
		noHealth bool
	}{
		{name: "provider of an unknown host", cmd: provider("c1", kvm),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}}},
		{name: "first provider", current: registered(), cmd: provider("c2", kvm),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"ProviderUpdated"}, Version: 2},
			check: func(t *testing.T, d decision) {
				if !proto.Equal(d.State.Provider, kvm) || !proto.Equal(d.Events[0].GetProviderUpdated().GetProvider(), kvm) {
					t.Errorf("state %v, event %v", d.State.Provider, d.Events[0])
				}
			}},
		{name: "same provider", current: withProvider, cmd: provider("c3", &fleetv1.HostProvider{Provider: "kvm"}),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "provider changes", current: withProvider, cmd: provider("c3", &fleetv1.HostProvider{Provider: "vmware"}),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"ProviderUpdated"}, Version: 2}},
		{name: "no provider", current: registered(), cmd: provider("c3", nil),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 1}},
		{name: "first subscriptions", current: registered(), cmd: subscriptions("c2", sub),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"SlesSubscriptionsUpdated"}, Version: 2}},
		{name: "same subscriptions", current: withSubs, cmd: subscriptions("c3", proto.CloneOf(sub)),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "subscriptions gone", current: withSubs, cmd: subscriptions("c3"),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"SlesSubscriptionsUpdated"}, Version: 2},
			check: func(t *testing.T, d decision) {
				if len(d.State.SlesSubscriptions) != 0 {
					t.Errorf("subscriptions %v", d.State.SlesSubscriptions)
				}
			}},
		{name: "saptune not compliant on a beating host", current: beating(), cmd: saptune("c4", tuned(TuningNotCompliant)),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"SaptuneStatusUpdated", "HostHealthChanged"}, Versions: []uint64{4, 5}},
			check: func(t *testing.T, d decision) {
				if u := d.Events[0].GetSaptuneStatusUpdated(); u.GetSaptuneHealth() != HealthCritical || u.GetStatus().GetTuning().GetTuningState() != TuningNotCompliant {
					t.Errorf("SaptuneStatusUpdated %v", u)
				}
				if hc := d.Events[1].GetHostHealthChanged(); hc.GetHealth() != HealthCritical || hc.GetPrevious() != HealthPassing {
					t.Errorf("HostHealthChanged %v", hc)
				}
				if d.State.Health != HealthCritical || d.State.SaptuneHealth != HealthCritical {
					t.Errorf("health %s, saptune %s", d.State.Health, d.State.SaptuneHealth)
				}
			}},
		{name: "saptune compliant on a beating host: health stays", current: beating(), cmd: saptune("c4", tuned(TuningCompliant)),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"SaptuneStatusUpdated"}, Version: 4}},
		{name: "same saptune status", current: withSaptune, cmd: saptune("c5", tuned(TuningCompliant)),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "saptune uninstalled: not evaluated", current: withSaptune, cmd: saptune("c5", &fleetv1.SaptuneStatus{}),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"SaptuneStatusUpdated"}, Version: 4},
			check: func(t *testing.T, d decision) {
				if d.State.SaptuneHealth != HealthUnknown || d.State.Health != HealthPassing {
					t.Errorf("saptune %s, health %s", d.State.SaptuneHealth, d.State.Health)
				}
			}},
		{name: "saptune without status", current: registered(), cmd: saptune("c5", nil),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 1}},
		{name: "checks warning", current: withSaptune, cmd: checks("c6", HealthWarning),
			want: aggregatetest.Want{Outcome: aggregate.Accepted, Events: []string{"HostChecksHealthChanged", "HostHealthChanged"}, Versions: []uint64{4, 5}},
			check: func(t *testing.T, d decision) {
				if d.State.ChecksHealth != HealthWarning || d.State.Health != HealthWarning {
					t.Errorf("checks %s, health %s", d.State.ChecksHealth, d.State.Health)
				}
			}},
		{name: "checks unchanged", current: withSaptune, cmd: checks("c6", HealthUnknown),
			want: aggregatetest.Want{Outcome: aggregate.Noop}},
		{name: "checks health not a health", current: withSaptune, cmd: checks("c6", "green"),
			want: aggregatetest.Want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}, Version: 3}},
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

func TestSaptuneHealth(t *testing.T) {
	for _, tt := range []struct {
		status *fleetv1.SaptuneStatus
		want   string
	}{
		{nil, HealthUnknown},
		{&fleetv1.SaptuneStatus{Installed: false}, HealthUnknown},
		{&fleetv1.SaptuneStatus{Installed: true, PackageVersion: "3.0.0"}, HealthUnknown}, // no JSON status: unsupported
		{tuned(TuningCompliant), HealthPassing},
		{tuned(TuningNotTuned), HealthWarning},
		{tuned(TuningNotCompliant), HealthCritical},
		{tuned("something new"), HealthUnknown},
	} {
		if got := saptuneHealth(tt.status); got != tt.want {
			t.Errorf("saptuneHealth(%v) = %s, want %s", tt.status, got, tt.want)
		}
	}
}

func TestHealthIgnoresUnknownSubHealths(t *testing.T) {
	for _, tt := range []struct {
		heartbeat, saptune, checks, want string
	}{
		{"", "", "", HealthUnknown},
		{HealthUnknown, HealthUnknown, HealthUnknown, HealthUnknown},
		{HealthPassing, HealthUnknown, HealthUnknown, HealthPassing},
		{HealthUnknown, HealthWarning, HealthUnknown, HealthWarning},
		{HealthPassing, HealthWarning, HealthCritical, HealthCritical},
		{HealthCritical, HealthPassing, HealthPassing, HealthCritical},
	} {
		h := &fleetv1.Host{Heartbeat: tt.heartbeat, SaptuneHealth: tt.saptune, ChecksHealth: tt.checks}
		if got := health(h); got != tt.want {
			t.Errorf("health(%s, %s, %s) = %s, want %s", tt.heartbeat, tt.saptune, tt.checks, got, tt.want)
		}
	}
}
