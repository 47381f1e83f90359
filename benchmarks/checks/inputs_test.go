package checks

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// testHosts is the fleet the test checks; the benchmarks' fleets are built
// the same way, larger.
const testHosts = 200

// TestInputsAreRealistic checks what the benchmarks evaluate: the
// processor, fed the fleet, evaluates on every target exactly the checks
// the benchmark counts (those that apply to its env and whose facts it
// has); most of the catalog applies somewhere; results are both passing
// and failing, rarely errors; a round re-evaluates every host and cluster.
func TestInputsAreRealistic(t *testing.T) {
	f, err := fleetOf(testHosts)
	if err != nil {
		t.Fatal(err)
	}
	state, err := f.populate(t)
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ applied, passing, failing, errors int }
	perCheck := map[string]*tally{}
	for _, c := range f.cat.Checks() {
		perCheck[c.ID] = &tally{}
	}
	var stored []*fleetv1.CheckResult
	compare := func(key string, evs []evaluation) {
		t.Helper()
		var want, got []string
		for _, e := range evs {
			want = append(want, e.check.ID)
		}
		for _, r := range state[key].GetStatus().GetResults() {
			got = append(got, r.GetCheckId())
			stored = append(stored, r)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the processor evaluated %v, the benchmark counts %v", key, got, want)
		}
	}
	var hostEvals, clusterEvals int
	for _, h := range f.hosts {
		evs, err := f.hostEvaluations(h, false)
		if err != nil {
			t.Fatal(err)
		}
		hostEvals += len(evs)
		compare(h.id, evs)
	}
	for _, c := range f.clusters {
		evs, err := f.clusterEvaluations(c, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Errorf("cluster %s (%s, %s): no check applies", c.id, c.typ, c.fixture)
		}
		clusterEvals += len(evs)
		compare(c.id, evs)
	}
	results := map[string]int{}
	for _, r := range stored {
		results[r.GetResult()]++
		tl := perCheck[r.GetCheckId()]
		tl.applied++
		switch r.GetResult() {
		case catalog.Passing:
			tl.passing++
		case catalog.Warning, catalog.Critical:
			tl.failing++
		default:
			tl.errors++
			if tl.errors == 1 {
				t.Logf("%s: %s", r.GetCheckId(), r.GetError())
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "catalog %d checks; %d hosts, %d clusters; %.2f checks/host, %.2f checks/cluster; results %v\n",
		len(f.cat.Checks()), len(f.hosts), len(f.clusters), float64(hostEvals)/float64(len(f.hosts)), float64(clusterEvals)/float64(len(f.clusters)), results)
	var unapplied []string
	for _, c := range f.cat.Checks() {
		tl := perCheck[c.ID]
		fmt.Fprintf(&sb, "  %s %-7s applied %4d passing %4d failing %4d error %4d\n", c.ID, c.TargetType(), tl.applied, tl.passing, tl.failing, tl.errors)
		if tl.applied == 0 {
			unapplied = append(unapplied, c.ID)
		}
	}
	t.Log(sb.String())
	total := len(stored)
	switch {
	case results[catalog.Passing] == 0:
		t.Error("no check passes on the fleet")
	case results[catalog.Warning]+results[catalog.Critical] == 0:
		t.Error("no check fails on the fleet")
	case results[catalog.Error]*10 > total:
		t.Errorf("%d of %d results are errors: the fleet lacks facts the catalog needs (add them to fleet_test.go's tools or testdata)", results[catalog.Error], total)
	}
	// A check may apply to no target of the processor (see checks.md), but
	// the fleet must cover most of the catalog.
	if len(unapplied)*5 > len(f.cat.Checks()) {
		t.Errorf("checks %v apply to no target of the fleet: give it what they select", unapplied)
	} else if len(unapplied) > 0 {
		t.Logf("checks that apply to no target: %v", unapplied)
	}

	// One round: every host re-evaluates, and every cluster once (twice
	// when the second node's trigger is a cluster fact too).
	tr, err := f.triggers()
	if err != nil {
		t.Fatal(err)
	}
	p, err := seeded(t, f, state)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	}()
	p.consume(f.roundRecords(tr, 1))
	wantLoops := len(f.clusters)
	if tr.clusterToo {
		wantLoops *= 2
	}
	if got := inputs(t, p.reg, "discovery", "applied"); got != len(f.hosts) {
		t.Errorf("%d hosts re-evaluated, want %d", got, len(f.hosts))
	}
	if got := inputs(t, p.reg, "loop", "applied"); got != wantLoops {
		t.Errorf("%d cluster re-evaluations, want %d", got, wantLoops)
	}
}

// inputs reads fleetstream_checks_inputs_total{input, outcome}.
func inputs(t *testing.T, reg *prometheus.Registry, input, outcome string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fleetstream_checks_inputs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["input"] == input && labels["outcome"] == outcome {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// TestEngineLeavesFactsAsDecoded: the engine only reads the facts of a
// target, so the processor decodes each fact once per evaluation pass and
// shares it among the pass's checks, as BenchmarkCatalog shares them among
// all its runs. Evaluating the whole catalog on every target of the fleet,
// twice, leaves every fact value as it was.
func TestEngineLeavesFactsAsDecoded(t *testing.T) {
	f, err := fleetOf(testHosts)
	if err != nil {
		t.Fatal(err)
	}
	passes, _, _, err := f.passes()
	if err != nil {
		t.Fatal(err)
	}
	type factOf struct {
		pass        int
		check, name string
		target      int
	}
	before := map[factOf]any{}
	for i, p := range passes {
		for id, ts := range p.targets {
			for j, tg := range ts {
				for name, v := range tg.Facts {
					before[factOf{i, id, name, j}] = deepCopy(v)
				}
			}
		}
	}
	var evals int
	for range 2 {
		for _, p := range passes {
			evals += p.run()
		}
	}
	if evals == 0 || len(before) == 0 {
		t.Fatalf("%d evaluations of %d facts", evals, len(before))
	}
	for k, want := range before {
		if got := passes[k.pass].targets[k.check][k.target].Facts[k.name]; !reflect.DeepEqual(got, want) {
			t.Errorf("check %s modified fact %s of target %d", k.check, k.name, k.target)
		}
	}
}
