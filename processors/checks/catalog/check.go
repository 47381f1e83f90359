package catalog

import (
	"slices"
	"sort"

	"github.com/google/cel-go/cel"
)

// Result values, ordered from best to worst: a check's result is the worst
// of its targets'. "error" means the check could not be evaluated (a fact
// could not be gathered, an expression failed or exceeded the cost limit);
// for health it counts as critical.
const (
	Passing  = "passing"
	Warning  = "warning"
	Critical = "critical"
	Error    = "error"
)

// Target types a check's metadata.target_type names.
const (
	TargetHost    = "host"
	TargetCluster = "cluster"
)

// Expectation kinds.
const (
	KindExpect     = "expect"
	KindExpectSame = "expect_same"
	KindExpectEnum = "expect_enum"
)

// Catalog is a validated set of checks whose expressions are compiled and
// ready to evaluate. It is immutable and safe for concurrent use.
type Catalog struct {
	checks []*Check
	byID   map[string]*Check
}

// Checks returns every check sorted by ID.
func (c *Catalog) Checks() []*Check { return slices.Clone(c.checks) }

// Check returns the check with the given ID.
func (c *Catalog) Check(id string) (*Check, bool) {
	ch, ok := c.byID[id]
	return ch, ok
}

// Groups returns the distinct check groups, sorted.
func (c *Catalog) Groups() []string {
	seen := map[string]bool{}
	var out []string
	for _, ch := range c.checks {
		if !seen[ch.Group] {
			seen[ch.Group] = true
			out = append(out, ch.Group)
		}
	}
	sort.Strings(out)
	return out
}

// Check is one configuration check of the catalog. The exported fields are
// the definition as written in its YAML file; the compiled programs are
// built once when the catalog is loaded.
type Check struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Group        string         `json:"group"`
	Description  string         `json:"description"`
	Remediation  string         `json:"remediation"`
	Severity     string         `json:"severity"`
	Metadata     map[string]any `json:"metadata"`
	When         string         `json:"when,omitempty"`
	Exclude      string         `json:"exclude,omitempty"`
	Facts        []Fact         `json:"facts"`
	Values       []Value        `json:"values,omitempty"`
	Expectations []Expectation  `json:"expectations"`
	// File is where the check was loaded from ("checks/156F64.yaml" for the
	// embedded catalog).
	File string `json:"file"`

	when, exclude cel.Program
	values        []compiledValue
	expectations  []compiledExpectation
}

// Fact is one piece of data a check needs from each target, gathered by
// Gatherer ("name@vN") with an optional Argument.
type Fact struct {
	Name     string `json:"name"`
	Gatherer string `json:"gatherer"`
	Argument string `json:"argument,omitempty"`
}

// Value is a named parameter of a check's expectations: its Default, the
// first Condition whose When holds, or a per-target override.
type Value struct {
	Name       string      `json:"name"`
	Default    any         `json:"default"`
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition sets a value when its CEL expression holds.
type Condition struct {
	Value any    `json:"value"`
	When  string `json:"when"`
}

// Expectation is one assertion of a check: Kind is expect (bool on every
// target), expect_same (one value on all targets) or expect_enum ("passing",
// "warning" or "critical" per target, the worst wins).
type Expectation struct {
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Expression     string `json:"expression"`
	FailureMessage string `json:"failure_message,omitempty"`
	WarningMessage string `json:"warning_message,omitempty"`
}

// TargetType is "host" or "cluster".
func (c *Check) TargetType() string {
	s, _ := c.Metadata["target_type"].(string)
	return s
}

// Target is one entity a check is evaluated on. Env holds the target's
// attributes used by metadata selectors and by when/exclude ("target_type",
// "cluster_type", "provider", "arch", "os_version", "hostname", "sid", ...).
type Target struct {
	ID         string
	Env        map[string]any
	Facts      map[string]any    // fact name -> JSON-like value
	FactErrors map[string]string // fact name -> why it could not be gathered
	TimedOut   bool              // the target's agent did not answer
}

// Result is the outcome of one check over its targets.
type Result struct {
	CheckID  string         `json:"check_id"`
	Result   string         `json:"result"`
	Error    string         `json:"error,omitempty"`
	Targets  []TargetResult `json:"targets"`
	Messages []string       `json:"messages,omitempty"`
}

// TargetResult is the outcome of one check on one target.
type TargetResult struct {
	ID     string         `json:"id"`
	Result string         `json:"result"`
	Values map[string]any `json:"values,omitempty"` // resolved values
	// Returns holds what each expectation returned (expectation name -> value).
	Returns  map[string]any `json:"returns,omitempty"`
	Messages []string       `json:"messages,omitempty"`
	Error    string         `json:"error,omitempty"`
	TimedOut bool           `json:"timed_out,omitempty"`
}

// rank orders results from best to worst.
func rank(result string) int {
	switch result {
	case Passing:
		return 0
	case Warning:
		return 1
	case Critical:
		return 2
	default:
		return 3
	}
}

// Worst returns the worse of two results.
func Worst(a, b string) string {
	if rank(b) > rank(a) {
		return b
	}
	return a
}
