package tasks

import (
	"context"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NoopType is the task type of Noop.
const NoopType = "noop"

// Noop completes at once: for measuring the queue's own overhead and for
// checking a deployment end to end (`fleetstream task enqueue noop`).
var Noop Handler = HandlerFunc(func(context.Context, *fleetv1.Task, Output) error { return nil })
