package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The pass and fail cases of every catalog check live in
// checks/testdata/<id>.yaml, outside the catalog format:
//
//	cases:
//	  - name: what the case shows
//	    result: passing            # or warning, critical (error is not a case)
//	    env: {provider: azure}     # merged into every target's env
//	    fixtures: {cluster: ha_cluster_discovery_hana_scale_up.json}  # fact <- a discovery fixture's payload
//	    facts: {...}               # fact values, merged over the fixtures
//	    set: {cluster.SBD.Config.SBD_PACEMAKER: "no"}  # path (fact.key.0.key) -> value
//	    delete: [cluster.SBD.Config.SBD_PACEMAKER]
//	    overrides: {value_name: 1}
//	    targets:                   # default: one target "node01"; each may add env, fixtures, facts, set, delete, fact_errors, timed_out
//	      - id: node01

const fixtureDir = "../../../testdata/fixtures/trento/discovery"

type caseFile struct {
	Cases []testCase `yaml:"cases"`
}

type factsSpec struct {
	Env      map[string]any    `yaml:"env"`
	Fixtures map[string]string `yaml:"fixtures"`
	Facts    map[string]any    `yaml:"facts"`
	Set      map[string]any    `yaml:"set"`
	Delete   []string          `yaml:"delete"`
}

type testCase struct {
	Name      string         `yaml:"name"`
	Result    string         `yaml:"result"`
	Overrides map[string]any `yaml:"overrides"`
	factsSpec `yaml:",inline"`
	Targets   []struct {
		ID         string            `yaml:"id"`
		FactErrors map[string]string `yaml:"fact_errors"`
		TimedOut   bool              `yaml:"timed_out"`
		factsSpec  `yaml:",inline"`
	} `yaml:"targets"`
}

// fixturePayload reads a discovery fixture's payload as JSON-like values,
// the way the checks processor derives discovery.<type>@v1 facts.
func fixturePayload(t testing.TB, name string) any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var doc struct {
		Payload any `json:"payload"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
	return doc.Payload
}

// jsonLike round-trips a YAML-decoded value through JSON so test facts have
// the same types as facts that arrive from agents (float64 numbers).
func jsonLike(t testing.TB, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode facts: %v", err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode facts: %v", err)
	}
	return out
}

func (s factsSpec) apply(t testing.TB, facts, env map[string]any) {
	t.Helper()
	for k, v := range s.Env {
		env[k] = v
	}
	for name, file := range s.Fixtures {
		facts[name] = fixturePayload(t, file)
	}
	for name, v := range s.Facts {
		facts[name] = jsonLike(t, v)
	}
	for path, v := range s.Set {
		setPath(t, facts, path, jsonLike(t, v), false)
	}
	for _, path := range s.Delete {
		setPath(t, facts, path, nil, true)
	}
}

// setPath sets (or deletes) the value at a dotted path; numeric segments
// index lists.
func setPath(t testing.TB, root map[string]any, path string, v any, del bool) {
	t.Helper()
	parts := strings.Split(path, ".")
	var cur any = root
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if del {
					delete(c, p)
				} else {
					c[p] = v
				}
				return
			}
			next, ok := c[p]
			if !ok || next == nil {
				next = map[string]any{}
				c[p] = next
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n >= len(c) {
				t.Fatalf("set %s: %q is not an index of a list of %d", path, p, len(c))
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		default:
			t.Fatalf("set %s: %q is inside a %T", path, p, cur)
		}
	}
}

func (tc testCase) targets(t testing.TB, ch *Check) []Target {
	t.Helper()
	specs := tc.Targets
	if len(specs) == 0 {
		specs = append(specs, struct {
			ID         string            `yaml:"id"`
			FactErrors map[string]string `yaml:"fact_errors"`
			TimedOut   bool              `yaml:"timed_out"`
			factsSpec  `yaml:",inline"`
		}{ID: "node01"})
	}
	var out []Target
	for _, s := range specs {
		target := Target{ID: s.ID, Env: map[string]any{"target_type": ch.TargetType(), "hostname": s.ID},
			Facts: map[string]any{}, FactErrors: s.FactErrors, TimedOut: s.TimedOut}
		tc.factsSpec.apply(t, target.Facts, target.Env)
		s.factsSpec.apply(t, target.Facts, target.Env)
		out = append(out, target)
	}
	return out
}

func loadCases(t testing.TB, id string) []testCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("checks", "testdata", id+".yaml"))
	if err != nil {
		t.Fatalf("check %s has no test cases: %v", id, err)
	}
	var f caseFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("checks/testdata/%s.yaml: %v", id, err)
	}
	return f.Cases
}

// TestCatalogChecks runs the pass and fail cases of every check in the
// embedded catalog; a check without a passing and a failing case fails.
func TestCatalogChecks(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Checks() {
		t.Run(ch.ID, func(t *testing.T) {
			cases := loadCases(t, ch.ID)
			var passing, failing bool
			for _, tc := range cases {
				t.Run(tc.Name, func(t *testing.T) {
					targets := tc.targets(t, ch)
					for _, tg := range targets {
						ok, err := ch.Applies(tg.Env)
						if err != nil || !ok {
							t.Fatalf("check does not apply to target %s with env %v (err %v)", tg.ID, tg.Env, err)
						}
					}
					res := ch.Evaluate(targets, tc.Overrides)
					if res.Result != tc.Result {
						t.Fatalf("result %s, want %s\n%s", res.Result, tc.Result, dump(res))
					}
					t.Logf("%s %v", res.Result, res.Messages)
					if res.Result != Passing && len(res.Messages) == 0 {
						t.Fatalf("failing result without a message: %s", dump(res))
					}
				})
				switch tc.Result {
				case Passing:
					passing = true
				case Warning, Critical:
					failing = true
				default:
					t.Errorf("case %q: result %q: a case is passing, warning or critical", tc.Name, tc.Result)
				}
			}
			if !passing || !failing {
				t.Errorf("check %s needs a passing and a failing case (has passing=%v failing=%v)", ch.ID, passing, failing)
			}
		})
	}
	// Every test file belongs to a check.
	files, _ := filepath.Glob(filepath.Join("checks", "testdata", "*.yaml"))
	for _, f := range files {
		if _, ok := c.Check(strings.TrimSuffix(filepath.Base(f), ".yaml")); !ok {
			t.Errorf("%s: no check with that id", f)
		}
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return fmt.Sprint(string(b))
}
