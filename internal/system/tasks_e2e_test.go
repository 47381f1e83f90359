package system_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/system"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// A task submitted to Kafka runs on `fleetstream collect` (RunCollect) and
// the API role shows it through TasksService.
func TestCollectRunsTasksTheAPIShows(t *testing.T) {
	p := startPipeline(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := system.Config{Brokers: p.brokers, Topics: p.topics, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- system.RunCollect(ctx, cfg, system.CollectOptions{
			Worker: tasks.WorkerOptions{Handlers: map[string]tasks.Handler{tasks.NoopType: tasks.Noop}},
			Jobs:   []tasks.Job{{Name: "tick", Spec: "@every 1s", Type: tasks.NoopType}},
		}, lis)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("collect stopped with %v", err)
		}
	})

	client, err := kafka.NewClient(p.brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := tasks.NewQueue(client, p.topics, "e2e").Enqueue(context.Background(), &fleetv1.Task{Id: "e2e-1", Type: tasks.NoopType, Priority: fleetv1.Priority_PRIORITY_HIGH}); err != nil {
		t.Fatal(err)
	}
	p.eventually(t, "the task completed, as the API shows", func() error {
		code, body := p.get(t, "/api/v1/tasks/e2e-1")
		if code != http.StatusOK || body["state"] != "completed" || body["queue"] != "high" {
			return fmt.Errorf("HTTP %d: %v", code, body)
		}
		return nil
	})
	p.eventually(t, "the scheduler fired its job", func() error {
		code, body := p.get(t, "/api/v1/tasks?state=completed&queue=normal")
		if code != http.StatusOK {
			return fmt.Errorf("HTTP %d", code)
		}
		if list, _ := body["tasks"].([]any); len(list) == 0 {
			return fmt.Errorf("no scheduled task completed yet")
		}
		return nil
	})
	code, body := p.get(t, "/api/v1/queues/stats")
	if code != http.StatusOK || len(body["queues"].([]any)) != 3 {
		t.Errorf("queue stats: HTTP %d, %v", code, body)
	}
	// The pipeline's key only reads: submitting needs the write scope.
	req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/tasks", nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("enqueue with a read key: HTTP %d, want 403", resp.StatusCode)
	}
}
