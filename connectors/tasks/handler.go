package tasks

import (
	"context"
	"errors"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Handler runs tasks of one type. An error retries the task with backoff
// unless it is Permanent; a nil error completes it.
type Handler interface {
	Run(ctx context.Context, t *fleetv1.Task, out Output) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, t *fleetv1.Task, out Output) error

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, t *fleetv1.Task, out Output) error {
	return f(ctx, t, out)
}

// Output is what a running task may produce. Both are durable (acks=all)
// when they return, so a task completes only after its effects are stored.
type Output interface {
	// Enqueue fans out further tasks (ids, enqueued_at and parent_id are
	// filled in when empty).
	Enqueue(ctx context.Context, tasks ...*fleetv1.Task) error
	// Discover publishes discoveries to fleet.discoveries.v1 keyed by
	// their agent id, partitioned like goka.
	Discover(ctx context.Context, ds ...*fleetv1.Discovery) error
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so the task goes to the dead-letter topic at once
// instead of being retried.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
