package tasks

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// The kill test runs workers as child processes of the test binary: with
// childEnv set, TestMain runs a worker instead of the tests.
const (
	childEnv       = "TASKS_TEST_CHILD_WORKER"
	childBrokers   = "TASKS_TEST_BROKERS"
	childNamespace = "TASKS_TEST_NAMESPACE"
	childParts     = "TASKS_TEST_PARTITIONS"
	childLog       = "TASKS_TEST_LOG"
	childHang      = "TASKS_TEST_HANG"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childWorker())
	}
	os.Exit(m.Run())
}

// childWorker runs "step" tasks, logging "start <id> <pid>" and
// "done <id> <pid>" lines; with childHang set, a task whose payload is
// "hang" never finishes.
func childWorker() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	topics := kafka.DefaultTopics().WithNamespace(os.Getenv(childNamespace))
	p, _ := strconv.Atoi(os.Getenv(childParts))
	topics.Partitions = int32(p)
	logLine := func(s string) {
		f, err := os.OpenFile(os.Getenv(childLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%s %d\n", s, os.Getpid())
			f.Close()
		}
	}
	step := HandlerFunc(func(ctx context.Context, t *fleetv1.Task, _ Output) error {
		logLine("start " + t.Id)
		if string(t.Payload) == `"hang"` && os.Getenv(childHang) != "" {
			<-ctx.Done()
			return ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
		logLine("done " + t.Id)
		return nil
	})
	w, err := NewWorker(WorkerOptions{
		Brokers: strings.Split(os.Getenv(childBrokers), ","), Topics: topics,
		Handlers:       map[string]Handler{"step": step},
		Concurrency:    4,
		SessionTimeout: 6 * time.Second,
		CommitInterval: 50 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, e *env, logPath string, hang bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childBrokers+"="+strings.Join(e.seeds, ","),
		childNamespace+"="+e.topics.Namespace, childParts+"="+strconv.Itoa(int(e.topics.Partitions)), childLog+"="+logPath)
	if hang {
		cmd.Env = append(cmd.Env, childHang+"=1")
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// runLog reads the children's log: for each task id, the pids that
// started and finished it.
func runLog(t *testing.T, path string) (started, done map[string][]int) {
	t.Helper()
	started, done = map[string][]int{}, map[string][]int{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var what, id string
		var pid int
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %d", &what, &id, &pid); err != nil {
			continue // a line being written
		}
		if what == "start" {
			started[id] = append(started[id], pid)
		} else {
			done[id] = append(done[id], pid)
		}
	}
	return
}

func TestKilledWorkerLosesNoTask(t *testing.T) {
	e := newEnv(t)
	logPath := filepath.Join(t.TempDir(), "runs.log")
	var ids []string
	var batch []*fleetv1.Task
	for i := range 40 {
		id, payload := fmt.Sprintf("step-%02d", i), `"quick"`
		if i == 10 {
			id, payload = "hang-1", `"hang"`
		}
		ids = append(ids, id)
		batch = append(batch, &fleetv1.Task{Id: id, Type: "step", Payload: []byte(payload)})
	}
	e.enqueue(batch...)

	a := startChild(t, e, logPath, true)
	eventually(t, "the first worker is running the hanging task", func() error {
		if started, _ := runLog(t, logPath); len(started["hang-1"]) == 0 {
			return fmt.Errorf("not started")
		}
		return nil
	})
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	b := startChild(t, e, logPath, false)
	eventually(t, "the second worker finishes every task", func() error {
		_, done := runLog(t, logPath)
		var missing []string
		for _, id := range ids {
			if len(done[id]) == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not done: %v", missing)
		}
		return nil
	})
	if err := b.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); err != nil {
		t.Errorf("the second worker exited with %v after SIGTERM", err)
	}

	started, done := runLog(t, logPath)
	if got := started["hang-1"]; len(got) < 2 || got[0] != a.Process.Pid || got[len(got)-1] != b.Process.Pid {
		t.Errorf("hang-1 started by %v; want the killed worker %d, then the new one %d", got, a.Process.Pid, b.Process.Pid)
	}
	if got := done["hang-1"]; len(got) != 1 || got[0] != b.Process.Pid {
		t.Errorf("hang-1 finished by %v, want only by %d", got, b.Process.Pid)
	}
	again := 0
	for _, id := range ids {
		if len(started[id]) > 1 {
			again++
		}
		e.waitState(id, fleetv1.TaskState_TASK_STATE_COMPLETED)
	}
	t.Logf("%d of %d tasks ran more than once (at least once delivery)", again, len(ids))
}
