package aggregatetest

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Want is what one command must do to an aggregate.
type Want struct {
	Outcome aggregate.Outcome
	Events  []string // payload names, in order
	Version uint64   // of every event
	// Versions, when set, are the versions of the events in order
	// instead (a command whose events take several versions).
	Versions []uint64
}

// Decide applies cmd to current with an aggregate's decide, checks the
// decision against want and against what every decide promises (current
// unmodified, each event's envelope from cmd, the state written exactly
// when accepted), and returns it for the caller's own checks.
func Decide[PS aggregate.State](t *testing.T, decide func(PS, *fleetv1.Command) aggregate.Decision[PS], current PS, cmd *fleetv1.Command, want Want) aggregate.Decision[PS] {
	t.Helper()
	before := proto.CloneOf(current)
	d := decide(current, cmd)
	if !proto.Equal(current, before) {
		t.Fatal("decide modified the current state")
	}
	if d.Outcome != want.Outcome {
		t.Errorf("outcome %s, want %s", d.Outcome, want.Outcome)
	}
	var names []string
	for i, e := range d.Events {
		names = append(names, aggregate.EventName(e))
		version := want.Version
		if i < len(want.Versions) {
			version = want.Versions[i]
		}
		if e.GetVersion() != version {
			t.Errorf("%s version %d, want %d", aggregate.EventName(e), e.GetVersion(), version)
		}
		if e.GetAggregateId() != cmd.GetAggregateId() || e.GetCommandId() != cmd.GetCommandId() || !e.GetOccurredAt().AsTime().Equal(cmd.GetIssuedAt().AsTime()) {
			t.Errorf("envelope %v, want the aggregate, id and time of %v", e, cmd)
		}
	}
	if !slices.Equal(names, want.Events) {
		t.Errorf("events %v, want %v", names, want.Events)
	}
	// A rejection or no-op leaves the table alone.
	if written := d.State.ProtoReflect().IsValid(); written != (want.Outcome == aggregate.Accepted) {
		t.Errorf("state written: %v", d.State)
	}
	return d
}
