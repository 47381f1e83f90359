package kafka

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
)

// Record header names carried by every record (ARCHITECTURE.md).
const (
	HeaderContentType = "content-type"
	HeaderSchema      = "schema"
	HeaderTraceID     = "trace-id"

	// Dead-letter headers: why and where a record was refused.
	HeaderDLQReason    = "dlq-reason"
	HeaderDLQStage     = "dlq-stage"
	HeaderDLQTopic     = "dlq-source-topic"
	HeaderDLQPartition = "dlq-source-partition"
	HeaderDLQOffset    = "dlq-source-offset"

	ContentTypeProtobuf = "application/x-protobuf"
)

// Headers returns the standard headers of a record holding msg.
func Headers(msg proto.Message, traceID string) map[string]string {
	return map[string]string{
		HeaderContentType: ContentTypeProtobuf,
		HeaderSchema:      string(msg.ProtoReflect().Descriptor().FullName()),
		HeaderTraceID:     traceID,
	}
}

// RecordHeaders converts headers to franz-go's form.
func RecordHeaders(h map[string]string) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(h))
	for k, v := range h {
		out = append(out, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return out
}

// DeadLetterHeaders describes a refused record: the stage that refused it,
// the reason, and where it came from, so it can be inspected and replayed.
func DeadLetterHeaders(stage, reason, topic string, partition int32, offset int64) map[string]string {
	return map[string]string{
		HeaderDLQStage:     stage,
		HeaderDLQReason:    reason,
		HeaderDLQTopic:     topic,
		HeaderDLQPartition: strconv.Itoa(int(partition)),
		HeaderDLQOffset:    strconv.FormatInt(offset, 10),
	}
}
