package aggregate

import fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"

// Outcome of a command; labels the commands metric. An aggregate may add
// its own (cloud_resource: "stale").
type Outcome string

// The outcomes of every aggregate.
const (
	Accepted Outcome = "accepted" // the state changed (with or without events)
	Rejected Outcome = "rejected" // a CommandRejected event
	Noop     Outcome = "noop"     // nothing to do: already applied, or out of order
)

// Decision is what one command does to one aggregate of state S.
type Decision[S any] struct {
	Events []*fleetv1.Event
	// State is the aggregate after the command, nil when the table need
	// not be written.
	State   S
	Outcome Outcome
}
