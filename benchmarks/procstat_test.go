package benchmarks

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, as a process may
	// name itself: fields are counted from the last ')'.
	stat := []byte("4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 7 0 1000 100000 500 18446744073709551615")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want { // (250+130) ticks at 100 Hz
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (short) S 1")); err == nil {
		t.Error("a truncated stat line parsed")
	}
}

func TestParseStatusRSS(t *testing.T) {
	got, err := parseStatusRSS([]byte("Name:\tfleetstream\nVmPeak:\t  900 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 50<<20 {
		t.Errorf("rss = %d, want %d", got, 50<<20)
	}
	if _, err := parseStatusRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Error("a status without VmRSS parsed")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	before, err := ReadProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU time, enough for several 10 ms ticks.
	deadline := time.Now().Add(150 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = strconv.Itoa(x)
	}
	after, err := ReadProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU {
		t.Errorf("CPU time did not grow: %v then %v", before.CPU, after.CPU)
	}
	if after.RSS < 1<<20 {
		t.Errorf("RSS %d bytes: a Go test binary uses more", after.RSS)
	}
}

func TestListeningPIDFindsThisProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pid, err := ListeningPID("/proc", l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	if pid != os.Getpid() {
		t.Errorf("pid %d, want this process, %d", pid, os.Getpid())
	}
	free, _ := freePort()
	if _, err := ListeningPID("/proc", free); err == nil {
		t.Errorf("found a listener on free port %d", free)
	}
}

func TestReadMachineCPU(t *testing.T) {
	root := t.TempDir()
	stat := "cpu  1000 50 300 9000 200 10 20 5 0 0\ncpu0 500 25 150 4500 100 5 10 2 0 0\n"
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMachineCPU(root)
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal = 1385 ticks; idle and iowait left out.
	if want := 13850 * time.Millisecond; got != want {
		t.Errorf("busy = %v, want %v", got, want)
	}
	if _, err := ReadMachineCPU("/proc"); err != nil {
		t.Errorf("this machine's /proc/stat: %v", err)
	}
}

func TestGroupProcesses(t *testing.T) {
	got := groupProcesses([]string{"ingest", "process", "kafka", "clickhouse", "load generator"},
		map[string]int{"ingest": 10, "process": 11, "kafka": 99, "load generator": 99})
	want := []string{"ingest", "process", "kafka + load generator"}
	if len(got) != len(want) {
		t.Fatalf("%d processes, want %d: %+v", len(got), len(want), got)
	}
	for i, p := range got {
		if p.name() != want[i] {
			t.Errorf("process %d is %q, want %q", i, p.name(), want[i])
		}
	}
}
