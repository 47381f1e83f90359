package catalog

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// DefaultCostLimit bounds the work of one expression evaluation (CEL cost
// units, roughly one per operation and per element a comprehension visits).
// The catalog's most expensive check costs well under a thousand on real
// facts; the limit is there to stop a runaway expression, not to ration.
const DefaultCostLimit = 1_000_000

// compiler builds programs for one catalog load.
type compiler struct {
	env       *cel.Env
	costLimit uint64
}

func newCompiler(costLimit uint64, extra ...cel.EnvOption) (*compiler, error) {
	opts := []cel.EnvOption{
		cel.Variable("facts", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("values", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("env", cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
		ext.Lists(),
		ext.Math(),
		ext.Sets(),
		ext.Bindings(),
	}
	opts = append(opts, functions()...)
	opts = append(opts, extra...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	return &compiler{env: env, costLimit: costLimit}, nil
}

// scope says which names an expression may use.
type scope struct {
	facts  map[string]bool // nil: facts may not be used
	values map[string]bool // nil: values may not be used
}

// exprError is a compile problem at a line of an expression (1-based,
// relative to the expression text).
type exprError struct {
	line int
	msg  string
}

// compile type-checks an expression, checks that every facts.x / values.y it
// names is declared, that it returns want (dyn is accepted: facts are
// untyped), and builds its program with the cost limit.
func (c *compiler) compile(text string, sc scope, want *cel.Type) (cel.Program, []exprError) {
	checked, iss := c.env.Compile(text)
	if iss != nil && iss.Err() != nil {
		var errs []exprError
		for _, e := range iss.Errors() {
			errs = append(errs, exprError{line: max(e.Location.Line(), 1),
				msg: fmt.Sprintf("%s (column %d)", e.Message, e.Location.Column()+1)})
		}
		return nil, errs
	}
	if errs := checkReferences(checked, sc); len(errs) > 0 {
		return nil, errs
	}
	if want != nil {
		out := checked.OutputType()
		if !out.IsAssignableType(want) && !out.IsExactType(types.DynType) {
			return nil, []exprError{{line: 1, msg: fmt.Sprintf("must return %s, returns %s", want, out)}}
		}
	}
	prg, err := c.env.Program(checked, cel.CostLimit(c.costLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, []exprError{{line: 1, msg: err.Error()}}
	}
	return prg, nil
}

// checkReferences finds facts.x, facts["x"], values.y and values["y"] whose
// name is not declared by the check, and uses of facts or values where the
// expression may not use them (when/exclude see only env).
func checkReferences(checked *cel.Ast, sc scope) []exprError {
	a := checked.NativeRep()
	info := a.SourceInfo()
	var errs []exprError
	report := func(id int64, msg string) {
		errs = append(errs, exprError{line: max(info.GetStartLocation(id).Line(), 1), msg: msg})
	}
	declared := func(root string) map[string]bool {
		if root == "facts" {
			return sc.facts
		}
		return sc.values
	}
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		var operand ast.Expr
		var field string
		switch e.Kind() {
		case ast.SelectKind:
			operand, field = e.AsSelect().Operand(), e.AsSelect().FieldName()
		case ast.CallKind:
			call := e.AsCall()
			if (call.FunctionName() != operators.Index && call.FunctionName() != operators.OptIndex &&
				call.FunctionName() != operators.OptSelect) || len(call.Args()) != 2 {
				return
			}
			operand = call.Args()[0]
			if lit := call.Args()[1]; lit.Kind() == ast.LiteralKind {
				if s, ok := lit.AsLiteral().(types.String); ok {
					field = string(s)
				}
			}
		default:
			return
		}
		if operand.Kind() != ast.IdentKind {
			return
		}
		root := operand.AsIdent()
		if root != "facts" && root != "values" {
			return
		}
		names := declared(root)
		switch {
		case names == nil:
			report(e.ID(), fmt.Sprintf("%s may not be used here (when and exclude see only env)", root))
		case field != "" && !names[field]:
			report(e.ID(), fmt.Sprintf("unknown %s %q: declare it under %s:", strings.TrimSuffix(root, "s"), field, root))
		}
	}))
	return errs
}

// template is a message with ${expression} placeholders compiled to
// programs.
type template struct {
	parts []templatePart
}

type templatePart struct {
	literal string
	prg     cel.Program
}

// compileTemplate splits a message on ${...} (braces inside the expression
// nest) and compiles each placeholder.
func (c *compiler) compileTemplate(text string, sc scope) (*template, []exprError) {
	t := &template{}
	rest := text
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			if rest != "" {
				t.parts = append(t.parts, templatePart{literal: rest})
			}
			return t, nil
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{literal: rest[:i]})
		}
		depth, end := 1, -1
		for j := i + 2; j < len(rest) && end < 0; j++ {
			switch rest[j] {
			case '{':
				depth++
			case '}':
				if depth--; depth == 0 {
					end = j
				}
			}
		}
		if end < 0 {
			return nil, []exprError{{line: 1 + strings.Count(text[:len(text)-len(rest)+i], "\n"), msg: "unterminated ${ in message"}}
		}
		prg, errs := c.compile(rest[i+2:end], sc, nil)
		if len(errs) > 0 {
			line := strings.Count(text[:len(text)-len(rest)+i], "\n")
			for k := range errs {
				errs[k].line += line
				errs[k].msg = "in ${" + rest[i+2:end] + "}: " + errs[k].msg
			}
			return nil, errs
		}
		t.parts = append(t.parts, templatePart{prg: prg})
		rest = rest[end+1:]
	}
}
