package scenario

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

var testOrigin = origin{topic: "fleet.discoveries.v1", partition: 3, offset: 42, traceID: "trace-1"}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDiscovery(t *testing.T) {
	valid := discovery(payload.HostDiscovery, []byte(`{}`), collectedAt)
	tests := []struct {
		name   string
		key    string
		value  []byte
		reason string // "" = accepted
	}{
		{"valid", fixtureAgent, marshal(t, valid), ""},
		{"heartbeat", fixtureAgent, marshal(t, discovery(payload.Heartbeat, nil, collectedAt)), ""},
		{"json instead of protobuf", fixtureAgent, []byte(`{"agent_id":"a"}`), reasonNotProtobuf},
		{"tombstone", fixtureAgent, nil, reasonInvalidEnvelope},
		{"no agent id", "", marshal(t, &fleetv1.Discovery{DiscoveryType: payload.HostDiscovery, CollectedAt: timestamppb.New(collectedAt)}), reasonInvalidEnvelope},
		{"key is not the agent", "other", marshal(t, valid), reasonInvalidEnvelope},
		{"no collected_at", fixtureAgent, marshal(t, &fleetv1.Discovery{AgentId: fixtureAgent, DiscoveryType: payload.HostDiscovery}), reasonInvalidEnvelope},
		{"unknown type", fixtureAgent, marshal(t, discovery("toaster_discovery", []byte(`{}`), collectedAt)), reasonUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDiscovery(tt.key, tt.value)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if d.GetAgentId() != fixtureAgent {
					t.Fatalf("agent id %q", d.GetAgentId())
				}
				return
			}
			if got := rejectionReason(err); err == nil || got != tt.reason {
				t.Fatalf("err = %v (reason %q), want reason %q", err, got, tt.reason)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	host := fixture(t, "discovery/host_discovery.json")
	registered := func() *fleetv1.ScenarioState {
		res, err := detect(nil, discovery(payload.HostDiscovery, host, collectedAt), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		return res.state
	}
	cloud := fixture(t, "discovery/cloud_discovery_aws.json")
	tests := []struct {
		name      string
		state     func() *fleetv1.ScenarioState
		in        *fleetv1.Discovery
		outcome   outcome
		commands  []string // command names
		writes    bool     // table write expected
		rejection string
	}{
		{"first host discovery", func() *fleetv1.ScenarioState { return nil }, discovery(payload.HostDiscovery, host, collectedAt), outcomeCommands, []string{"RegisterHost"}, true, ""},
		{"same bytes again", registered, discovery(payload.HostDiscovery, host, collectedAt), outcomeUnchanged, nil, false, ""},
		{"same facts, other key order", registered, discovery(payload.HostDiscovery, modified(t, host, nil), collectedAt), outcomeNoDifference, nil, true, ""},
		{"changed facts", registered, discovery(payload.HostDiscovery, modified(t, host, map[string]any{"hostname": "suse2"}), collectedAt), outcomeCommands, []string{"UpdateHostDetails"}, true, ""},
		{"heartbeat before registration", func() *fleetv1.ScenarioState { return nil }, discovery(payload.Heartbeat, nil, collectedAt), outcomeHostUnknown, nil, false, ""},
		{"heartbeat after registration", registered, discovery(payload.Heartbeat, nil, collectedAt), outcomeCommands, []string{"UpdateHeartbeat"}, false, ""},
		{"cloud discovery", registered, discovery(payload.CloudDiscovery, cloud, collectedAt), outcomeCommands, []string{"UpdateProvider"}, true, ""},
		{"null cluster discovery", registered, discovery(payload.HAClusterDiscovery, []byte("null"), collectedAt), outcomeNoDifference, nil, true, ""},
		{"malformed saptune payload", registered, discovery(payload.SaptuneDiscovery, []byte(`{"a":`), collectedAt), "", nil, false, reasonMalformedPayload},
		{"malformed host payload", registered, discovery(payload.HostDiscovery, []byte(`not json`), collectedAt), "", nil, false, reasonMalformedPayload},
		{"unknown type", registered, discovery("toaster_discovery", host, collectedAt), "", nil, false, reasonUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := tt.state()
			before := proto.CloneOf(state)
			res, err := detect(state, tt.in, testOrigin)
			if !proto.Equal(state, before) {
				t.Fatal("detect modified the state it was given")
			}
			if tt.rejection != "" {
				if got := rejectionReason(err); err == nil || got != tt.rejection {
					t.Fatalf("err = %v, want reason %q", err, tt.rejection)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.outcome != tt.outcome {
				t.Errorf("outcome %q, want %q", res.outcome, tt.outcome)
			}
			var names []string
			for _, c := range res.commands {
				names = append(names, aggregate.CommandName(c))
			}
			if len(names) != len(tt.commands) || (len(names) > 0 && names[0] != tt.commands[0]) {
				t.Errorf("commands %v, want %v", names, tt.commands)
			}
			if (res.state != nil) != tt.writes {
				t.Errorf("state written: %v, want %v", res.state != nil, tt.writes)
			}
			if res.state != nil && res.state.Fingerprints[tt.in.DiscoveryType] == 0 {
				t.Errorf("no fingerprint recorded for %s", tt.in.DiscoveryType)
			}
		})
	}
}

func TestCommandEnvelope(t *testing.T) {
	d := discovery(payload.HostDiscovery, fixture(t, "discovery/host_discovery.json"), collectedAt)
	res, err := detect(nil, d, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	c := res.commands[0]
	if c.AggregateId != fixtureAgent || !c.IssuedAt.AsTime().Equal(collectedAt) || c.TraceId != "trace-1" {
		t.Errorf("envelope: %v", c)
	}
	// UUIDv5(UUIDv5(URL, "urn:fleetstream:command"), "fleet.discoveries.v1/3/42/0"),
	// computed independently (Python's uuid module): consumers may recompute it.
	if c.CommandId != "ba00c7e9-f82c-55ef-a8aa-208ad6e674e5" {
		t.Errorf("command id %s", c.CommandId)
	}
	if commandID(testOrigin, 1) == c.CommandId {
		t.Error("second command of a record has the first one's id")
	}
	again, _ := detect(nil, d, testOrigin)
	if again.commands[0].CommandId != c.CommandId {
		t.Error("reprocessing changed the command id")
	}
	next := testOrigin
	next.offset++
	other, _ := detect(nil, d, next)
	if other.commands[0].CommandId == c.CommandId {
		t.Error("another record got the same command id")
	}
}

func TestRejectionUnwraps(t *testing.T) {
	inner := errors.New("boom")
	err := error(&rejection{reason: reasonMalformedPayload, err: inner})
	if !errors.Is(err, inner) {
		t.Error("rejection hides its cause")
	}
	if rejectionReason(inner) != "internal" {
		t.Error("a plain error is not labelled internal")
	}
}
