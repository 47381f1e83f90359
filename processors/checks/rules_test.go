package checks

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// hostWorld applies inputs to one host target as the group would.
type hostWorld struct {
	t     *testing.T
	r     *Rules
	state *fleetv1.ChecksTarget
}

func (w *hostWorld) apply(res result) result {
	w.t.Helper()
	if res.state != nil {
		w.state = res.state
	}
	for _, e := range res.events {
		if e.GetAggregateType() != AggregateType || e.GetAggregateId() != hostA {
			w.t.Fatalf("event of %s/%s", e.GetAggregateType(), e.GetAggregateId())
		}
	}
	return res
}

func healthOf(res result) []string {
	var out []string
	for _, c := range res.commands {
		out = append(out, c.targetType+":"+c.cmd.GetUpdateHostChecksHealth().GetHealth()+c.cmd.GetUpdateClusterChecksHealth().GetHealth())
	}
	return out
}

func TestContinuousEvaluationOfAHost(t *testing.T) {
	w := &hostWorld{t: t, r: rules(t)}
	step := func(name string, res result, wantChanges []string, wantHealth ...string) result {
		t.Helper()
		w.apply(res)
		if got := changes(res.events); !slices.Equal(got, wantChanges) {
			t.Errorf("%s: changes %v, want %v", name, got, wantChanges)
		}
		if got := healthOf(res); !slices.Equal(got, wantHealth) {
			t.Errorf("%s: health commands %v, want %v", name, got, wantHealth)
		}
		return res
	}

	res := step("select", w.r.applyCommand(w.state, command(hostA, "c1", 0, &fleetv1.SelectChecks{CheckIds: []string{"TST002", "TST001"}, TargetType: TargetHost, Actor: "alice"})), nil)
	if e := res.events; len(e) != 1 || e[0].GetChecksSelected() == nil || !slices.Equal(e[0].GetChecksSelected().GetCheckIds(), []string{"TST001", "TST002"}) ||
		!e[0].GetChecksSelected().GetPreviouslyDefault() || e[0].GetVersion() != 1 || e[0].GetCommandId() != "c1" {
		t.Fatalf("select: events %v", e)
	}

	res = step("first discovery", w.r.applyDiscovery(w.state, hostDiscovery(t, hostA, 1, 4096, "x86_64"), "trace-d1", "discoveries/0/1"),
		[]string{"TST001 ->passing"}, "host:passing")
	e := res.events[0]
	if e.GetVersion() != 2 || e.GetState().GetChecks().GetResults() != nil || e.GetState().GetChecks().GetVersion() != 2 || e.GetCommandId() != "discoveries/0/1" || e.GetTraceId() != "trace-d1" {
		t.Errorf("first result event %v", e)
	}
	if len(res.results) != 1 || res.results[0].GetEntityId() != hostA || res.results[0].GetResult() != "passing" || res.results[0].GetGroup() != "Test" || res.results[0].GetSeverity() != "critical" {
		t.Errorf("results %v", res.results)
	}
	if cmd := res.commands[0].cmd; cmd.GetAggregateId() != hostA || cmd.GetCommandId() == "" || !cmd.GetIssuedAt().AsTime().Equal(at(1).AsTime()) {
		t.Errorf("health command %v", cmd)
	}

	res = step("same discovery", w.r.applyDiscovery(w.state, hostDiscovery(t, hostA, 2, 4096, "x86_64"), "trace-d2", "discoveries/0/2"), nil)
	if res.state != nil || len(res.events) != 0 || len(res.results) != 0 || len(res.sends) != 0 || res.outcome != outcomeUnchanged {
		t.Errorf("an unchanged discovery did something: %+v", res)
	}

	res = step("less memory", w.r.applyDiscovery(w.state, hostDiscovery(t, hostA, 3, 1024, "x86_64"), "trace-d3", "discoveries/0/3"),
		[]string{"TST001 passing->critical"}, "host:critical")
	if r := res.events[0].GetCheckResultChanged().GetResult(); !slices.Equal(r.GetMessages(), []string{"memory 1024 MB is below 2048 MB"}) {
		t.Errorf("critical result %v", r)
	}

	res = step("stale discovery", w.r.applyDiscovery(w.state, hostDiscovery(t, hostA, 2, 4096, "x86_64"), "", "discoveries/0/4"), nil)
	if res.outcome != outcomeStale {
		t.Errorf("older discovery: outcome %s", res.outcome)
	}

	res = step("override", w.r.applyCommand(w.state, command(hostA, "c2", 4, &fleetv1.OverrideCheckValue{CheckId: "TST001", Name: "min_memory_mb", Value: structpb.NewNumberValue(512), Actor: "bob"})),
		[]string{"TST001 critical->passing"}, "host:passing")
	audit := res.events[0].GetCheckValueOverridden()
	if audit == nil || audit.GetActor() != "bob" || audit.GetBefore() != nil || audit.GetAfter().GetNumberValue() != 512 {
		t.Errorf("audit event %v", res.events[0])
	}
	step("same override", w.r.applyCommand(w.state, command(hostA, "c3", 5, &fleetv1.OverrideCheckValue{CheckId: "TST001", Name: "min_memory_mb", Value: structpb.NewNumberValue(512)})), nil)

	step("gathered facts", mustFacts(t, w.r, w.state, factsGathered(hostA, 6, "", fact("sysctl@v1", "vm.swappiness", "60"))),
		[]string{"TST002 ->warning"}, "host:warning")
	step("deselect", w.r.applyCommand(w.state, command(hostA, "c4", 7, &fleetv1.SelectChecks{CheckIds: []string{"TST001"}})),
		[]string{"TST002 warning->"}, "host:passing")

	res = step("reset override", w.r.applyCommand(w.state, command(hostA, "c5", 8, &fleetv1.OverrideCheckValue{CheckId: "TST001", Name: "min_memory_mb", ResetToDefault: true, Actor: "bob"})),
		[]string{"TST001 passing->critical"}, "host:critical")
	if a := res.events[0].GetCheckValueOverridden(); a.GetBefore().GetNumberValue() != 512 || a.GetAfter() != nil {
		t.Errorf("reset audit %v", a)
	}
	if st := w.state.GetStatus(); st.GetHealth() != "critical" || len(st.GetResults()) != 1 || len(st.GetOverrides()) != 0 || st.GetVersion() != 10 {
		t.Errorf("status %v", st)
	}

	for _, tt := range []struct {
		name string
		body any
		says string
	}{
		{"unknown check", &fleetv1.SelectChecks{CheckIds: []string{"NOPE"}}, `check "NOPE" is not in the catalog`},
		{"cluster check on a host", &fleetv1.SelectChecks{CheckIds: []string{"TST003"}}, "applies to clusters, not to hosts"},
		{"unknown value", &fleetv1.OverrideCheckValue{CheckId: "TST001", Name: "nope", Value: structpb.NewNumberValue(1)}, `has no value "nope" (its values: min_memory_mb)`},
		{"no value", &fleetv1.OverrideCheckValue{CheckId: "TST001", Name: "min_memory_mb"}, "needs a value"},
	} {
		res := w.r.applyCommand(w.state, command(hostA, "bad", 9, tt.body))
		if res.outcome != outcomeRejected || res.state != nil || len(res.events) != 1 || !strings.Contains(res.events[0].GetCommandRejected().GetReason(), tt.says) {
			t.Errorf("%s: %+v", tt.name, res)
		}
	}
}

func mustFacts(t *testing.T, r *Rules, state *fleetv1.ChecksTarget, fg *fleetv1.FactsGathered) result {
	t.Helper()
	res, err := r.applyFacts(state, fg, "trace-f", "facts/0/1")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Without a selection every applicable check of the target's type is
// evaluated.
func TestDefaultSelectionIsEveryApplicableCheck(t *testing.T) {
	r := rules(t)
	res := r.applyDiscovery(nil, hostDiscovery(t, hostA, 1, 4096, "x86_64"), "", "d/0/1")
	res2, err := r.applyFacts(res.state, factsGathered(hostA, 2, "", fact("sysctl@v1", "vm.swappiness", "5")), "", "f/0/1")
	if err != nil {
		t.Fatal(err)
	}
	if got := append(changes(res.events), changes(res2.events)...); !slices.Equal(got, []string{"TST001 ->passing", "TST002 ->passing"}) {
		t.Errorf("changes %v", got)
	}
	for _, r := range res2.state.GetStatus().GetResults() {
		if c, _ := rules(t).cat.Check(r.GetCheckId()); c.TargetType() != TargetHost {
			t.Errorf("a %s check evaluated on a host: %v", c.TargetType(), r)
		}
	}
}

func TestFactsThatCannotBeRead(t *testing.T) {
	r := rules(t)
	if _, err := r.applyFacts(nil, factsGathered(hostA, 1, "", &fleetv1.GatheredFact{Argument: "x"}), "", "f"); err == nil {
		t.Error("a fact without gatherer accepted")
	}
	// A gathering error is the check's error, and critical health.
	res := mustFacts(t, r, nil, factsGathered(hostA, 1, "", &fleetv1.GatheredFact{Gatherer: "sysctl@v1", Argument: "vm.swappiness", Error: "sysctl: not found"}))
	if got := changes(res.events); !slices.Equal(got, []string{"TST002 ->error"}) {
		t.Fatalf("changes %v", got)
	}
	if got := healthOf(res); !slices.Equal(got, []string{"host:critical"}) {
		t.Errorf("health %v", got)
	}
}
