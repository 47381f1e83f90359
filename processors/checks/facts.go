package checks

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Derived facts: the checks processor turns every discovery of these types
// into the fact "discovery.<type>@v1" (no argument) whose value is the
// discovery's payload as the agent sent it. Checks read them without an
// agent round-trip.
var derivedTypes = []string{
	payload.HostDiscovery,
	payload.HAClusterDiscovery,
	payload.SaptuneDiscovery,
	payload.CloudDiscovery,
	payload.SubscriptionDiscovery,
	payload.SAPSystemDiscovery,
}

// derivedPrefix starts the gatherer of every derived fact.
const derivedPrefix = "discovery."

// DerivedGatherer is the gatherer of the fact derived from discoveries of
// discoveryType, e.g. "discovery.ha_cluster_discovery@v1".
func DerivedGatherer(discoveryType string) string {
	return derivedPrefix + discoveryType + "@v1"
}

// IsDerived reports whether gatherer names a fact derived from discoveries
// (never asked of an agent).
func IsDerived(gatherer string) bool { return strings.HasPrefix(gatherer, derivedPrefix) }

func compareFact(a, b *fleetv1.Fact) int {
	return cmp.Or(cmp.Compare(a.GetGatherer(), b.GetGatherer()), cmp.Compare(a.GetArgument(), b.GetArgument()))
}

// setFact puts f into facts (sorted), replacing the fact of the same
// gatherer and argument; it reports whether anything but the gathering
// time changed.
func setFact(facts []*fleetv1.Fact, f *fleetv1.Fact) ([]*fleetv1.Fact, bool) {
	i, found := slices.BinarySearchFunc(facts, f, compareFact)
	if !found {
		return slices.Insert(facts, i, f), true
	}
	old := facts[i]
	if bytes.Equal(old.GetValue(), f.GetValue()) && old.GetError() == f.GetError() {
		return facts, false
	}
	facts[i] = f
	return facts, true
}

func findFact(facts []*fleetv1.Fact, gatherer, argument string) *fleetv1.Fact {
	i, found := slices.BinarySearchFunc(facts, &fleetv1.Fact{Gatherer: gatherer, Argument: argument}, compareFact)
	if !found {
		return nil
	}
	return facts[i]
}

// gatheredFact converts an agent's answer to a stored fact.
func gatheredFact(g *fleetv1.GatheredFact, at *timestamppb.Timestamp) (*fleetv1.Fact, error) {
	f := &fleetv1.Fact{Gatherer: g.GetGatherer(), Argument: g.GetArgument(), Error: g.GetError(), GatheredAt: at}
	if g.GetError() != "" {
		return f, nil
	}
	v := g.GetValue()
	if v == nil {
		v = structpb.NewNullValue()
	}
	b, err := protojson.MarshalOptions{}.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("fact %s(%s): %w", g.GetGatherer(), g.GetArgument(), err)
	}
	f.Value = compactJSON(b)
	return f, nil
}

// compactJSON strips insignificant whitespace, so equal values compare
// equal whatever produced them (protojson adds random spaces).
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// factValue decodes a stored fact's JSON into what the engine takes
// (nil, bool, float64, string, []any, map[string]any).
func factValue(f *fleetv1.Fact) (any, error) {
	var v any
	if len(f.GetValue()) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(f.GetValue(), &v); err != nil {
		return nil, fmt.Errorf("stored fact %s(%s) is not JSON: %w", f.GetGatherer(), f.GetArgument(), err)
	}
	return v, nil
}

// envMap is a stored env as the engine takes it.
func envMap(s *structpb.Struct) map[string]any {
	if s == nil {
		return map[string]any{}
	}
	return s.AsMap()
}

// setEnv sets key to value (removing it when value is ""), reporting
// whether it changed.
func setEnv(env **structpb.Struct, key, value string) bool {
	if *env == nil {
		*env = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	if (*env).Fields == nil {
		(*env).Fields = map[string]*structpb.Value{}
	}
	old, ok := (*env).Fields[key]
	if value == "" {
		if !ok {
			return false
		}
		delete((*env).Fields, key)
		return true
	}
	if ok && old.GetStringValue() == value {
		return false
	}
	(*env).Fields[key] = structpb.NewStringValue(value)
	return true
}

// toStruct converts an engine map (values of a target result) to a Struct;
// values it cannot hold become their string form.
func toStruct(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(m))}
	for k, v := range m {
		pv, err := structpb.NewValue(normalize(v))
		if err != nil {
			pv = structpb.NewStringValue(fmt.Sprint(v))
		}
		s.Fields[k] = pv
	}
	return s
}

// normalize turns the engine's typed slices and maps into the shapes
// structpb accepts.
func normalize(v any) any {
	switch x := v.(type) {
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out
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

// valueOf converts an override's value to what the engine takes.
func valueOf(v *structpb.Value) any {
	if v == nil {
		return nil
	}
	return v.AsInterface()
}

func cloneFacts(facts []*fleetv1.Fact) []*fleetv1.Fact {
	out := make([]*fleetv1.Fact, len(facts))
	for i, f := range facts {
		out[i] = proto.CloneOf(f)
	}
	return out
}
