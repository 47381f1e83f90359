package scenario

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

func commandNames(cmds []*fleetv1.Command) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, aggregate.CommandName(c))
	}
	return out
}

// Every cloud fixture yields its provider, once.
func TestCloudPolicyOnFixtures(t *testing.T) {
	files, err := filepath.Glob(fixtures + "discovery/cloud_discovery_*.json")
	if err != nil || len(files) != 7 {
		t.Fatalf("cloud fixtures %v (%v)", files, err)
	}
	more, _ := filepath.Glob(fixtures + "scenarios/*/*_cloud_discovery*.json")
	for _, f := range append(files, more...) {
		rel, _ := filepath.Rel(fixtures, f)
		raw := fixture(t, rel)
		state := &fleetv1.ScenarioState{HostRegistered: true}
		cmds, out, err := cloudPolicy(state, discovery(payload.CloudDiscovery, raw, collectedAt))
		if err != nil || out != outcomeCommands || len(cmds) != 1 {
			t.Errorf("%s: %v %v %v", rel, commandNames(cmds), out, err)
			continue
		}
		p := cmds[0].GetUpdateProvider().GetProvider()
		want, _ := payload.DecodeProvider(raw)
		if !proto.Equal(p, want) || !proto.Equal(state.Provider, want) || p.GetProvider() == "" {
			t.Errorf("%s: provider %v, state %v", rel, p, state.Provider)
		}
		// Same facts, other bytes: nothing to send.
		cmds, out, err = cloudPolicy(state, discovery(payload.CloudDiscovery, modified(t, raw, nil), collectedAt))
		if err != nil || out != outcomeNoDifference || len(cmds) != 0 {
			t.Errorf("%s again: %v %v %v", rel, commandNames(cmds), out, err)
		}
	}
}

func TestCloudPolicyProviderChanges(t *testing.T) {
	state := &fleetv1.ScenarioState{HostRegistered: true}
	if _, _, err := cloudPolicy(state, discovery(payload.CloudDiscovery, fixture(t, "discovery/cloud_discovery_aws.json"), collectedAt)); err != nil {
		t.Fatal(err)
	}
	cmds, out, err := cloudPolicy(state, discovery(payload.CloudDiscovery, fixture(t, "discovery/cloud_discovery_kvm.json"), collectedAt))
	if err != nil || out != outcomeCommands || !proto.Equal(cmds[0].GetUpdateProvider().GetProvider(), &fleetv1.HostProvider{Provider: "kvm"}) {
		t.Fatalf("%v %v %v", cmds, out, err)
	}
	before := proto.CloneOf(state)
	_, _, err = cloudPolicy(state, discovery(payload.CloudDiscovery, []byte(`{"Provider": "aws", "Metadata": {"data_disk_number": "x"}}`), collectedAt))
	if rejectionReason(err) != reasonMalformedPayload || !proto.Equal(state, before) {
		t.Fatalf("malformed: %v, state %v", err, state)
	}
}

func TestSubscriptionPolicyOnFixtures(t *testing.T) {
	files, _ := filepath.Glob(fixtures + "scenarios/*/*_subscription_discovery*.json")
	files = append(files, fixtures+"discovery/subscriptions_discovery.json")
	for _, f := range files {
		rel, _ := filepath.Rel(fixtures, f)
		raw := fixture(t, rel)
		state := &fleetv1.ScenarioState{HostRegistered: true}
		cmds, out, err := subscriptionPolicy(state, discovery(payload.SubscriptionDiscovery, raw, collectedAt))
		want, _ := payload.DecodeSubscriptions(raw)
		if err != nil || out != outcomeCommands || len(cmds) != 1 || len(want) == 0 ||
			!slices.EqualFunc(cmds[0].GetUpdateSlesSubscriptions().GetSubscriptions(), want, func(a, b *fleetv1.SlesSubscription) bool { return proto.Equal(a, b) }) {
			t.Errorf("%s: %v %v %v", rel, cmds, out, err)
			continue
		}
		cmds, out, _ = subscriptionPolicy(state, discovery(payload.SubscriptionDiscovery, raw, collectedAt))
		if out != outcomeNoDifference || len(cmds) != 0 {
			t.Errorf("%s again: %v %v", rel, commandNames(cmds), out)
		}
	}
	// All subscriptions gone is a change too.
	state := &fleetv1.ScenarioState{HostRegistered: true}
	subscriptionPolicy(state, discovery(payload.SubscriptionDiscovery, fixture(t, "discovery/subscriptions_discovery.json"), collectedAt))
	cmds, out, err := subscriptionPolicy(state, discovery(payload.SubscriptionDiscovery, []byte("[]"), collectedAt))
	if err != nil || out != outcomeCommands || len(cmds[0].GetUpdateSlesSubscriptions().GetSubscriptions()) != 0 {
		t.Fatalf("emptied: %v %v %v", cmds, out, err)
	}
}

// saptune's status carries a publish time that changes at every run: an
// unchanged status sends no command, through detect and its fingerprint.
func TestSaptunePolicyIgnoresPublishTime(t *testing.T) {
	const dir = "scenarios/hosts-overview/9cd46919-5f19-59aa-993e-cf3736c71053_saptune_discovery_"
	raw := fixture(t, dir+"compliant.json")
	state := &fleetv1.ScenarioState{HostRegistered: true}
	res, err := detect(state, discovery(payload.SaptuneDiscovery, raw, collectedAt), testOrigin)
	if err != nil || res.outcome != outcomeCommands || len(res.commands) != 1 {
		t.Fatalf("first: %+v %v", res, err)
	}
	if s := res.commands[0].GetUpdateSaptuneStatus().GetStatus(); s.GetTuning().GetTuningState() != "compliant" || !s.GetInstalled() {
		t.Fatalf("status %v", s)
	}
	later := bytes.Replace(raw, []byte("2023-04-24 12:41:56.612"), []byte("2023-04-24 12:56:56.610"), 1)
	if bytes.Equal(later, raw) {
		t.Fatal("publish time not found in the fixture")
	}
	res2, err := detect(res.state, discovery(payload.SaptuneDiscovery, later, collectedAt.Add(15*time.Minute)), testOrigin)
	if err != nil || res2.outcome != outcomeNoDifference || len(res2.commands) != 0 {
		t.Fatalf("same status, new publish time: %+v %v", res2, err)
	}
	for _, variant := range []string{"not_compliant", "not_tuned", "uninstalled", "unsupported", "saptune_service_status_passing"} {
		res3, err := detect(res.state, discovery(payload.SaptuneDiscovery, fixture(t, dir+variant+".json"), collectedAt), testOrigin)
		if err != nil || res3.outcome != outcomeCommands || len(res3.commands) != 1 || res3.commands[0].GetUpdateSaptuneStatus() == nil {
			t.Errorf("%s: %+v %v", variant, res3, err)
		}
	}
}

// Facts before the host's first host_discovery are held, then sent right
// after RegisterHost: the order the files arrive in does not matter.
func TestHostFactsWaitForRegistration(t *testing.T) {
	state := new(fleetv1.ScenarioState)
	for _, in := range []struct{ typ, file string }{
		{payload.SaptuneDiscovery, "discovery/saptune_discovery.json"},
		{payload.CloudDiscovery, "discovery/cloud_discovery_gcp.json"},
		{payload.SubscriptionDiscovery, "discovery/subscriptions_discovery.json"},
	} {
		res, err := detect(state, discovery(in.typ, fixture(t, in.file), collectedAt), testOrigin)
		if err != nil || res.outcome != outcomeHostUnknown || len(res.commands) != 0 {
			t.Fatalf("%s before registration: %+v %v", in.typ, res, err)
		}
		state = res.state
	}
	res, err := detect(state, discovery(payload.HostDiscovery, fixture(t, "discovery/host_discovery.json"), collectedAt), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"RegisterHost", "UpdateProvider", "UpdateSlesSubscriptions", "UpdateSaptuneStatus"}
	if got := commandNames(res.commands); !slices.Equal(got, want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	if p := res.commands[1].GetUpdateProvider().GetProvider(); p.GetGcp().GetProjectId() != "123456" {
		t.Errorf("provider %v", p)
	}
	ids := map[string]bool{}
	for _, c := range res.commands {
		ids[c.CommandId] = true
	}
	if len(ids) != 4 {
		t.Errorf("command ids not distinct: %v", ids)
	}
}
