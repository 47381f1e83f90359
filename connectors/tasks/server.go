package tasks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Server implements fleetv1.TasksServiceServer: reads come from a
// StatusStore, writes go through a Queue, queue lag from Kafka.
type Server struct {
	fleetv1.UnimplementedTasksServiceServer
	store       *StatusStore
	queue       *Queue
	admin       *kadm.Client
	topics      kafka.Topics
	workerGroup string
	log         *slog.Logger
}

// NewServer serves the task API. workerGroup is the workers' consumer
// group, whose lag is each queue's pending count ("" is the default group).
func NewServer(store *StatusStore, queue *Queue, admin *kadm.Client, topics kafka.Topics, workerGroup string, log *slog.Logger) *Server {
	if workerGroup == "" {
		workerGroup = topics.Group(DefaultWorkerGroup)
	}
	return &Server{store: store, queue: queue, admin: admin, topics: topics, workerGroup: workerGroup, log: log}
}

// APIService is the Server as an api.Service: the write scope for enqueue,
// cancel and requeue, read for the rest.
func (s *Server) APIService() api.Service {
	return api.Service{
		Name:     "TasksService",
		Register: func(g *grpc.Server) { fleetv1.RegisterTasksServiceServer(g, s) },
		Gateway: func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
			return fleetv1.RegisterTasksServiceHandler(ctx, mux, conn)
		},
		Scopes: map[string]api.Scope{
			fleetv1.TasksService_ListTasks_FullMethodName:     api.ScopeRead,
			fleetv1.TasksService_GetTask_FullMethodName:       api.ScopeRead,
			fleetv1.TasksService_GetQueueStats_FullMethodName: api.ScopeRead,
			fleetv1.TasksService_EnqueueTask_FullMethodName:   api.ScopeWrite,
			fleetv1.TasksService_CancelTask_FullMethodName:    api.ScopeWrite,
			fleetv1.TasksService_RequeueTask_FullMethodName:   api.ScopeWrite,
		},
	}
}

func (s *Server) ready() error {
	if !s.store.Ready() {
		return status.Error(codes.Unavailable, "the task status table is still loading from Kafka; retry in a moment")
	}
	return nil
}

// ListTasks lists tasks, newest first.
func (s *Server) ListTasks(_ context.Context, req *fleetv1.ListTasksRequest) (*fleetv1.ListTasksResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	var f Filter
	var err error
	if req.GetState() != "" {
		if f.State, err = ParseState(req.GetState()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	if req.GetQueue() != "" {
		if f.Queue, err = ParseQueue(req.GetQueue()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	f.Type, f.ParentID = req.GetType(), req.GetParentId()
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		return nil, status.Errorf(codes.InvalidArgument, "page_size must be between 1 and %d; got %d", maxPageSize, size)
	}
	after, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	sts, last := s.store.List(f, size, after)
	resp := &fleetv1.ListTasksResponse{NextPageToken: encodeToken(last)}
	for _, st := range sts {
		_, c := s.store.Get(st.GetTask().GetId())
		resp.Tasks = append(resp.Tasks, info(st, c))
	}
	return resp, nil
}

// GetTask reads one task.
func (s *Server) GetTask(_ context.Context, req *fleetv1.GetTaskRequest) (*fleetv1.TaskInfo, error) {
	st, c, err := s.get(req.GetId())
	if err != nil {
		return nil, err
	}
	return info(st, c), nil
}

func (s *Server) get(id string) (*fleetv1.TaskStatus, *fleetv1.TaskCancel, error) {
	if id == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "id is required")
	}
	if err := s.ready(); err != nil {
		return nil, nil, err
	}
	st, c := s.store.Get(id)
	if st == nil {
		return nil, nil, status.Errorf(codes.NotFound, "no task %q (finished tasks are kept a week; a task enqueued a moment ago may not be visible yet)", id)
	}
	return st, c, nil
}

// EnqueueTask submits a task.
func (s *Server) EnqueueTask(ctx context.Context, req *fleetv1.EnqueueTaskRequest) (*fleetv1.TaskInfo, error) {
	if req.GetType() == "" {
		return nil, status.Error(codes.InvalidArgument, "type is required: the task type (handler) to run, e.g. noop")
	}
	if strings.ContainsAny(req.GetId(), "/?#% ") {
		return nil, status.Errorf(codes.InvalidArgument, "id %q: use letters, digits, '.', '_', ':' or '-' so it can appear in a URL", req.GetId())
	}
	prio, err := ParseQueue(req.GetQueue())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if d := req.GetDeadline(); d != nil && !d.AsTime().After(time.Now()) {
		return nil, status.Error(codes.InvalidArgument, "deadline is in the past: the task would be dead-lettered at once")
	}
	t := &fleetv1.Task{
		Id:          req.GetId(),
		Type:        req.GetType(),
		Priority:    prio,
		MaxAttempts: req.GetMaxAttempts(),
		NotBefore:   req.GetNotBefore(),
		Deadline:    req.GetDeadline(),
		Source:      "api",
	}
	if req.GetPayload() != nil {
		if t.Payload, err = protojson.Marshal(req.GetPayload()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "payload: %v", err)
		}
	}
	if err := s.queue.Enqueue(ctx, t); err != nil {
		s.log.Error("enqueue task", "type", t.Type, "err", err)
		return nil, status.Error(codes.Unavailable, "the task could not be stored in Kafka right now; retry later")
	}
	state := fleetv1.TaskState_TASK_STATE_PENDING
	if t.GetNotBefore().AsTime().After(time.Now()) {
		state = fleetv1.TaskState_TASK_STATE_SCHEDULED
	}
	return info(&fleetv1.TaskStatus{Task: t, State: state, UpdatedAt: t.EnqueuedAt, Writer: s.queue.writer}, nil), nil
}

// CancelTask requests a task's cancellation.
func (s *Server) CancelTask(ctx context.Context, req *fleetv1.CancelTaskRequest) (*fleetv1.TaskInfo, error) {
	st, _, err := s.get(req.GetId())
	if err != nil {
		return nil, err
	}
	if finished(st.GetState()) {
		return nil, status.Errorf(codes.FailedPrecondition, "task %s is already %s; there is nothing to cancel", req.GetId(), StateName(st.GetState()))
	}
	if err := s.queue.Cancel(ctx, req.GetId(), req.GetReason()); err != nil {
		s.log.Error("cancel task", "task_id", req.GetId(), "err", err)
		return nil, status.Error(codes.Unavailable, "the cancellation could not be stored in Kafka right now; retry later")
	}
	out := info(st, nil)
	out.CancelRequested = true
	return out, nil
}

// RequeueTask puts a dead task back on its queue.
func (s *Server) RequeueTask(ctx context.Context, req *fleetv1.RequeueTaskRequest) (*fleetv1.TaskInfo, error) {
	st, _, err := s.get(req.GetId())
	if err != nil {
		return nil, err
	}
	if st.GetState() != fleetv1.TaskState_TASK_STATE_DEAD {
		return nil, status.Errorf(codes.FailedPrecondition, "task %s is %s; only dead-lettered tasks can be requeued (enqueue a new task to run it again)", req.GetId(), StateName(st.GetState()))
	}
	t := proto.CloneOf(st.GetTask())
	if err := s.queue.Requeue(ctx, t); err != nil {
		if d := t.GetDeadline(); d != nil && !d.AsTime().After(time.Now()) {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		s.log.Error("requeue task", "task_id", req.GetId(), "err", err)
		return nil, status.Error(codes.Unavailable, "the task could not be stored in Kafka right now; retry later")
	}
	requeued, _ := s.store.Get(t.Id)
	if requeued == nil || requeued.GetState() == fleetv1.TaskState_TASK_STATE_DEAD {
		requeued = &fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_PENDING, UpdatedAt: timestamppb.Now(), Writer: s.queue.writer}
	}
	return info(requeued, nil), nil
}

// GetQueueStats counts tasks per queue and type.
func (s *Server) GetQueueStats(ctx context.Context, _ *fleetv1.GetQueueStatsRequest) (*fleetv1.QueueStats, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	lags, err := queueLag(ctx, s.admin, s.workerGroup, queueTopics(s.topics))
	if err != nil {
		s.log.Warn("queue lag", "err", err)
		return nil, status.Error(codes.Unavailable, "Kafka did not answer the offset queries; retry later")
	}
	counts := s.store.Counts()
	out := &fleetv1.QueueStats{}
	for q, name := range queueNames {
		qc := &fleetv1.QueueCounts{Queue: name, Lag: lags[q], Totals: &fleetv1.TaskCounts{}}
		for _, typ := range slices.Sorted(maps.Keys(counts[name])) {
			c := counts[name][typ]
			qc.Types = append(qc.Types, &fleetv1.TypeCounts{Type: typ, Counts: c})
			sumCounts(qc.Totals, c)
		}
		out.Queues = append(out.Queues, qc)
	}
	return out, nil
}

// queueLag is, per priority topic, what the worker group has not
// committed: end offset minus committed offset (or the log start when the
// group has not committed there yet).
func queueLag(ctx context.Context, adm *kadm.Client, group string, topics [3]string) ([3]int64, error) {
	var lags [3]int64
	ends, err := adm.ListEndOffsets(ctx, topics[:]...)
	if err != nil {
		return lags, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics[:]...)
	if err != nil {
		return lags, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return lags, err
	}
	for q, topic := range topics {
		for p, end := range ends[topic] {
			if end.Err != nil {
				return lags, end.Err
			}
			from := int64(0)
			if st, ok := starts.Lookup(topic, p); ok && st.Err == nil {
				from = st.Offset
			}
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At > from {
				from = c.At
			}
			lags[q] += max(0, end.Offset-from)
		}
	}
	return lags, nil
}

// info is a status as the API shows it.
func info(st *fleetv1.TaskStatus, c *fleetv1.TaskCancel) *fleetv1.TaskInfo {
	t := st.GetTask()
	out := &fleetv1.TaskInfo{
		Id:              t.GetId(),
		Type:            t.GetType(),
		Queue:           QueueName(t.GetPriority()),
		State:           StateName(st.GetState()),
		Payload:         payloadValue(t.GetPayload()),
		Attempt:         t.GetAttempt(),
		MaxAttempts:     t.GetMaxAttempts(),
		NotBefore:       t.GetNotBefore(),
		Deadline:        t.GetDeadline(),
		EnqueuedAt:      t.GetEnqueuedAt(),
		UpdatedAt:       st.GetUpdatedAt(),
		StartedAt:       st.GetStartedAt(),
		ParentId:        t.GetParentId(),
		LastError:       t.GetLastError(),
		Reason:          st.GetReason(),
		Writer:          st.GetWriter(),
		CancelRequested: c != nil && !finished(st.GetState()),
		Source:          t.GetSource(),
		RunSeconds:      st.GetRunSeconds(),
	}
	return out
}

// payloadValue shows a JSON payload as JSON, anything else as a string.
func payloadValue(p []byte) *structpb.Value {
	if len(p) == 0 {
		return nil
	}
	v := &structpb.Value{}
	if json.Valid(p) && protojson.Unmarshal(p, v) == nil {
		return v
	}
	return structpb.NewStringValue(base64.StdEncoding.EncodeToString(p))
}

// Page tokens are the base64url form of "tasks\n<list key>".
func encodeToken(key string) string {
	if key == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("tasks\n" + key))
}

func decodeToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	key, ok := strings.CutPrefix(string(raw), "tasks\n")
	if err != nil || !ok || key == "" {
		return "", status.Error(codes.InvalidArgument, "page_token is not valid here: pass the next_page_token of the previous response unchanged, or omit it for the first page")
	}
	return key, nil
}
