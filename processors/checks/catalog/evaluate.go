package catalog

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

var emptyMap = map[string]any{}

// Applies reports whether the check applies to a target with the given env:
// target_type and every metadata selector must match (a selector whose key
// the env lacks does not match), then when must hold and exclude must not.
func (c *Check) Applies(env map[string]any) (bool, error) {
	if tt, ok := env["target_type"]; ok && fmt.Sprint(tt) != c.TargetType() {
		return false, nil
	}
	for key, sel := range c.Metadata {
		if key != "target_type" && !selectorMatches(sel, env[key]) {
			return false, nil
		}
	}
	if env == nil {
		env = emptyMap
	}
	act := map[string]any{"env": env, "facts": emptyMap, "values": emptyMap}
	for _, cond := range []struct {
		name string
		prg  cel.Program
		want bool
	}{{"when", c.when, true}, {"exclude", c.exclude, false}} {
		if cond.prg == nil {
			continue
		}
		out, err := eval(cond.prg, act)
		if err != nil {
			return false, fmt.Errorf("check %s: %s: %w", c.ID, cond.name, err)
		}
		b, ok := out.(types.Bool)
		if !ok {
			return false, fmt.Errorf("check %s: %s returned %s, not a bool", c.ID, cond.name, out.Type())
		}
		if bool(b) != cond.want {
			return false, nil
		}
	}
	return true, nil
}

// selectorMatches: a selector is a string or a list of strings; the env
// value (a string, or a list of which one element must match) must be one
// of them.
func selectorMatches(sel, have any) bool {
	if have == nil {
		return false
	}
	var want []string
	switch s := sel.(type) {
	case []any:
		for _, e := range s {
			want = append(want, fmt.Sprint(e))
		}
	default:
		want = []string{fmt.Sprint(s)}
	}
	switch h := have.(type) {
	case []any:
		return slices.ContainsFunc(h, func(e any) bool { return slices.Contains(want, fmt.Sprint(e)) })
	case []string:
		return slices.ContainsFunc(h, func(e string) bool { return slices.Contains(want, e) })
	}
	return slices.Contains(want, fmt.Sprint(have))
}

// Evaluate runs the check on its targets (one host, or every node of a
// cluster) with per-target value overrides (value name -> value, winning
// over default and conditions). It never panics: an expression that errors,
// panics or exceeds the cost limit gives the target, and so the check,
// the result "error" with the reason.
func (c *Check) Evaluate(targets []Target, overrides map[string]any) *Result {
	res := &Result{CheckID: c.ID, Result: Passing}
	if len(targets) == 0 {
		res.Result, res.Error = Error, "no targets to evaluate"
		return res
	}
	same := make([][]observation, len(c.expectations))
	for _, t := range targets {
		tr := c.evaluateTarget(t, overrides, same)
		res.Targets = append(res.Targets, tr)
		res.Result = Worst(res.Result, tr.Result)
		if tr.Error != "" && res.Error == "" {
			res.Error = fmt.Sprintf("target %s: %s", t.ID, tr.Error)
		}
		res.Messages = appendUnique(res.Messages, tr.Messages...)
	}
	for i, e := range c.expectations {
		obs := same[i]
		if e.Kind != KindExpectSame || len(obs) < 2 {
			continue
		}
		differs := slices.ContainsFunc(obs[1:], func(o observation) bool { return o.value.Equal(obs[0].value) != types.True })
		if !differs {
			continue
		}
		res.Result = Worst(res.Result, c.Severity)
		for _, o := range obs {
			res.Messages = appendUnique(res.Messages, c.message(e.failure, e.Name, o.act))
		}
	}
	return res
}

// observation is what an expect_same expression returned on one target.
type observation struct {
	value ref.Val
	act   map[string]any
}

func (c *Check) evaluateTarget(t Target, overrides map[string]any, same [][]observation) TargetResult {
	tr := TargetResult{ID: t.ID, Result: Passing}
	if t.TimedOut {
		tr.Result, tr.TimedOut = Critical, true
		tr.Messages = []string{fmt.Sprintf("target %s did not answer in time", t.ID)}
		return tr
	}
	failed := func(format string, args ...any) TargetResult {
		tr.Result, tr.Error = Error, fmt.Sprintf(format, args...)
		return tr
	}
	for _, f := range c.Facts {
		if msg, bad := t.FactErrors[f.Name]; bad {
			return failed("fact %s (%s): %s", f.Name, f.Gatherer, msg)
		}
		if _, ok := t.Facts[f.Name]; !ok {
			return failed("fact %s (%s) was not gathered", f.Name, f.Gatherer)
		}
	}
	env := t.Env
	if env == nil {
		env = emptyMap
	}
	facts := t.Facts
	if facts == nil {
		facts = emptyMap
	}
	vals := make(map[string]any, len(c.values))
	act := map[string]any{"facts": facts, "values": vals, "env": env}
	for _, v := range c.values {
		if o, ok := overrides[v.name]; ok {
			vals[v.name] = o
			continue
		}
		vals[v.name] = v.def
		for j, cond := range v.conditions {
			out, err := eval(cond.when, act)
			if err != nil {
				return failed("values.%s conditions[%d].when: %v", v.name, j, err)
			}
			if out == types.True {
				vals[v.name] = cond.value
				break
			}
		}
	}
	if len(vals) > 0 {
		tr.Values = vals
	}
	tr.Returns = make(map[string]any, len(c.expectations))
	for i, e := range c.expectations {
		out, err := eval(e.prg, act)
		if err != nil {
			return failed("expectation %s: %v", e.Name, err)
		}
		tr.Returns[e.Name] = toNative(out)
		switch e.Kind {
		case KindExpect:
			b, ok := out.(types.Bool)
			if !ok {
				return failed("expectation %s: expect returned %s, not a bool", e.Name, out.Type())
			}
			if !b {
				tr.Result = Worst(tr.Result, c.Severity)
				tr.Messages = appendUnique(tr.Messages, c.message(e.failure, e.Name, act))
			}
		case KindExpectEnum:
			s, _ := out.(types.String)
			switch string(s) {
			case Passing:
			case Warning:
				tr.Result = Worst(tr.Result, Warning)
				tr.Messages = appendUnique(tr.Messages, c.message(e.warning, e.Name, act))
			case Critical:
				tr.Result = Worst(tr.Result, Critical)
				tr.Messages = appendUnique(tr.Messages, c.message(e.failure, e.Name, act))
			default:
				return failed("expectation %s: expect_enum returned %s; it must return \"passing\", \"warning\" or \"critical\"", e.Name, describe(out))
			}
		case KindExpectSame:
			same[i] = append(same[i], observation{value: out, act: act})
		}
	}
	return tr
}

// eval runs a program and turns every failure, including a panic in a
// function, into an error.
func eval(prg cel.Program, act map[string]any) (out ref.Val, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("evaluation panicked: %v", r)
		}
	}()
	out, _, err = prg.Eval(act)
	if err != nil {
		return nil, err
	}
	if types.IsError(out) {
		return nil, fmt.Errorf("%v", out)
	}
	return out, nil
}

// message interpolates a failure or warning message; a placeholder that
// cannot be evaluated shows why instead of failing the check.
func (c *Check) message(t *template, expectation string, act map[string]any) string {
	if t == nil {
		return fmt.Sprintf("%s: expectation %s not met", c.Name, expectation)
	}
	var sb strings.Builder
	for _, p := range t.parts {
		if p.prg == nil {
			sb.WriteString(p.literal)
			continue
		}
		out, err := eval(p.prg, act)
		if err != nil {
			fmt.Fprintf(&sb, "<%v>", err)
			continue
		}
		sb.WriteString(format(toNative(out)))
	}
	return sb.String()
}

func appendUnique(list []string, items ...string) []string {
	for _, s := range items {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// format renders a value in a message: strings as they are, whole numbers
// without a fraction, null as "null", everything else as JSON.
func format(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64, uint64, bool:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func describe(v ref.Val) string {
	if s, ok := v.(types.String); ok {
		return strconv.Quote(string(s))
	}
	return v.Type().TypeName()
}

// toNative converts a CEL value to JSON-like Go values.
func toNative(v ref.Val) any {
	switch x := v.(type) {
	case nil:
		return nil
	case types.Null:
		return nil
	case types.Bool:
		return bool(x)
	case types.Int:
		return int64(x)
	case types.Uint:
		return uint64(x)
	case types.Double:
		return float64(x)
	case types.String:
		return string(x)
	case *types.Optional:
		if x.HasValue() {
			return toNative(x.GetValue())
		}
		return nil
	case traits.Mapper:
		out := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			val, _ := x.Find(k)
			out[fmt.Sprint(toNative(k))] = toNative(val)
		}
		return out
	case traits.Lister:
		var out []any
		for it := x.Iterator(); it.HasNext() == types.True; {
			out = append(out, toNative(it.Next()))
		}
		return out
	}
	return v.Value()
}
