package facts

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestGatherFactsGathersEachFactOnceAndAnswersEachRequest(t *testing.T) {
	r := testRegistry(t)
	var calls atomic.Int32
	r.gatherers["count@v1"] = GathererFunc(func(_ context.Context, arg string) (any, error) {
		calls.Add(1)
		return map[string]any{"arg": arg, "n": int64(1), "list": []any{true, nil, 1.5}}, nil
	})
	r.gatherers["odd@v1"] = GathererFunc(func(context.Context, string) (any, error) { return []string{"not", "JSON-like"}, nil })
	reqs := []*fleetv1.FactRequest{
		{CheckId: "A", Name: "x", Gatherer: "count@v1", Argument: "1"},
		{CheckId: "B", Name: "y", Gatherer: "count@v1", Argument: "1"},
		{CheckId: "B", Name: "z", Gatherer: "count@v1", Argument: "2"},
		{CheckId: "C", Name: "w", Gatherer: "odd@v1"},
	}
	got := r.GatherFacts(context.Background(), reqs)
	if calls.Load() != 2 {
		t.Errorf("%d gatherings of two distinct facts", calls.Load())
	}
	if len(got) != 4 || got[1].CheckId != "B" || got[1].Name != "y" || got[2].Argument != "2" {
		t.Fatalf("answers %v", got)
	}
	if v := got[2].GetValue().GetStructValue().AsMap(); v["arg"] != "2" || v["n"] != 1.0 || asJSON(t, v["list"]) != `[true,null,1.5]` {
		t.Errorf("value %v", v)
	}
	if got[3].Value != nil || !strings.Contains(got[3].Error, `odd@v1(""): value []string cannot be sent`) {
		t.Errorf("a value structpb cannot hold: %v", got[3])
	}
}
