package scenario

import (
	"encoding/json"
	"maps"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const fixtures = "../../testdata/fixtures/trento/"

// fixtureAgent is the agent id of the Trento discovery fixtures.
const fixtureAgent = "779cdd70-e9e2-58ca-b18a-bf3eb3f71244"

var collectedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture returns the raw raw of a Trento fixture (path relative to
// testdata/fixtures/trento), bytes as the agent sent them.
func fixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures + path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return f.Payload
}

// modified re-encodes raw with changes applied; encoding/json sorts
// the keys, so even no changes give different bytes with the same facts.
func modified(t *testing.T, raw []byte, changes map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	maps.Copy(m, changes)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func discovery(typ string, raw []byte, at time.Time) *fleetv1.Discovery {
	return &fleetv1.Discovery{
		AgentId:       fixtureAgent,
		DiscoveryType: typ,
		CollectedAt:   timestamppb.New(at),
		Payload:       raw,
		Source:        "agent",
	}
}

// fixtureDetails is host_discovery.json decoded (the decoder is tested
// field by field in schemas/raw).
func fixtureDetails(t *testing.T) *fleetv1.HostDetails {
	t.Helper()
	d, err := payload.DecodeHost(fixture(t, "discovery/host_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
