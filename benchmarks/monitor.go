package benchmarks

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Point is one second of the pipeline's progress, for the plot.
type Point struct {
	At    time.Time
	Phase string
	// Per second over the second before At: records ingest accepted,
	// records scenario detection processed, rows the sink inserted.
	Ingested, Processed, SinkRows float64
}

// Usage is what one component consumed during a phase.
type Usage struct {
	// CPU in cores: CPU time over wall time (2 is both cores of the
	// benchmark machine).
	CPU float64
	// RSSMax is the largest resident set seen, in MiB.
	RSSMax float64
}

// process is a component's process; components sharing one (kfake and
// in-process roles live in the benchmark's) are measured once, together.
type process struct {
	names []string
	pid   int
}

func (p process) name() string { return strings.Join(p.names, " + ") }

// groupProcesses merges components by pid, keeping the order of first
// appearance; components without a local process (pid 0) are left out.
func groupProcesses(components []string, pids map[string]int) []process {
	var out []process
	index := map[int]int{}
	for _, c := range components {
		pid := pids[c]
		if pid == 0 {
			continue
		}
		if i, ok := index[pid]; ok {
			out[i].names = append(out[i].names, c)
			continue
		}
		index[pid] = len(out)
		out = append(out, process{names: []string{c}, pid: pid})
	}
	return out
}

// monitor samples the pipeline once a second: rates for the plot and the
// progress log, and the processes' CPU and memory.
type monitor struct {
	reader   *reader
	procs    []process
	log      *slog.Logger
	progress time.Duration

	mu     sync.Mutex
	phase  string
	series []Point
	rss    map[string]float64 // largest RSS since the phase began
	last   Counters
}

// mark is the start of a measured phase.
type mark struct {
	at      time.Time
	cpu     map[string]time.Duration
	machine time.Duration // busy CPU of the whole machine
}

// begin starts measuring a phase called phase.
func (m *monitor) begin(phase string) mark {
	m.mu.Lock()
	m.phase = phase
	m.rss = map[string]float64{}
	m.mu.Unlock()
	mk := mark{at: time.Now(), cpu: map[string]time.Duration{}}
	mk.machine, _ = ReadMachineCPU("/proc")
	for _, p := range m.procs {
		if s, err := ReadProc("/proc", p.pid); err == nil {
			mk.cpu[p.name()] = s.CPU
			m.noteRSS(p.name(), s.RSS)
		}
	}
	return mk
}

// end returns each process's usage since mk, and under compOther the CPU
// that the rest of the machine used meanwhile: the benchmark shares the
// machine with whatever else runs on it.
func (m *monitor) end(mk mark) map[string]Usage {
	out := map[string]Usage{}
	wall := time.Since(mk.at)
	if busy, err := ReadMachineCPU("/proc"); err == nil && mk.machine > 0 {
		defer func() {
			others := (busy - mk.machine).Seconds() / wall.Seconds()
			for _, u := range out {
				others -= u.CPU
			}
			out[compOther] = Usage{CPU: max(others, 0), RSSMax: nan}
		}()
	}
	for _, p := range m.procs {
		s, err := ReadProc("/proc", p.pid)
		start, ok := mk.cpu[p.name()]
		if err != nil || !ok {
			continue
		}
		m.noteRSS(p.name(), s.RSS)
		m.mu.Lock()
		out[p.name()] = Usage{CPU: (s.CPU - start).Seconds() / wall.Seconds(), RSSMax: m.rss[p.name()]}
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.phase = ""
	m.mu.Unlock()
	return out
}

func (m *monitor) noteRSS(name string, rss int64) {
	mib := float64(rss) / (1 << 20)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rss != nil && mib > m.rss[name] {
		m.rss[name] = mib
	}
}

// run samples until ctx ends.
func (m *monitor) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastLog := time.Now()
	var window []Point
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, p := range m.procs {
			if s, err := ReadProc("/proc", p.pid); err == nil {
				m.noteRSS(p.name(), s.RSS)
			}
		}
		c, err := m.reader.read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("sample the pipeline", "err", err)
			}
			continue
		}
		m.mu.Lock()
		prev, phase := m.last, m.phase
		m.last = c
		if len(window) > 0 && window[len(window)-1].Phase != phase {
			window = nil // a new phase: its progress lines start afresh
		}
		if !prev.At.IsZero() {
			dt := c.At.Sub(prev.At)
			p := Point{
				At: c.At, Phase: phase,
				Ingested:  rate(c.accepted()-prev.accepted(), dt),
				Processed: rate(c.Processed-prev.Processed, dt),
				SinkRows:  rate(c.SinkRows-prev.SinkRows, dt),
			}
			m.series = append(m.series, p)
			window = append(window, p)
		}
		m.mu.Unlock()
		if time.Since(lastLog) >= m.progress && len(window) > 0 && phase != "" {
			m.log.Info("progress", "phase", phase,
				"ingested_per_sec", round(mean(window, func(p Point) float64 { return p.Ingested })),
				"processed_per_sec", round(mean(window, func(p Point) float64 { return p.Processed })),
				"sink_rows_per_sec", round(mean(window, func(p Point) float64 { return p.SinkRows })),
				"backlog", int64(c.accepted()-c.Processed))
			lastLog, window = time.Now(), nil
		}
	}
}

// points returns the samples so far.
func (m *monitor) points() []Point {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.series)
}

func mean(ps []Point, f func(Point) float64) float64 {
	var total float64
	for _, p := range ps {
		total += f(p)
	}
	return total / float64(len(ps))
}

func round(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// sortedNames is the names of a usage map in report order.
func sortedNames(u map[string]Usage, order []string) []string {
	names := slices.Collect(maps.Keys(u))
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	return names
}
