package aggregate

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestParseCommand(t *testing.T) {
	valid := command("c1")
	marshal := func(c *fleetv1.Command) []byte {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	without := func(f func(*fleetv1.Command)) []byte {
		c := proto.CloneOf(valid)
		f(c)
		return marshal(c)
	}
	tests := []struct {
		name, key string
		value     []byte
		reason    string
		says      string // in the error
	}{
		{"valid", "h1", marshal(valid), "", ""},
		{"not protobuf", "h1", []byte(`{"command_id":"x"}`), reasonNotProtobuf, "not a fleetstream.v1.Command"},
		{"tombstone", "h1", nil, reasonInvalidEnvelope, "differs from aggregate_id"},
		{"key differs", "h2", marshal(valid), reasonInvalidEnvelope, `record key "h2" differs from aggregate_id "h1": key commands by host id`},
		{"no aggregate id", "", without(func(c *fleetv1.Command) { c.AggregateId = "" }), reasonInvalidEnvelope, "no aggregate_id"},
		{"no command id", "h1", without(func(c *fleetv1.Command) { c.CommandId = "" }), reasonInvalidEnvelope, "no command_id"},
		{"no issued_at", "h1", without(func(c *fleetv1.Command) { c.IssuedAt = nil }), reasonInvalidEnvelope, "no issued_at"},
		{"no body", "h1", without(func(c *fleetv1.Command) { c.Body = nil }), reasonInvalidEnvelope, "no body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCommand(tt.key, tt.value, "host id")
			if tt.reason == "" {
				if err != nil || !proto.Equal(c, valid) {
					t.Fatalf("got %v, %v", c, err)
				}
				return
			}
			if got := deadLetterReason(err); got != tt.reason || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err %v (reason %s), want a %s dead letter saying %q", err, got, tt.reason, tt.says)
			}
		})
	}
}

func TestDeadLetterReasonOfOtherErrors(t *testing.T) {
	if got := deadLetterReason(errors.New("boom")); got != reasonInternal {
		t.Errorf("reason %q, want %q", got, reasonInternal)
	}
}
