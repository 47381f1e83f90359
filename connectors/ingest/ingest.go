// Package ingest is the agents' HTTP edge: it authenticates a discovery,
// validates it, wraps it in a Discovery envelope and answers only after
// Kafka acknowledged the record (idempotent producer, acks=all). Nothing is
// produced for a rejected request.
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Config of the ingest endpoint.
type Config struct {
	Keys AgentKeys
	// Topic receives the Discovery envelopes (fleet.discoveries.v1).
	Topic string
	// MaxBodyBytes bounds a request body; larger ones get 413. Default 1 MiB,
	// more than ten times the largest real agent payload seen.
	MaxBodyBytes int64
	// ProduceTimeout bounds the wait for Kafka's acknowledgement; on expiry
	// the agent gets 503 and retries. Default 10 s.
	ProduceTimeout time.Duration
	// Validate checks a payload of a given type beyond being JSON; an error
	// is returned to the agent as a 400. Optional.
	Validate func(discoveryType string, payload []byte) error
}

// Handler serves POST /api/v1/collect and POST /api/v1/hosts/{id}/heartbeat.
type Handler struct {
	cfg     Config
	kafka   *kgo.Client
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns the ingest handler producing with client.
func New(cfg Config, client *kgo.Client, m *Metrics, logger *slog.Logger) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.ProduceTimeout <= 0 {
		cfg.ProduceTimeout = 10 * time.Second
	}
	return &Handler{cfg: cfg, kafka: client, metrics: m, log: logger, now: time.Now}
}

// Routes maps ServeMux patterns to handlers, for mounting next to the API.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /api/v1/collect":              http.HandlerFunc(h.collect),
		"POST /api/v1/hosts/{id}/heartbeat": http.HandlerFunc(h.heartbeat),
	}
}

// ServeHTTP serves the ingest routes alone, for the standalone ingest role.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	for pattern, handler := range h.Routes() {
		mux.Handle(pattern, handler)
	}
	mux.ServeHTTP(w, r)
}

// collectRequest is the Trento agent's body. Pointers tell a missing field
// from an empty one.
type collectRequest struct {
	AgentID       *string         `json:"agent_id"`
	DiscoveryType *string         `json:"discovery_type"`
	Payload       json.RawMessage `json:"payload"`
}

// apiError is the JSON error body: a stable code, what was wrong, and the
// offending field when there is one.
type apiError struct {
	status  int
	Code    string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

func (h *Handler) collect(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	req, err := h.decodeCollect(w, r)
	dtype := "invalid"
	if err == nil {
		dtype = *req.DiscoveryType
		err = h.authorize(r, *req.AgentID)
	}
	if err == nil {
		err = h.publish(r.Context(), *req.AgentID, dtype, req.Payload, start)
	}
	h.finish(w, r, dtype, http.StatusAccepted, err, start)
}

func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	agentID := r.PathValue("id")
	err := validAgentID("id", agentID)
	if err == nil {
		err = h.authorize(r, agentID)
	}
	if err == nil {
		err = h.publish(r.Context(), agentID, payload.Heartbeat, nil, start)
	}
	h.finish(w, r, payload.Heartbeat, http.StatusNoContent, err, start)
}

func (h *Handler) decodeCollect(w http.ResponseWriter, r *http.Request) (*collectRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("request body exceeds %d bytes; split the discovery or raise the ingest size limit", h.cfg.MaxBodyBytes)}
		}
		return nil, badRequest("", "could not read the request body: %v", err)
	}
	var req collectRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, badRequest("", "malformed JSON: unexpected data after the request object")
	}
	if req.AgentID == nil {
		return nil, badRequest("agent_id", "agent_id is required")
	}
	if err := validAgentID("agent_id", *req.AgentID); err != nil {
		return nil, err
	}
	if req.DiscoveryType == nil || *req.DiscoveryType == "" {
		return nil, badRequest("discovery_type", "discovery_type is required; one of %s", strings.Join(payload.KnownTypes(), ", "))
	}
	t := *req.DiscoveryType
	if !payload.Known(t) {
		return nil, badRequest("discovery_type", "unknown discovery_type %q; one of %s", t, strings.Join(payload.KnownTypes(), ", "))
	}
	if err := validPayload(t, req.Payload); err != nil {
		return nil, err
	}
	if h.cfg.Validate != nil {
		if err := h.cfg.Validate(t, req.Payload); err != nil {
			return nil, badRequest(fieldOf(err), "invalid %s payload: %v", t, err)
		}
	}
	return &req, nil
}

// FieldError names the payload field a Validate error is about.
type FieldError interface{ Field() string }

func fieldOf(err error) string {
	var fe FieldError
	if errors.As(err, &fe) {
		return "payload." + fe.Field()
	}
	return "payload"
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest("", "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typeErr):
		return badRequest(typeErr.Field, "%s must be a JSON %s, got %s", typeErr.Field, typeErr.Type.Kind(), typeErr.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: the body is empty or truncated")
	default:
		return badRequest("", "malformed JSON: %v", err)
	}
}

func validAgentID(field, id string) error {
	if id == "" {
		return badRequest(field, "%s must not be empty", field)
	}
	if len(id) > 128 || strings.ContainsAny(id, " \t\r\n/.") {
		return badRequest(field, "%s %q is not a valid agent id (at most 128 characters, no whitespace, '/' or '.')", field, id)
	}
	return nil
}

func validPayload(t string, raw json.RawMessage) error {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return badRequest("payload", "payload is required")
	case bytes.Equal(trimmed, []byte("null")):
		if !payload.NullAllowed(t) {
			return badRequest("payload", "payload of %s must not be null", t)
		}
	case trimmed[0] != '{' && trimmed[0] != '[':
		return badRequest("payload", "payload of %s must be a JSON object or array", t)
	}
	return nil
}

func (h *Handler) authorize(r *http.Request, agentID string) error {
	switch h.cfg.Keys.authorize(r, agentID) {
	case authMissing:
		return &apiError{status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "missing agent key: send Authorization: Bearer <agent key> (or X-Trento-Apikey)"}
	case authInvalid:
		return &apiError{status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "invalid agent key: use the key issued for this agent (fleetstream agent-key <agent_id>)"}
	case authForbidden:
		return &apiError{status: http.StatusForbidden, Code: "forbidden",
			Message: fmt.Sprintf("this agent key may not publish for agent %s: an agent publishes only for its own agent_id", agentID)}
	}
	return nil
}

// publish produces the envelope and waits for Kafka's acknowledgement.
func (h *Handler) publish(ctx context.Context, agentID, dtype string, body []byte, at time.Time) error {
	traceID := uuid.NewString()
	d := &fleetv1.Discovery{
		AgentId:       agentID,
		DiscoveryType: dtype,
		CollectedAt:   timestamppb.New(at),
		Payload:       body,
		Source:        "ingest",
	}
	value, err := proto.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode discovery: %w", err)
	}
	rec := &kgo.Record{
		Topic:   h.cfg.Topic,
		Key:     []byte(agentID),
		Value:   value,
		Headers: kafka.RecordHeaders(kafka.Headers(d, traceID)),
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ProduceTimeout)
	defer cancel()
	produceStart := h.now()
	if err := h.kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		h.log.Error("produce discovery", "agent_id", agentID, "type", dtype, "err", err)
		return &apiError{status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "the discovery could not be stored right now; retry later"}
	}
	h.metrics.produceSeconds.Observe(h.now().Sub(produceStart).Seconds())
	h.metrics.bytes.Add(float64(len(body)))
	return nil
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request, dtype string, okStatus int, err error, start time.Time) {
	status := okStatus
	var body any
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			h.log.Error("ingest", "path", r.URL.Path, "err", err)
			ae = &apiError{status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the ingest log"}
		}
		status, body = ae.status, ae
	} else if okStatus == http.StatusAccepted {
		body = map[string]string{"status": "accepted"}
	}
	h.metrics.requests.WithLabelValues(dtype, fmt.Sprint(status)).Inc()
	h.metrics.seconds.Observe(h.now().Sub(start).Seconds())
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
