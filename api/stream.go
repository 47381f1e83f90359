package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// StreamPath is where NewStream's handler is mounted.
const StreamPath = "GET /api/v1/stream"

// streamMethod names the stream in the scope table and in errors; it is
// not a gRPC method.
const streamMethod = "/fleetstream.v1.EventStream/Subscribe"

// Stream defaults.
const (
	DefaultStreamBuffer    = 256
	DefaultStreamReplay    = 1024
	DefaultStreamHeartbeat = 15 * time.Second
)

// StreamOptions configure NewStream.
type StreamOptions struct {
	// Seeds are the Kafka bootstrap brokers. Required.
	Seeds []string
	// KafkaOpts are extra franz-go options (TLS, SASL).
	KafkaOpts []kgo.Opt
	// Topic is the events topic. Required.
	Topic string
	// Keys authenticate subscribers, who need the read scope. Required.
	Keys *Keys
	// Buffer is how many events a subscriber may fall behind before it is
	// disconnected (it reconnects with Last-Event-ID); default 256. A
	// slow client never holds back the others.
	Buffer int
	// Replay is how many of the newest events are kept for clients that
	// reconnect with Last-Event-ID; default 1024. A client whose last event
	// is older resumes from the newest event, told so in a comment.
	Replay int
	// Heartbeat is the interval of keep-alive comments; default 15s.
	Heartbeat time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry receives the stream's metrics; nil leaves them unregistered.
	Registry prometheus.Registerer
}

// Stream serves GET /api/v1/stream: the domain events of fleet.events.v1 as
// server-sent events, filtered per subscriber. One Kafka consumer per API
// process (no consumer group: every API instance sees every partition)
// starts at the end of the log and fans out to subscribers through bounded
// buffers.
//
// Each message is "id: <event id>", "event: <payload name>" and
// "data: <the Event as protojson, proto field names>". Last-Event-ID is
// honoured from the in-memory replay buffer of the newest events only: the
// stream is a live feed, history is GET /api/v1/{collection}/{id}/events.
type Stream struct {
	o       StreamOptions
	logger  *slog.Logger
	scopes  map[string]Scope
	errMux  *runtime.ServeMux
	metrics streamMetrics

	ready chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	replay []*streamMessage // ring, oldest first once full
	next   int              // ring write position
}

type streamMetrics struct {
	subscribers prometheus.Gauge
	events      prometheus.Counter
	dropped     prometheus.Counter
}

// streamMessage is one event, encoded once for every subscriber.
type streamMessage struct {
	id, name, aggregateType, aggregateID string
	frame                                []byte // the whole SSE message
}

// subscriber is one open stream. ch is closed by the hub when the
// subscriber fell Buffer events behind.
type subscriber struct {
	filter streamFilter
	ch     chan *streamMessage
}

// NewStream checks o; Run consumes, ServeHTTP serves.
func NewStream(o StreamOptions) (*Stream, error) {
	switch {
	case len(o.Seeds) == 0:
		return nil, errors.New("api stream: no Kafka seed brokers")
	case o.Topic == "":
		return nil, errors.New("api stream: no events topic")
	case o.Keys == nil:
		return nil, errors.New("api stream: no API keys")
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultStreamBuffer
	}
	if o.Replay <= 0 {
		o.Replay = DefaultStreamReplay
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultStreamHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(o.Registry)
	return &Stream{
		o:      o,
		logger: o.Logger,
		scopes: map[string]Scope{streamMethod: ScopeRead},
		errMux: runtime.NewServeMux(),
		metrics: streamMetrics{
			subscribers: f.NewGauge(prometheus.GaugeOpts{
				Name: "fleetstream_api_stream_subscribers",
				Help: "Open GET /api/v1/stream connections.",
			}),
			events: f.NewCounter(prometheus.CounterOpts{
				Name: "fleetstream_api_stream_events_total",
				Help: "Events the stream consumed from the events topic (before filtering).",
			}),
			dropped: f.NewCounter(prometheus.CounterOpts{
				Name: "fleetstream_api_stream_slow_disconnects_total",
				Help: "Stream subscribers disconnected because they fell a whole buffer of events behind.",
			}),
		},
		ready: make(chan struct{}),
		done:  make(chan struct{}),
		subs:  map[*subscriber]struct{}{},
	}, nil
}

// Ready is closed once the consumer is positioned at the end of every
// partition: events produced after it are streamed.
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Run consumes the events topic from its end until ctx is done, then ends
// every open stream. It returns an error only when it cannot start.
func (s *Stream) Run(ctx context.Context) error {
	defer close(s.done)
	cl, err := kafka.NewClient(s.o.Seeds, s.o.KafkaOpts...)
	if err != nil {
		return fmt.Errorf("api stream: kafka client: %w", err)
	}
	defer cl.Close()
	// Explicit end offsets rather than a reset policy: what "from now"
	// means is fixed here, before Ready, not at the first fetch.
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, s.o.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("api stream: end offsets of %s: %w", s.o.Topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { offsets[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.o.Topic: offsets})
	close(s.ready)
	s.logger.Info("api stream consuming", "topic", s.o.Topic, "partitions", len(offsets))
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			s.logger.Warn("api stream: fetch failed", "topic", topic, "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) { s.publish(r) })
	}
}

var streamJSON = protojson.MarshalOptions{UseProtoNames: true}

// publish encodes a record once and hands it to every matching subscriber
// without waiting: one whose buffer is full is disconnected.
func (s *Stream) publish(r *kgo.Record) {
	s.metrics.events.Inc()
	ev := &fleetv1.Event{}
	if err := proto.Unmarshal(r.Value, ev); err != nil || ev.GetEventId() == "" {
		s.logger.Warn("api stream: skipped a record that is not an event", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	data, err := streamJSON.Marshal(ev)
	if err != nil {
		s.logger.Warn("api stream: event to JSON", "event_id", ev.GetEventId(), "err", err)
		return
	}
	name := "unknown" // a payload a newer writer added
	if fd := ev.ProtoReflect().WhichOneof(eventPayload); fd != nil {
		name = string(fd.Message().Name())
	}
	var frame bytes.Buffer
	// Ids and names are single-line; protojson output has no newline.
	fmt.Fprintf(&frame, "id: %s\nevent: %s\ndata: %s\n\n", oneLine(ev.GetEventId()), name, data)
	m := &streamMessage{id: ev.GetEventId(), name: name, aggregateType: ev.GetAggregateType(),
		aggregateID: ev.GetAggregateId(), frame: frame.Bytes()}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replay) < s.o.Replay {
		s.replay = append(s.replay, m)
	} else {
		s.replay[s.next] = m
		s.next = (s.next + 1) % s.o.Replay
	}
	for sub := range s.subs {
		if !sub.filter.match(m) {
			continue
		}
		select {
		case sub.ch <- m:
		default:
			delete(s.subs, sub)
			close(sub.ch)
			s.metrics.dropped.Inc()
		}
	}
}

// subscribe registers a subscriber; when lastID is in the replay buffer,
// the matching events after it are queued first. found reports that.
func (s *Stream) subscribe(f streamFilter, lastID string) (sub *subscriber, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var missed []*streamMessage
	if lastID != "" {
		ordered := append(slices.Clone(s.replay[s.next:]), s.replay[:s.next]...)
		if i := slices.IndexFunc(ordered, func(m *streamMessage) bool { return m.id == lastID }); i >= 0 {
			found = true
			for _, m := range ordered[i+1:] {
				if f.match(m) {
					missed = append(missed, m)
				}
			}
		}
	}
	sub = &subscriber{filter: f, ch: make(chan *streamMessage, s.o.Buffer+len(missed))}
	for _, m := range missed {
		sub.ch <- m
	}
	s.subs[sub] = struct{}{}
	return sub, found
}

func (s *Stream) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, sub)
}

// ServeHTTP streams events to one client until it disconnects, falls too
// far behind, or the stream stops.
func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := metadata.NewIncomingContext(r.Context(), metadata.Pairs("authorization", r.Header.Get("Authorization")))
	if err := s.o.Keys.authorize(ctx, s.scopes, streamMethod); err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := parseStreamFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	select {
	case <-s.ready:
	default:
		s.writeError(w, r, status.Error(codes.Unavailable, "the event stream is starting; retry shortly"))
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not buffer a live feed
	w.WriteHeader(http.StatusOK)

	lastID := r.Header.Get("Last-Event-ID")
	sub, found := s.subscribe(f, lastID)
	defer s.unsubscribe(sub)
	s.metrics.subscribers.Inc()
	defer s.metrics.subscribers.Dec()
	// The first comment tells the client it is subscribed: every event
	// after it is delivered.
	hello := ": subscribed\n\n"
	if lastID != "" && !found {
		hello = fmt.Sprintf(": last event %s is no longer in the replay buffer; streaming from the newest event (read the gap from the events endpoints)\n\n", oneLine(lastID))
	}
	if _, err := w.Write([]byte(hello)); err != nil || rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(s.o.Heartbeat)
	defer beat.Stop()
	for {
		var out []byte
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			_, _ = w.Write([]byte(": the server is shutting down; reconnect with Last-Event-ID\n\n"))
			_ = rc.Flush()
			return
		case <-beat.C:
			out = []byte(": heartbeat\n\n")
		case m, ok := <-sub.ch:
			if !ok {
				_, _ = fmt.Fprintf(w, ": disconnected: this client fell %d events behind; reconnect with Last-Event-ID\n\n", s.o.Buffer)
				_ = rc.Flush()
				return
			}
			out = m.frame
		}
		if _, err := w.Write(out); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (s *Stream) writeError(w http.ResponseWriter, r *http.Request, err error) {
	errorHandler(r.Context(), s.errMux, jsonMarshaler, w, r, err)
}

// eventPayload is the Event oneof whose message names the event.
var eventPayload = (&fleetv1.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("payload")

// eventNames are the payload names an event_type filter accepts.
var eventNames = func() []string {
	var out []string
	fields := eventPayload.Fields()
	for i := range fields.Len() {
		out = append(out, string(fields.Get(i).Message().Name()))
	}
	slices.Sort(out)
	return out
}()

// streamFilter selects events; each non-empty list must contain the
// event's value.
type streamFilter struct {
	entityTypes, entityIDs, eventTypes []string
}

func (f streamFilter) match(m *streamMessage) bool {
	return (len(f.entityTypes) == 0 || slices.Contains(f.entityTypes, m.aggregateType)) &&
		(len(f.entityIDs) == 0 || slices.Contains(f.entityIDs, m.aggregateID)) &&
		(len(f.eventTypes) == 0 || slices.Contains(f.eventTypes, m.name))
}

var entityTypePattern = regexp.MustCompile(`^[a-z][a-z_]{0,63}$`)

// streamParams are the query parameters of the stream; each may repeat
// (any of the values) and hold a comma-separated list.
var streamParams = []string{"entity_type", "entity_id", "event_type"}

func parseStreamFilter(r *http.Request) (streamFilter, error) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(streamParams, k) {
			return streamFilter{}, status.Errorf(codes.InvalidArgument, "unknown query parameter %q: this route accepts %s", k, strings.Join(streamParams, ", "))
		}
	}
	values := func(k string) []string {
		var out []string
		for _, v := range q[k] {
			for part := range strings.SplitSeq(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		}
		return out
	}
	f := streamFilter{entityTypes: values("entity_type"), entityIDs: values("entity_id"), eventTypes: values("event_type")}
	for _, t := range f.entityTypes {
		if !entityTypePattern.MatchString(t) {
			return f, status.Errorf(codes.InvalidArgument, "entity_type %q is not an entity type: e.g. host, cluster, sap_system, database", t)
		}
	}
	for _, id := range f.entityIDs {
		if len(id) > 512 || strings.ContainsAny(id, "\r\n") {
			return f, status.Errorf(codes.InvalidArgument, "entity_id %q is not an id", id)
		}
	}
	for _, t := range f.eventTypes {
		if !slices.Contains(eventNames, t) {
			return f, status.Errorf(codes.InvalidArgument, "event_type %q is not an event: use a name such as HostRegistered or ClusterHealthChanged (see the Event message's payload)", t)
		}
	}
	return f, nil
}

// oneLine keeps a value from breaking the SSE framing.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
