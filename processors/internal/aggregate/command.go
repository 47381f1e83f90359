package aggregate

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Reasons a command record is dead-lettered; they label the dead-letter
// metric.
const (
	reasonNotProtobuf     = "not_protobuf"
	reasonInvalidEnvelope = "invalid_envelope"
	// An error that is not a deadLetter: a bug, not a bad record.
	reasonInternal = "internal"
)

// deadLetter is a record that cannot be processed as a command at all.
type deadLetter struct {
	reason string
	err    error
}

func (d *deadLetter) Error() string { return d.err.Error() }
func (d *deadLetter) Unwrap() error { return d.err }

// deadLetterReason labels err, returned by parseCommand, in the
// dead-letter metric.
func deadLetterReason(err error) string {
	if dl, ok := errors.AsType[*deadLetter](err); ok {
		return dl.reason
	}
	return reasonInternal
}

// parseCommand decodes and validates one input record keyed by key;
// keyedBy names what commands must be keyed by ("host id"), for the
// sender. Commands that decode but break a business rule are not dead
// letters: the aggregate's decide rejects them with an event.
func parseCommand(key string, value []byte, keyedBy string) (*fleetv1.Command, error) {
	c := new(fleetv1.Command)
	if err := proto.Unmarshal(value, c); err != nil {
		return nil, &deadLetter{reasonNotProtobuf, fmt.Errorf("value is not a fleetstream.v1.Command: %w", err)}
	}
	var problem string
	switch {
	case c.GetAggregateId() != key:
		// The table is keyed by record key and events by aggregate id.
		problem = fmt.Sprintf("record key %q differs from aggregate_id %q: key commands by %s", key, c.GetAggregateId(), keyedBy)
	case key == "":
		problem = "command has no aggregate_id"
	case c.GetCommandId() == "":
		problem = "command has no command_id"
	case c.GetIssuedAt() == nil:
		problem = "command has no issued_at"
	case c.GetBody() == nil:
		// Also what a command type newer than this processor looks like:
		// dead-lettered, it can be replayed after an upgrade.
		problem = "command has no body this processor knows"
	}
	if problem != "" {
		return nil, &deadLetter{reasonInvalidEnvelope, errors.New(problem)}
	}
	return c, nil
}

// CommandName is the name of c's body message, e.g. "RegisterHost"; it
// labels metrics and CommandRejected events.
func CommandName(c *fleetv1.Command) string {
	m := c.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if fd == nil {
		return "none"
	}
	return string(fd.Message().Name())
}
