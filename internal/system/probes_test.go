package system_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	"github.com/fleetstream/fleetstream/internal/system"
)

// The process role alone serves /readyz, which passes once every
// processor recovered its table.
func TestProcessRoleReportsReadyAfterRecovery(t *testing.T) {
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = 2
	brokers := kafkatest.Cluster(t, topics)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- system.Run(ctx, system.Config{Brokers: brokers, Topics: topics, Replication: 1, Logger: slog.New(slog.DiscardHandler)},
			system.Roles{Process: true}, lis)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("process role stopped with %v", err)
		}
	})
	url := "http://" + lis.Addr().String() + "/readyz"
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(body)
		if resp.StatusCode == http.StatusOK {
			return
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(last, "recovering") {
			t.Fatalf("readyz answered %d %q, want 503 while recovering or 200", resp.StatusCode, last)
		}
	}
	t.Fatalf("the process role never became ready: %s", last)
}
