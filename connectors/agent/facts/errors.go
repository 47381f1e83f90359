package facts

import (
	"context"
	"errors"
	"fmt"
)

// Kinds of gathering errors, for errors.Is and the errors metric.
var (
	// ErrMissing: the tool or file the fact comes from is not on this host.
	ErrMissing = errors.New("missing on this host")
	// ErrArgument: the check asked with an argument the gatherer refuses.
	ErrArgument = errors.New("bad argument")
	// ErrUnknownGatherer: this agent has no gatherer of that name and version.
	ErrUnknownGatherer = errors.New("unknown gatherer")
)

// kindError is an error message of one kind: the message says everything,
// the kind only classifies it.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func missing(format string, a ...any) error {
	return &kindError{kind: ErrMissing, msg: fmt.Sprintf(format, a...)}
}

func badArgument(format string, a ...any) error {
	return &kindError{kind: ErrArgument, msg: fmt.Sprintf(format, a...)}
}

// errorKind names err's kind for the errors metric.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return "missing"
	case errors.Is(err, ErrArgument):
		return "argument"
	case errors.Is(err, ErrUnknownGatherer):
		return "unknown_gatherer"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "failed"
	}
}

// missingTo rewords an ErrMissing error for the fact at hand; other
// errors are returned as they are.
func missingTo(err error, format string, a ...any) error {
	if errors.Is(err, ErrMissing) {
		return missing(format, a...)
	}
	return err
}
