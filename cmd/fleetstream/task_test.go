package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// apiStub answers like the API and remembers the requests.
type apiStub struct {
	paths  []string
	bodies []map[string]any
}

func (s *apiStub) start(t *testing.T, answers map[string]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k3y" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"code":16,"message":"missing or unknown API key"}`)
			return
		}
		s.paths = append(s.paths, r.Method+" "+r.URL.RequestURI())
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		s.bodies = append(s.bodies, body)
		answer, ok := answers[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"code":5,"message":"no task \"x\""}`)
			return
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := rootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestTaskCLICallsTheAPI(t *testing.T) {
	stub := &apiStub{}
	task := `{"id":"t1","type":"noop","queue":"high","state":"pending","attempt":0,"updated_at":"2026-01-01T00:00:00Z"}`
	base := stub.start(t, map[string]string{
		"/api/v1/tasks":           task,
		"/api/v1/tasks/t1/cancel": task,
		"/api/v1/queues/stats":    `{"queues":[{"queue":"high","lag":"3","totals":{"pending":"3","completed":"7"},"types":[{"type":"noop","counts":{"pending":"3","completed":"7"}}]}]}`,
	})
	out, err := runCLI(t, "task", "enqueue", "noop", `{"a":1}`, "--queue", "high", "--not-before", "10m", "--server", base, "--api-key", "k3y")
	if err != nil || !strings.Contains(out, "task t1 (noop, high queue): enqueued; state pending") {
		t.Fatalf("enqueue: %v, %q", err, out)
	}
	body := stub.bodies[0]
	nb, _ := time.Parse(time.RFC3339Nano, body["not_before"].(string))
	if body["type"] != "noop" || body["queue"] != "high" || body["payload"].(map[string]any)["a"] != 1.0 || time.Until(nb) < 9*time.Minute {
		t.Errorf("enqueue sent %v", body)
	}
	if _, err := runCLI(t, "task", "cancel", "t1", "--reason", "done", "--server", base, "--api-key", "k3y"); err != nil || stub.bodies[1]["reason"] != "done" {
		t.Errorf("cancel: %v, sent %v", err, stub.bodies[1])
	}
	out, err = runCLI(t, "queue", "stats", "--server", base, "--api-key", "k3y")
	if err != nil || !strings.Contains(out, "high") || !strings.Contains(out, "noop") || !strings.Contains(out, "7") {
		t.Errorf("stats: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "task", "inspect", "x", "--server", base, "--api-key", "k3y"); err == nil || !strings.Contains(err.Error(), `no task "x" (HTTP 404)`) {
		t.Errorf("inspect of an unknown task: %v", err)
	}
	if _, err := runCLI(t, "task", "list", "--server", base, "--api-key", "wrong"); err == nil || !strings.Contains(err.Error(), "missing or unknown API key") {
		t.Errorf("bad key: %v", err)
	}
	want := []string{"POST /api/v1/tasks", "POST /api/v1/tasks/t1/cancel", "GET /api/v1/queues/stats", "GET /api/v1/tasks/x"}
	if strings.Join(stub.paths, ",") != strings.Join(want, ",") {
		t.Errorf("requests %v, want %v", stub.paths, want)
	}
}
