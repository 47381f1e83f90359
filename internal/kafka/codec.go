package kafka

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// ProtoCodec is a goka codec for a protobuf message type. Use it for group
// tables (written only by us); input streams use goka's bytes codec and
// decode in the callback so a bad record goes to the dead-letter topic
// instead of stopping the processor.
type ProtoCodec[T any, P interface {
	*T
	proto.Message
}] struct{}

// Encode marshals a P.
func (ProtoCodec[T, P]) Encode(value any) ([]byte, error) {
	m, ok := value.(P)
	if !ok {
		return nil, fmt.Errorf("proto codec: got %T, want %T", value, P(nil))
	}
	return proto.Marshal(m)
}

// Decode unmarshals into a new P.
func (ProtoCodec[T, P]) Decode(data []byte) (any, error) {
	m := P(new(T))
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("proto codec %T: %w", m, err)
	}
	return m, nil
}
