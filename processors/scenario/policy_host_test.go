package scenario

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

func TestHostPolicyRegistersThenUpdatesOnlyChangedFields(t *testing.T) {
	raw := fixture(t, "discovery/host_discovery.json")
	state := new(fleetv1.ScenarioState)

	cmds, out, err := hostPolicy(state, discovery(payload.HostDiscovery, raw, collectedAt))
	if err != nil || out != outcomeCommands || len(cmds) != 1 {
		t.Fatalf("first discovery: %v %v %v", cmds, out, err)
	}
	if got := cmds[0].GetRegisterHost().GetDetails(); !proto.Equal(got, fixtureDetails(t)) {
		t.Fatalf("RegisterHost details %v", got)
	}
	if !state.HostRegistered || !proto.Equal(state.Host, fixtureDetails(t)) {
		t.Fatalf("state after register: %v", state)
	}

	changed := modified(t, raw, map[string]any{"cpu_count": 4, "ip_addresses": []string{"10.1.1.4"}})
	cmds, out, err = hostPolicy(state, discovery(payload.HostDiscovery, changed, collectedAt))
	if err != nil || out != outcomeCommands || len(cmds) != 1 {
		t.Fatalf("changed discovery: %v %v %v", cmds, out, err)
	}
	u := cmds[0].GetUpdateHostDetails()
	want := &fleetv1.UpdateHostDetails{
		Details:       &fleetv1.HostDetails{CpuCount: 4, IpAddresses: []string{"10.1.1.4"}},
		ChangedFields: []string{"cpu_count", "ip_addresses"},
	}
	if !proto.Equal(u, want) {
		t.Fatalf("UpdateHostDetails = %v, want %v", u, want)
	}
	if state.Host.CpuCount != 4 || state.Host.Hostname != "suse" {
		t.Fatalf("state after update: %v", state.Host)
	}
}

func TestHostPolicyFieldRemovedIsSentAsCleared(t *testing.T) {
	state := &fleetv1.ScenarioState{HostRegistered: true, Host: fixtureDetails(t)}
	cmds, _, err := hostPolicy(state, discovery(payload.HostDiscovery, fixture(t, "discovery/host_discovery_without_arch.json"), collectedAt))
	if err != nil {
		t.Fatal(err)
	}
	// host_discovery_without_arch.json also lacks systemd_units.
	want := &fleetv1.UpdateHostDetails{Details: &fleetv1.HostDetails{}, ChangedFields: []string{"arch", "systemd_units"}}
	if len(cmds) != 1 || !proto.Equal(cmds[0].GetUpdateHostDetails(), want) {
		t.Fatalf("commands %v, want one %v", cmds, want)
	}
}

func TestHostPolicyMalformedLeavesStateAlone(t *testing.T) {
	state := &fleetv1.ScenarioState{HostRegistered: true, Host: fixtureDetails(t)}
	before := proto.CloneOf(state)
	_, _, err := hostPolicy(state, discovery(payload.HostDiscovery, []byte(`{"hostname": 7}`), collectedAt))
	if r, ok := errors.AsType[*rejection](err); !ok || r.reason != reasonMalformedPayload {
		t.Fatalf("err = %v, want a malformed_payload rejection", err)
	}
	if !proto.Equal(state, before) {
		t.Fatalf("state changed: %v", state)
	}
}
