package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/api"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// The fleet part of the API is not under test here; its dependencies are
// never called.
type noHosts struct{ api.HostReader }
type noStore struct{ api.Store }

// rest is the API with the tasks service on a loopback port.
type rest struct {
	t           testing.TB
	base        string
	read, write string
}

func (e *env) api() *rest {
	e.t.Helper()
	readKey, err := api.GenerateKey("reader", api.ScopeRead)
	if err != nil {
		e.t.Fatal(err)
	}
	writeKey, err := api.GenerateKey("operator", api.ScopeRead, api.ScopeWrite)
	if err != nil {
		e.t.Fatal(err)
	}
	keys, err := api.NewKeys(readKey, writeKey)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := NewServer(e.store, NewQueue(e.client, e.topics, "api"), kadm.NewClient(e.client), e.topics, "", testLogger(e.t))
	a, err := api.New(api.Options{Hosts: noHosts{}, Store: noStore{}, Keys: keys, Logger: testLogger(e.t),
		Registry: prometheus.NewRegistry(), Services: []api.Service{srv.APIService()}})
	if err != nil {
		e.t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, lis) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("api: %v", err)
		}
	})
	return &rest{t: e.t, base: "http://" + lis.Addr().String(), read: readKey.Secret, write: writeKey.Secret}
}

// call sends a request with key and decodes the JSON answer into out.
func (r *rest) call(method, path, key string, body any, out any) int {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			r.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// taskJSON is TaskInfo as the gateway renders it.
type taskJSON struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Queue           string          `json:"queue"`
	State           string          `json:"state"`
	Payload         json.RawMessage `json:"payload"`
	Attempt         int             `json:"attempt"`
	Reason          string          `json:"reason"`
	LastError       string          `json:"last_error"`
	CancelRequested bool            `json:"cancel_requested"`
	Source          string          `json:"source"`
}

func (r *rest) task(id string) taskJSON {
	r.t.Helper()
	var out taskJSON
	if code := r.call(http.MethodGet, "/api/v1/tasks/"+id, r.read, nil, &out); code != http.StatusOK {
		r.t.Fatalf("GET task %s: %d", id, code)
	}
	return out
}

func (r *rest) waitState(id, state string) taskJSON {
	r.t.Helper()
	var got taskJSON
	eventually(r.t, fmt.Sprintf("task %s is %s through the API", id, state), func() error {
		var out taskJSON
		if code := r.call(http.MethodGet, "/api/v1/tasks/"+id, r.read, nil, &out); code != http.StatusOK {
			return fmt.Errorf("HTTP %d", code)
		}
		if out.State != state {
			return fmt.Errorf("state %s (%s)", out.State, out.Reason)
		}
		got = out
		return nil
	})
	return got
}

func TestTaskAPIEnqueueInspectCancelRequeueThroughREST(t *testing.T) {
	e := newEnv(t)
	fail := make(chan bool, 1)
	fail <- true
	rec := &recorder{fn: func(_ context.Context, task *fleetv1.Task, _ Output) error {
		select {
		case <-fail:
			return Permanent(errors.New("bad credentials"))
		default:
			return nil
		}
	}}
	g := newGate()
	e.worker(WorkerOptions{Handlers: map[string]Handler{"collect": rec, "gate": g}, Concurrency: 1})
	t.Cleanup(g.release)
	r := e.api()

	// Enqueue needs the write scope.
	body := map[string]any{"type": "collect", "queue": "high", "payload": map[string]any{"account": "42"}}
	if code := r.call(http.MethodPost, "/api/v1/tasks", r.read, body, nil); code != http.StatusForbidden {
		t.Errorf("enqueue with a read-only key: HTTP %d, want 403", code)
	}
	var created taskJSON
	if code := r.call(http.MethodPost, "/api/v1/tasks", r.write, body, &created); code != http.StatusOK {
		t.Fatalf("enqueue: HTTP %d", code)
	}
	if created.ID == "" || created.State != "pending" || created.Queue != "high" || created.Source != "api" {
		t.Fatalf("enqueued %+v", created)
	}
	if code := r.call(http.MethodPost, "/api/v1/tasks", r.write, map[string]any{"queue": "high"}, nil); code != http.StatusBadRequest {
		t.Errorf("enqueue without a type: HTTP %d, want 400", code)
	}

	// The first run fails permanently: dead, then requeued, then completed.
	deadTask := r.waitState(created.ID, "dead")
	if deadTask.Reason != "permanent error in attempt 1: bad credentials" || string(deadTask.Payload) != `{"account":"42"}` {
		t.Errorf("dead task %+v", deadTask)
	}
	if code := r.call(http.MethodPost, "/api/v1/tasks/"+created.ID+"/requeue", r.read, map[string]any{}, nil); code != http.StatusForbidden {
		t.Errorf("requeue with a read-only key: HTTP %d, want 403", code)
	}
	var requeued taskJSON
	if code := r.call(http.MethodPost, "/api/v1/tasks/"+created.ID+"/requeue", r.write, map[string]any{}, &requeued); code != http.StatusOK || requeued.State != "pending" {
		t.Fatalf("requeue: HTTP %d, %+v", code, requeued)
	}
	r.waitState(created.ID, "completed")
	if code := r.call(http.MethodPost, "/api/v1/tasks/"+created.ID+"/requeue", r.write, map[string]any{}, nil); code != http.StatusBadRequest {
		t.Errorf("requeue of a completed task: HTTP %d, want 400 (failed precondition)", code)
	}
	if code := r.call(http.MethodPost, "/api/v1/tasks/"+created.ID+"/cancel", r.write, map[string]any{}, nil); code != http.StatusBadRequest {
		t.Errorf("cancel of a completed task: HTTP %d, want 400", code)
	}

	// Cancel a running task and a pending one behind it.
	var gateTask, pending taskJSON
	r.call(http.MethodPost, "/api/v1/tasks", r.write, map[string]any{"type": "gate"}, &gateTask)
	g.waitStarted(t)
	r.call(http.MethodPost, "/api/v1/tasks", r.write, map[string]any{"type": "collect", "queue": "low"}, &pending)
	r.waitState(pending.ID, "pending")
	var cancelled taskJSON
	if code := r.call(http.MethodPost, "/api/v1/tasks/"+pending.ID+"/cancel", r.write, map[string]any{"reason": "superseded"}, &cancelled); code != http.StatusOK || !cancelled.CancelRequested {
		t.Fatalf("cancel pending: HTTP %d, %+v", code, cancelled)
	}
	if code := r.call(http.MethodPost, "/api/v1/tasks/"+gateTask.ID+"/cancel", r.write, map[string]any{"reason": "stuck"}, nil); code != http.StatusOK {
		t.Fatalf("cancel running: HTTP %d", code)
	}
	if got := r.waitState(gateTask.ID, "cancelled"); got.Reason != "stuck" {
		t.Errorf("running task cancelled with reason %q", got.Reason)
	}
	if got := r.waitState(pending.ID, "cancelled"); got.Reason != "superseded" || got.Attempt != 0 {
		t.Errorf("pending task cancelled: %+v", got)
	}

	// Lists filter and page.
	var list struct {
		Tasks []taskJSON `json:"tasks"`
		Next  string     `json:"next_page_token"`
	}
	if code := r.call(http.MethodGet, "/api/v1/tasks?state=cancelled", r.read, nil, &list); code != http.StatusOK || len(list.Tasks) != 2 {
		t.Fatalf("list cancelled: HTTP %d, %d tasks", code, len(list.Tasks))
	}
	if list.Tasks[0].ID != pending.ID {
		t.Errorf("newest first: got %s first, want %s", list.Tasks[0].ID, pending.ID)
	}
	r.call(http.MethodGet, "/api/v1/tasks?page_size=2", r.read, nil, &list)
	seen := map[string]bool{}
	for page := 0; ; page++ {
		for _, task := range list.Tasks {
			seen[task.ID] = true
		}
		if list.Next == "" || page > 5 {
			break
		}
		next := list.Next
		list.Tasks, list.Next = nil, ""
		r.call(http.MethodGet, "/api/v1/tasks?page_size=2&page_token="+next, r.read, nil, &list)
	}
	if len(seen) != 3 {
		t.Errorf("paging through every task saw %d, want 3", len(seen))
	}
	for q, code := range map[string]int{"state=sleeping": 400, "queue=urgent": 400, "page_token=garbage": 400, "page_size=5000": 400} {
		if got := r.call(http.MethodGet, "/api/v1/tasks?"+q, r.read, nil, nil); got != code {
			t.Errorf("list ?%s: HTTP %d, want %d", q, got, code)
		}
	}
	if code := r.call(http.MethodGet, "/api/v1/tasks/no-such-task", r.read, nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown task: HTTP %d, want 404", code)
	}
}

func TestQueueStatsCountEveryStateThroughREST(t *testing.T) {
	e := newEnv(t)
	g := newGate()
	failing := HandlerFunc(func(context.Context, *fleetv1.Task, Output) error { return errors.New("throttled") })
	denied := HandlerFunc(func(context.Context, *fleetv1.Task, Output) error { return Permanent(errors.New("denied")) })
	e.worker(WorkerOptions{
		Handlers:    map[string]Handler{"ok": Noop, "bad": denied, "flaky": failing, "gate": g, "later": Noop},
		Concurrency: 1, RetryBase: time.Hour, RetryMax: time.Hour,
	})
	t.Cleanup(g.release)
	r := e.api()
	e.enqueue(&fleetv1.Task{Id: "ok-1", Type: "ok"}, &fleetv1.Task{Id: "ok-2", Type: "ok"}, &fleetv1.Task{Id: "ok-3", Type: "ok"})
	e.enqueue(&fleetv1.Task{Id: "bad-1", Type: "bad"})
	e.enqueue(&fleetv1.Task{Id: "later-1", Type: "later", Priority: high, NotBefore: timestamppb.New(time.Now().Add(time.Hour))})
	e.enqueue(&fleetv1.Task{Id: "flaky-1", Type: "flaky", Priority: low})
	for _, id := range []string{"ok-1", "ok-2", "ok-3"} {
		e.waitState(id, fleetv1.TaskState_TASK_STATE_COMPLETED)
	}
	e.waitState("bad-1", fleetv1.TaskState_TASK_STATE_DEAD)
	e.waitState("flaky-1", fleetv1.TaskState_TASK_STATE_RETRYING)
	e.enqueue(&fleetv1.Task{Id: "gate-1", Type: "gate", Priority: high})
	g.waitStarted(t)
	e.enqueue(&fleetv1.Task{Id: "ok-4", Type: "ok", Priority: low}, &fleetv1.Task{Id: "ok-5", Type: "ok", Priority: low})

	// int64 fields are JSON strings; zero ones are shown too.
	type counts struct {
		Pending   int64 `json:"pending,string"`
		Scheduled int64 `json:"scheduled,string"`
		Active    int64 `json:"active,string"`
		Retrying  int64 `json:"retrying,string"`
		Completed int64 `json:"completed,string"`
		Dead      int64 `json:"dead,string"`
		Cancelled int64 `json:"cancelled,string"`
	}
	type stats struct {
		Queues []struct {
			Queue  string `json:"queue"`
			Lag    int64  `json:"lag,string"`
			Totals counts `json:"totals"`
			Types  []struct {
				Type   string `json:"type"`
				Counts counts `json:"counts"`
			} `json:"types"`
		} `json:"queues"`
	}
	want := map[string]map[string]counts{
		"high":   {"gate": {Active: 1}, "later": {Scheduled: 1}},
		"normal": {"ok": {Completed: 3}, "bad": {Dead: 1}},
		"low":    {"ok": {Pending: 2}, "flaky": {Retrying: 1}},
	}
	// The lag: the running gate task on high, the two fetched but not
	// started ok tasks on low; everything else is committed.
	wantLag := map[string]int64{"high": 1, "normal": 0, "low": 2}
	eventually(t, "the stats show every state", func() error {
		var s stats
		if code := r.call(http.MethodGet, "/api/v1/queues/stats", r.read, nil, &s); code != http.StatusOK {
			return fmt.Errorf("HTTP %d", code)
		}
		got := map[string]map[string]counts{}
		for _, q := range s.Queues {
			if q.Lag != wantLag[q.Queue] {
				return fmt.Errorf("queue %s lag %d, want %d", q.Queue, q.Lag, wantLag[q.Queue])
			}
			got[q.Queue] = map[string]counts{}
			for _, tc := range q.Types {
				got[q.Queue][tc.Type] = tc.Counts
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("counts %v, want %v", got, want)
		}
		return nil
	})
}
