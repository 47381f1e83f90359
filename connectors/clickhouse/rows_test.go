package clickhouse

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func marshal(t testing.TB, ev *fleetv1.Event) []byte {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProjectHostEvent(t *testing.T) {
	h := hostState("host-a", "alpha", "SLES", "15-SP5", "passing", 2)
	ev := detailsUpdated(h, "e-1", "os_version", "kernel_version")
	p, err := project(marshal(t, ev))
	if err != nil {
		t.Fatal(err)
	}
	if p.eventType != "HostDetailsUpdated" {
		t.Errorf("event type %q", p.eventType)
	}
	// Both JSON columns are real protojson of their messages.
	var payload fleetv1.HostDetailsUpdated
	if err := protojson.Unmarshal([]byte(p.payload), &payload); err != nil || !proto.Equal(&payload, ev.GetHostDetailsUpdated()) {
		t.Errorf("payload %s does not round-trip: %v", p.payload, err)
	}
	if !strings.Contains(p.payload, `"changed_fields"`) {
		t.Errorf("payload does not use proto field names: %s", p.payload)
	}
	var state fleetv1.AggregateState
	if err := protojson.Unmarshal([]byte(p.state), &state); err != nil || !proto.Equal(&state, ev.GetState()) {
		t.Errorf("state %s does not round-trip: %v", p.state, err)
	}
	var host fleetv1.Host
	if err := protojson.Unmarshal([]byte(p.hostState), &host); err != nil || !proto.Equal(&host, h) {
		t.Errorf("host state %s does not round-trip: %v", p.hostState, err)
	}
	if p.host.GetId() != "host-a" {
		t.Errorf("host not projected: %v", p.host)
	}
}

func TestProjectRejections(t *testing.T) {
	h := hostState("host-a", "alpha", "SLES", "15-SP5", "passing", 2)
	p, err := project(marshal(t, rejected(h, "e-r", "nope")))
	if err != nil {
		t.Fatal(err)
	}
	if p.host != nil || p.eventType != "CommandRejected" || p.state == "" {
		t.Errorf("rejection projected as type %q, host %v, state %q; want no host row, the state kept in events", p.eventType, p.host, p.state)
	}

	noPayload := registered(h, "e-x")
	noPayload.Payload = nil
	noHostID := registered(hostState("", "alpha", "SLES", "15-SP5", "passing", 1), "e-y")
	noHostID.AggregateId = "host-a"
	for name, tc := range map[string]struct {
		value  []byte
		reason string
		says   string
	}{
		"garbage":         {[]byte("not a protobuf"), reasonUndecodable, "not a fleetstream.v1.Event"},
		"empty":           {nil, reasonInvalid, "event without event_id, aggregate_type, aggregate_id"},
		"no payload":      {marshal(t, noPayload), reasonInvalid, "no payload this sink knows"},
		"host without id": {marshal(t, noHostID), reasonInvalid, "host state without id"},
	} {
		_, err := project(tc.value)
		rej, ok := err.(*rejectionError)
		if !ok || rej.reason != tc.reason || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: error %v, want reason %s saying %q", name, err, tc.reason, tc.says)
		}
	}
}

func BenchmarkProject(b *testing.B) {
	value := marshal(b, detailsUpdated(hostState("host-a", "alpha", "SLES", "15-SP5", "passing", 2), "e-1", "os_version"))
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := project(value); err != nil {
			b.Fatal(err)
		}
	}
}
