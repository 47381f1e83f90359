package cluster

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const clusterID = "47d1190ffb4f781974c8356d7f863b03"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtureDetails are the details and discovered health the DC's discovery
// of a real Trento fixture yields.
func fixtureDetails(t *testing.T, path string) (*fleetv1.ClusterDetails, *fleetv1.ClusterDiscoveredHealth) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/trento/" + path)
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Payload json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	p, err := payload.DecodeHACluster(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Details()
	return d, payload.DiscoveredHealth(d)
}

var seq int

func command(body any) *fleetv1.Command {
	seq++
	c := &fleetv1.Command{
		CommandId: "c" + strings.Repeat("x", seq%3) + time.Duration(seq).String(), AggregateId: clusterID,
		IssuedAt: timestamppb.New(t0.Add(time.Duration(seq) * time.Second)), TraceId: "trace",
	}
	switch b := body.(type) {
	case *fleetv1.RegisterOnlineClusterHost:
		c.Body = &fleetv1.Command_RegisterOnlineClusterHost{RegisterOnlineClusterHost: b}
	case *fleetv1.RegisterOfflineClusterHost:
		c.Body = &fleetv1.Command_RegisterOfflineClusterHost{RegisterOfflineClusterHost: b}
	case *fleetv1.DeregisterClusterHost:
		c.Body = &fleetv1.Command_DeregisterClusterHost{DeregisterClusterHost: b}
	case *fleetv1.MarkClusterHostStale:
		c.Body = &fleetv1.Command_MarkClusterHostStale{MarkClusterHostStale: b}
	case *fleetv1.UpdateChecksHealth:
		c.Body = &fleetv1.Command_UpdateClusterChecksHealth{UpdateClusterChecksHealth: b}
	case *fleetv1.RegisterHost:
		c.Body = &fleetv1.Command_RegisterHost{RegisterHost: b}
	}
	return c
}

func online(host, name string) *fleetv1.Command {
	return command(&fleetv1.RegisterOnlineClusterHost{HostId: host, ClusterName: "hana_cluster", HostName: name})
}

func dcOnline(t *testing.T, host, name, fixture string) *fleetv1.Command {
	d, h := fixtureDetails(t, fixture)
	return command(&fleetv1.RegisterOnlineClusterHost{
		HostId: host, ClusterName: "hana_cluster", HostName: name, DesignatedController: true, Details: d, DiscoveredHealth: h,
	})
}

// apply runs decide and checks what every decision promises: current
// untouched, the named events in order with consecutive versions from
// current's, each stamped from cmd and carrying the state after it, and
// the state written exactly when accepted.
func apply(t *testing.T, current *fleetv1.Cluster, cmd *fleetv1.Command, outcome aggregate.Outcome, events ...string) *fleetv1.Cluster {
	t.Helper()
	before := proto.CloneOf(current)
	d := decide(current, cmd)
	if !proto.Equal(current, before) {
		t.Fatal("decide modified the current state")
	}
	if d.Outcome != outcome {
		t.Errorf("outcome %s, want %s (events %v)", d.Outcome, outcome, names(d.Events))
	}
	if got := names(d.Events); !slices.Equal(got, events) {
		t.Errorf("events %v, want %v", got, events)
	}
	for i, e := range d.Events {
		want := current.GetVersion() + uint64(i) + 1
		if outcome == aggregate.Rejected {
			want = current.GetVersion()
		}
		if e.GetVersion() != want || e.GetAggregateId() != clusterID || e.GetCommandId() != cmd.GetCommandId() || e.GetAggregateType() != AggregateType {
			t.Errorf("%s: envelope %v, want version %d of command %s", aggregate.EventName(e), e, want, cmd.GetCommandId())
		}
		if outcome != aggregate.Rejected && e.GetState().GetCluster().GetVersion() != e.GetVersion() {
			t.Errorf("%s carries state version %d", aggregate.EventName(e), e.GetState().GetCluster().GetVersion())
		}
	}
	if (d.State != nil) != (outcome == aggregate.Accepted) {
		t.Errorf("state written: %v", d.State)
	}
	if d.State == nil {
		return current
	}
	if n := len(d.Events); n > 0 && !proto.Equal(d.Events[n-1].GetState().GetCluster(), d.State) {
		t.Error("the last event does not carry the state written")
	}
	return d.State
}

func names(events []*fleetv1.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, aggregate.EventName(e))
	}
	return out
}

func TestUnknownClusterAcceptsOnlyRegistration(t *testing.T) {
	for _, body := range []any{
		&fleetv1.DeregisterClusterHost{HostId: "h1"},
		&fleetv1.MarkClusterHostStale{HostId: "h1", Stale: true},
		&fleetv1.UpdateChecksHealth{Health: "passing"},
		&fleetv1.RegisterHost{Details: &fleetv1.HostDetails{Hostname: "x"}},
	} {
		cmd := command(body)
		apply(t, nil, cmd, aggregate.Rejected, "CommandRejected")
		if r := decide(nil, cmd).Events[0].GetCommandRejected(); !strings.Contains(r.GetReason(), "not registered") {
			t.Errorf("%s: reason %q", aggregate.CommandName(cmd), r.GetReason())
		}
	}
	apply(t, nil, command(&fleetv1.RegisterOnlineClusterHost{ClusterName: "x"}), aggregate.Rejected, "CommandRejected")
}

func TestFirstHostRegistersTheCluster(t *testing.T) {
	c := apply(t, nil, online("h2", "node02"), aggregate.Accepted, "ClusterRegistered", "HostAddedToCluster")
	want := &fleetv1.ClusterHost{HostId: "h2", Name: "node02", Online: true}
	if c.GetName() != "hana_cluster" || c.GetType() != payload.ClusterTypeUnknown || c.GetHealth() != payload.HealthUnknown ||
		len(c.GetHosts()) != 1 || !proto.Equal(c.GetHosts()[0], want) || c.GetDetails() != nil || c.GetDcHostId() != "" {
		t.Fatalf("cluster %v", c)
	}
	// Only the DC's discovery sets details: a non-DC's are ignored.
	d, h := fixtureDetails(t, "discovery/ha_cluster_discovery_hana_scale_up.json")
	apply(t, c, command(&fleetv1.RegisterOnlineClusterHost{HostId: "h2", ClusterName: "other", HostName: "node02", Details: d, DiscoveredHealth: h}), aggregate.Noop)

	c = apply(t, c, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json"), aggregate.Accepted,
		"ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	if c.GetType() != payload.ClusterTypeHanaScaleUp || c.GetDcHostId() != "h1" || c.GetHealth() != payload.HealthPassing ||
		c.GetDetails().GetSystemReplication().GetSecondarySyncState() != "SOK" || len(c.GetHosts()) != 2 || c.GetHosts()[0].GetHostId() != "h1" {
		t.Fatalf("after the DC: %v", c)
	}
	// The same discovery again changes nothing.
	apply(t, c, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json"), aggregate.Noop)
	apply(t, c, online("h2", "node02"), aggregate.Noop)
}

func TestDCRegisteringANewClusterSetsEverything(t *testing.T) {
	c := apply(t, nil, dcOnline(t, "h1", "node01", "scenarios/hana-cluster-details/9cd46919-5f19-59aa-993e-cf3736c71053_ha_cluster_discovery_sbd_unhealthy.json"),
		aggregate.Accepted, "ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	if c.GetHealth() != payload.HealthCritical || c.GetDiscoveredHealth().GetSbd() != payload.HealthCritical || c.GetDiscoveredHealth().GetReplication() != payload.HealthPassing {
		t.Fatalf("an unhealthy SBD device: health %s %v", c.GetHealth(), c.GetDiscoveredHealth())
	}
	// The DC's next discovery: replication fails, SBD is fine again.
	c = apply(t, c, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_angi_hana_scale_up_failover.json"),
		aggregate.Accepted, "ClusterDetailsChanged")
	if c.GetHealth() != payload.HealthCritical || c.GetDiscoveredHealth().GetReplication() != payload.HealthCritical || c.GetDetails().GetArchitecture() != payload.ArchitectureAngi {
		t.Fatalf("after failover: %s %v", c.GetHealth(), c.GetDiscoveredHealth())
	}
	c = apply(t, c, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_angi_hana_scale_up.json"),
		aggregate.Accepted, "ClusterDetailsChanged", "ClusterHealthChanged")
	if c.GetHealth() != payload.HealthPassing {
		t.Fatalf("recovered: %s", c.GetHealth())
	}
}

// Two nodes were DC one after the other; their reports race through
// different partitions. The newest report wins in either delivery order.
func TestAnOlderDCReportDoesNotOverwriteANewerOne(t *testing.T) {
	older := dcOnline(t, "h2", "node02", "scenarios/hana-cluster-details/9cd46919-5f19-59aa-993e-cf3736c71053_ha_cluster_discovery_sbd_unhealthy.json")
	newer := dcOnline(t, "h1", "node01", "scenarios/hana-cluster-details/b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_vmware_provider.json")

	inOrder := apply(t, nil, older, aggregate.Accepted, "ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	inOrder = apply(t, inOrder, newer, aggregate.Accepted, "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")

	late := apply(t, nil, newer, aggregate.Accepted, "ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	late = apply(t, late, older, aggregate.Accepted, "HostAddedToCluster")
	for _, c := range []*fleetv1.Cluster{inOrder, late} {
		if c.GetDcHostId() != "h1" || c.GetDiscoveredHealth().GetSbd() != payload.HealthPassing || c.GetDetails().GetProvider() != "vmware" {
			t.Errorf("DC %s, SBD %s, provider %s: want the newer report's h1, passing, vmware", c.GetDcHostId(), c.GetDiscoveredHealth().GetSbd(), c.GetDetails().GetProvider())
		}
	}
	if len(late.GetHosts()) != 2 {
		t.Errorf("the older report's host was not added: %v", late.GetHosts())
	}
}

func TestUnnamedDCKeepsTheName(t *testing.T) {
	c := apply(t, nil, online("h2", "node02"), aggregate.Accepted, "ClusterRegistered", "HostAddedToCluster")
	d, h := fixtureDetails(t, "discovery/ha_cluster_discovery_unnamed.json")
	c = apply(t, c, command(&fleetv1.RegisterOnlineClusterHost{HostId: "h1", HostName: "node01", DesignatedController: true, Details: d, DiscoveredHealth: h}),
		aggregate.Accepted, "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	if c.GetName() != "hana_cluster" {
		t.Errorf("name %q", c.GetName())
	}
}

func TestHostGoesOfflineAndBack(t *testing.T) {
	c := apply(t, nil, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json"), aggregate.Accepted,
		"ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	offline := command(&fleetv1.RegisterOfflineClusterHost{HostId: "h1", ClusterName: "hana_cluster", HostName: "node01"})
	c = apply(t, c, offline, aggregate.Accepted, "ClusterHostStatusChanged")
	if c.GetHosts()[0].GetOnline() || c.GetDetails() == nil {
		t.Fatalf("offline: %v", c)
	}
	apply(t, c, command(&fleetv1.RegisterOfflineClusterHost{HostId: "h1", ClusterName: "hana_cluster", HostName: "node01"}), aggregate.Noop)
	c = apply(t, c, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json"), aggregate.Accepted, "ClusterHostStatusChanged")
	if !c.GetHosts()[0].GetOnline() {
		t.Fatal("not online again")
	}
	// A host first seen offline joins as an offline member.
	c = apply(t, c, command(&fleetv1.RegisterOfflineClusterHost{HostId: "h3", HostName: "node03"}), aggregate.Accepted, "HostAddedToCluster")
	if e := decide(c, command(&fleetv1.RegisterOfflineClusterHost{HostId: "h4"})).Events[0].GetHostAddedToCluster(); e.GetOnline() {
		t.Error("offline host added online")
	}
}

func TestStaleHostDoesNotMakeTheClusterCritical(t *testing.T) {
	c := apply(t, nil, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json"), aggregate.Accepted,
		"ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	stale := command(&fleetv1.MarkClusterHostStale{HostId: "h1", Stale: true})
	c = apply(t, c, stale, aggregate.Accepted, "ClusterHostStaleChanged")
	if !c.GetHosts()[0].GetStale() || c.GetHealth() != payload.HealthPassing {
		t.Fatalf("stale: %v", c)
	}
	apply(t, c, command(&fleetv1.MarkClusterHostStale{HostId: "h1", Stale: true}), aggregate.Noop)
	apply(t, c, command(&fleetv1.MarkClusterHostStale{HostId: "not-a-member", Stale: true}), aggregate.Noop)
	c = apply(t, c, command(&fleetv1.MarkClusterHostStale{HostId: "h1"}), aggregate.Accepted, "ClusterHostStaleChanged")
	if c.GetHosts()[0].GetStale() {
		t.Fatal("still stale")
	}
}

func TestChecksHealth(t *testing.T) {
	c := apply(t, nil, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_ascs_ers.json"), aggregate.Accepted,
		"ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	if c.GetType() != payload.ClusterTypeAscsErs || c.GetHealth() != payload.HealthPassing || c.GetDiscoveredHealth().GetReplication() != payload.HealthUnknown {
		t.Fatalf("ASCS/ERS: %v", c)
	}
	c = apply(t, c, command(&fleetv1.UpdateChecksHealth{Health: "warning"}), aggregate.Accepted, "ClusterChecksHealthChanged", "ClusterHealthChanged")
	if c.GetHealth() != payload.HealthWarning || c.GetChecksHealth() != payload.HealthWarning {
		t.Fatalf("checks warning: %v", c)
	}
	apply(t, c, command(&fleetv1.UpdateChecksHealth{Health: "warning"}), aggregate.Noop)
	// Checks not evaluated any more: the discovered sub-healths rule again.
	c = apply(t, c, command(&fleetv1.UpdateChecksHealth{Health: "unknown"}), aggregate.Accepted, "ClusterChecksHealthChanged", "ClusterHealthChanged")
	if c.GetHealth() != payload.HealthPassing {
		t.Fatalf("checks unknown: %s", c.GetHealth())
	}
	apply(t, c, command(&fleetv1.UpdateChecksHealth{Health: "bad"}), aggregate.Rejected, "CommandRejected")
}

func TestHealthIsTheWorstEvaluatedSubHealth(t *testing.T) {
	for _, tt := range []struct {
		repl, dist, sbd, checks, want string
	}{
		{"unknown", "unknown", "unknown", "unknown", "unknown"},
		{"passing", "unknown", "unknown", "unknown", "passing"},
		{"passing", "unknown", "critical", "unknown", "critical"},
		{"unknown", "passing", "passing", "warning", "warning"},
		{"critical", "passing", "passing", "passing", "critical"},
	} {
		c := &fleetv1.Cluster{ChecksHealth: tt.checks, DiscoveredHealth: &fleetv1.ClusterDiscoveredHealth{Replication: tt.repl, Distribution: tt.dist, Sbd: tt.sbd}}
		if got := Health(c); got != tt.want {
			t.Errorf("%+v: %s", tt, got)
		}
	}
}

func TestLastHostLeavingTombstonesAndRegistrationRestores(t *testing.T) {
	c := apply(t, nil, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json"), aggregate.Accepted,
		"ClusterRegistered", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	c = apply(t, c, online("h2", "node02"), aggregate.Accepted, "HostAddedToCluster")
	apply(t, c, command(&fleetv1.DeregisterClusterHost{HostId: "not-a-member"}), aggregate.Noop)

	c = apply(t, c, command(&fleetv1.DeregisterClusterHost{HostId: "h1"}), aggregate.Accepted, "HostRemovedFromCluster")
	if len(c.GetHosts()) != 1 || c.GetDcHostId() != "" || c.GetDeregistered() {
		t.Fatalf("after the DC left: %v", c)
	}
	c = apply(t, c, command(&fleetv1.DeregisterClusterHost{HostId: "h2"}), aggregate.Accepted, "HostRemovedFromCluster", "ClusterDeregistered", "ClusterTombstoned")
	if !c.GetDeregistered() || len(c.GetHosts()) != 0 {
		t.Fatalf("tombstoned: %v", c)
	}
	apply(t, c, command(&fleetv1.DeregisterClusterHost{HostId: "h2"}), aggregate.Noop)
	apply(t, c, command(&fleetv1.MarkClusterHostStale{HostId: "h2", Stale: true}), aggregate.Noop)
	apply(t, c, command(&fleetv1.UpdateChecksHealth{Health: "critical"}), aggregate.Rejected, "CommandRejected")

	c = apply(t, c, online("h2", "node02"), aggregate.Accepted, "ClusterRestored", "HostAddedToCluster")
	if c.GetDeregistered() || len(c.GetHosts()) != 1 {
		t.Fatalf("restored: %v", c)
	}
}

func TestDCRestoringATombstonedCluster(t *testing.T) {
	c := apply(t, nil, online("h2", "node02"), aggregate.Accepted, "ClusterRegistered", "HostAddedToCluster")
	c = apply(t, c, command(&fleetv1.DeregisterClusterHost{HostId: "h2"}), aggregate.Accepted, "HostRemovedFromCluster", "ClusterDeregistered", "ClusterTombstoned")
	c = apply(t, c, dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_out.json"), aggregate.Accepted,
		"ClusterRestored", "ClusterDetailsChanged", "HostAddedToCluster", "ClusterHealthChanged")
	if c.GetType() != payload.ClusterTypeHanaScaleOut || c.GetHealth() != payload.HealthPassing {
		t.Fatalf("restored by the DC: %v", c)
	}
}
