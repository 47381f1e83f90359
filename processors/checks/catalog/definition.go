package catalog

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// source is an expression or message with the position it was written at,
// so compile errors point at the file line of the offending expression line.
type source struct {
	Text  string
	Line  int
	Block bool // literal or folded block scalar: text starts on the next line
}

func (s *source) UnmarshalYAML(n *yaml.Node) error {
	s.Text, s.Line = n.Value, n.Line
	s.Block = n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	return nil
}

// fileLine maps a 1-based line of the expression text to a line of the file.
func (s source) fileLine(exprLine int) int {
	if s.Block {
		return s.Line + exprLine
	}
	return s.Line + exprLine - 1
}

type rawCheck struct {
	ID           string           `yaml:"id"`
	Name         string           `yaml:"name"`
	Group        string           `yaml:"group"`
	Description  string           `yaml:"description"`
	Remediation  string           `yaml:"remediation"`
	Severity     string           `yaml:"severity"`
	Metadata     map[string]any   `yaml:"metadata"`
	When         source           `yaml:"when"`
	Exclude      source           `yaml:"exclude"`
	Facts        []rawFact        `yaml:"facts"`
	Values       []rawValue       `yaml:"values"`
	Expectations []rawExpectation `yaml:"expectations"`
	line         int
}

type rawFact struct {
	Name     string `yaml:"name"`
	Gatherer string `yaml:"gatherer"`
	Argument source `yaml:"argument"`
	line     int
}

func (f *rawFact) UnmarshalYAML(n *yaml.Node) error {
	type plain rawFact
	f.line = n.Line
	return n.Decode((*plain)(f))
}

type rawValue struct {
	Name       string         `yaml:"name"`
	Default    any            `yaml:"default"`
	Conditions []rawCondition `yaml:"conditions"`
	line       int
}

func (v *rawValue) UnmarshalYAML(n *yaml.Node) error {
	type plain rawValue
	v.line = n.Line
	return n.Decode((*plain)(v))
}

type rawCondition struct {
	Value any    `yaml:"value"`
	When  source `yaml:"when"`
}

type rawExpectation struct {
	Name           string `yaml:"name"`
	Expect         source `yaml:"expect"`
	ExpectSame     source `yaml:"expect_same"`
	ExpectEnum     source `yaml:"expect_enum"`
	FailureMessage source `yaml:"failure_message"`
	WarningMessage source `yaml:"warning_message"`
	line           int
}

func (e *rawExpectation) UnmarshalYAML(n *yaml.Node) error {
	type plain rawExpectation
	e.line = n.Line
	return n.Decode((*plain)(e))
}

type compiledValue struct {
	name       string
	def        any
	conditions []compiledCondition
}

type compiledCondition struct {
	value any
	when  cel.Program
}

type compiledExpectation struct {
	Expectation
	prg              cel.Program
	failure, warning *template
}

var argumentPlaceholder = regexp.MustCompile(`\$\{([^}]*)\}`)
var envPlaceholder = regexp.MustCompile(`^env\.([a-z_][a-z0-9_]*)$`)

// compileCheck checks what the schema cannot (unique names, declared
// references, expression types) and compiles every expression once.
func (l *loader) compileCheck(file string, doc *yaml.Node, raw *rawCheck) *Check {
	nerr := len(l.errs)
	idLine := nodeLine(doc, []string{"id"}, "")
	if prev, dup := l.seen[raw.ID]; dup {
		l.errorf(file, idLine, "duplicate check id %q (first defined at %s)", raw.ID, prev)
		return nil
	}
	l.seen[raw.ID] = fmt.Sprintf("%s:%d", file, idLine)
	ch := &Check{
		ID: raw.ID, Name: raw.Name, Group: raw.Group, Description: raw.Description,
		Remediation: raw.Remediation, Severity: raw.Severity, Metadata: raw.Metadata,
		When: raw.When.Text, Exclude: raw.Exclude.Text, File: file,
	}
	if ch.Severity == "" {
		ch.Severity = Critical
	}
	fail := func(line int, format string, args ...any) {
		l.errorf(file, line, "check %s: %s", raw.ID, fmt.Sprintf(format, args...))
	}
	compileAt := func(what string, src source, sc scope, want *cel.Type) cel.Program {
		prg, errs := l.comp.compile(src.Text, sc, want)
		for _, e := range errs {
			fail(src.fileLine(e.line), "%s: %s", what, e.msg)
		}
		return prg
	}
	templateAt := func(what string, src source, sc scope) *template {
		if src.Text == "" {
			return nil
		}
		t, errs := l.comp.compileTemplate(src.Text, sc)
		for _, e := range errs {
			fail(src.fileLine(e.line), "%s: %s", what, e.msg)
		}
		return t
	}

	facts := map[string]bool{}
	for i, f := range raw.Facts {
		if facts[f.Name] {
			fail(f.line, "facts[%d]: duplicate fact name %q", i, f.Name)
		}
		facts[f.Name] = true
		for _, m := range argumentPlaceholder.FindAllStringSubmatch(f.Argument.Text, -1) {
			if !envPlaceholder.MatchString(m[1]) {
				fail(f.Argument.Line, "facts[%d].argument: placeholder %s: only ${env.<key>} is allowed in arguments", i, m[0])
			}
		}
		ch.Facts = append(ch.Facts, Fact{Name: f.Name, Gatherer: f.Gatherer, Argument: f.Argument.Text})
	}
	values := map[string]bool{}
	for _, v := range raw.Values {
		values[v.Name] = true
	}
	full := scope{facts: facts, values: values}

	if raw.When.Text != "" {
		ch.when = compileAt("when", raw.When, scope{}, cel.BoolType)
	}
	if raw.Exclude.Text != "" {
		ch.exclude = compileAt("exclude", raw.Exclude, scope{}, cel.BoolType)
	}

	seenValues := map[string]bool{}
	for i, v := range raw.Values {
		if seenValues[v.Name] {
			fail(v.line, "values[%d]: duplicate value name %q", i, v.Name)
		}
		seenValues[v.Name] = true
		ch.Values = append(ch.Values, Value{Name: v.Name, Default: normalize(v.Default)})
		cv := compiledValue{name: v.Name, def: normalize(v.Default)}
		for j, c := range v.Conditions {
			ch.Values[i].Conditions = append(ch.Values[i].Conditions, Condition{Value: normalize(c.Value), When: c.When.Text})
			prg := compileAt(fmt.Sprintf("values[%d].conditions[%d].when", i, j), c.When, full, cel.BoolType)
			cv.conditions = append(cv.conditions, compiledCondition{value: normalize(c.Value), when: prg})
		}
		ch.values = append(ch.values, cv)
	}

	seenExp := map[string]bool{}
	for i, e := range raw.Expectations {
		if seenExp[e.Name] {
			fail(e.line, "expectations[%d]: duplicate expectation name %q", i, e.Name)
		}
		seenExp[e.Name] = true
		exp := Expectation{Name: e.Name, FailureMessage: e.FailureMessage.Text, WarningMessage: e.WarningMessage.Text}
		var src source
		var want *cel.Type
		switch {
		case e.Expect.Text != "":
			exp.Kind, src, want = KindExpect, e.Expect, cel.BoolType
		case e.ExpectSame.Text != "":
			exp.Kind, src = KindExpectSame, e.ExpectSame
		default:
			exp.Kind, src, want = KindExpectEnum, e.ExpectEnum, cel.StringType
		}
		exp.Expression = src.Text
		if exp.Kind != KindExpectEnum && e.WarningMessage.Text != "" {
			fail(e.WarningMessage.Line, "expectations[%d].warning_message: only expect_enum can warn; use failure_message", i)
		}
		what := fmt.Sprintf("expectations[%d] (%s).%s", i, e.Name, exp.Kind)
		ce := compiledExpectation{Expectation: exp, prg: compileAt(what, src, full, want)}
		ce.failure = templateAt(fmt.Sprintf("expectations[%d].failure_message", i), e.FailureMessage, full)
		ce.warning = templateAt(fmt.Sprintf("expectations[%d].warning_message", i), e.WarningMessage, full)
		ch.Expectations = append(ch.Expectations, exp)
		ch.expectations = append(ch.expectations, ce)
	}
	if len(l.errs) > nerr {
		return nil
	}
	return ch
}

// normalize turns YAML-decoded numbers into the types CEL uses (int64,
// float64) throughout a value.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// ResolveArgument returns the fact's argument with each ${env.<key>}
// replaced by the target's env value (for paths that depend on the target,
// such as a HANA SID). An argument without placeholders is returned as is.
func (f Fact) ResolveArgument(env map[string]any) (string, error) {
	var missing []string
	out := argumentPlaceholder.ReplaceAllStringFunc(f.Argument, func(m string) string {
		key := strings.TrimPrefix(m[2:len(m)-1], "env.")
		v, ok := env[key]
		if !ok || v == nil {
			missing = append(missing, key)
			return m
		}
		return fmt.Sprint(v)
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("fact %s: argument %q needs env %s", f.Name, f.Argument, strings.Join(missing, ", "))
	}
	return out, nil
}
