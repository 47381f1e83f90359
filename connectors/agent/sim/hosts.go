package sim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/schemas/payload"

	"github.com/google/uuid"

	"github.com/fleetstream/fleetstream/connectors/agent"
)

// A simulated host is a small state (profile, OS, memory, addresses, boot)
// rendered into a host_discovery payload. Its random source is seeded from
// its agent id, so host i of a seed is the same machine, with the same
// history of changes, in every run and whatever the fleet's size.

// profile is a kind of machine of an SAP landscape.
type profile struct {
	weight    int
	cpus      []int
	sockets   []int
	memoryMB  []int64 // nominal sizes; the kernel reports a little less
	secondary bool    // has a system replication network
	vip       bool    // may carry a cluster's virtual IP
}

var profiles = []profile{
	// HANA database servers.
	{weight: 30, cpus: []int{32, 64, 96, 128, 192}, sockets: []int{2, 4}, memoryMB: []int64{262144, 524288, 1048576, 2097152, 4194304}, secondary: true, vip: true},
	// Application servers.
	{weight: 50, cpus: []int{8, 16, 32, 64}, sockets: []int{1, 2}, memoryMB: []int64{32768, 65536, 131072, 262144}},
	// ASCS/ERS central services.
	{weight: 20, cpus: []int{2, 4, 8}, sockets: []int{1}, memoryMB: []int64{8192, 16384, 32768}, vip: true},
}

// release is a SUSE Linux Enterprise Server service pack as os-release and
// the kernel name it.
type release struct {
	weight  int
	version string // os-release VERSION, as the Trento agent reports it
	kernel  string // with %d for the maintenance update's number
	patch   int
}

var releases = []release{
	{5, "12-SP5", "4.12.14-122.%d-default", 201},
	{5, "15-SP2", "5.3.18-24.%d-default", 96},
	{10, "15-SP3", "5.3.18-150300.59.%d-default", 150},
	{25, "15-SP4", "5.14.21-150400.24.%d-default", 97},
	{30, "15-SP5", "5.14.21-150500.55.%d-default", 65},
	{25, "15-SP6", "6.4.0-150600.23.%d-default", 25},
}

var domains = []string{"prd.sap.example.com", "qas.sap.example.com", "dev.sap.example.com", "internal.cloudapp.net"}

// epoch is when the simulated machines were last booted, give or take half a
// year: fixed, so that payloads do not depend on when the simulation runs.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type host struct {
	mu      sync.Mutex
	id, key string
	index   int
	rng     *rand.Rand

	profile  int
	release  int
	patch    int
	arch     string
	cpus     int
	sockets  int
	memoryMB int64
	domain   string
	source   string
	boot     time.Time
	hasVIP   bool
	rendered agent.HostPayload
	// docs are the discovery types, host_discovery first (documents.go).
	docs [docCount]*doc

	// Consecutive failures, touched only by the worker holding the call.
	discoveryFailures [docCount]int
	heartbeatFailures int
}

func newHost(index int, id uuid.UUID, key string) *host {
	seed1, seed2 := binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
	h := &host{id: id.String(), key: key, index: index, rng: rand.New(rand.NewPCG(seed1, seed2))}
	h.profile = weighted(h.rng, len(profiles), func(i int) int { return profiles[i].weight })
	p := profiles[h.profile]
	h.release = weighted(h.rng, len(releases), func(i int) int { return releases[i].weight })
	h.patch = releases[h.release].patch + h.rng.IntN(10)
	h.arch = "x86_64"
	if h.rng.IntN(20) == 0 {
		h.arch = "ppc64le"
	}
	h.cpus = p.cpus[h.rng.IntN(len(p.cpus))]
	h.sockets = p.sockets[h.rng.IntN(len(p.sockets))]
	h.memoryMB = reported(h.rng, p.memoryMB[h.rng.IntN(len(p.memoryMB))])
	h.domain = domains[h.rng.IntN(len(domains))]
	h.source = "Suse"
	if h.rng.IntN(5) == 0 {
		h.source = "Community"
	}
	h.boot = epoch.Add(-time.Duration(h.rng.Int64N(int64(180 * 24 * time.Hour)))).Truncate(time.Second)
	h.hasVIP = p.vip && h.rng.IntN(2) == 0
	h.render()
	h.newDocs(id)
	return h
}

// reported is what /proc/meminfo shows of nominal MiB: 2 to 5% goes to the
// kernel and firmware.
func reported(rng *rand.Rand, nominal int64) int64 {
	return nominal - nominal*int64(20+rng.IntN(31))/1000
}

func weighted(rng *rand.Rand, n int, weight func(int) int) int {
	total := 0
	for i := range n {
		total += weight(i)
	}
	r := rng.IntN(total)
	for i := range n {
		if r -= weight(i); r < 0 {
			return i
		}
	}
	return n - 1
}

// render rebuilds the payload from the state. It always allocates new
// slices, so a payload handed out earlier never changes under its holder.
func (h *host) render() {
	rel := releases[h.release]
	// Host i sits at 10.a.b.c with c in 4..253: no network or broadcast address.
	a, b, c := h.index/250/250%250, h.index/250%250, h.index%250+4
	ips := []string{fmt.Sprintf("10.%d.%d.%d", a, b, c)}
	masks := []payload.Netmask{16}
	if profiles[h.profile].secondary {
		ips, masks = append(ips, fmt.Sprintf("192.168.%d.%d", b, c)), append(masks, 24)
	}
	if h.hasVIP {
		ips, masks = append(ips, fmt.Sprintf("10.%d.%d.%d", (a+128)%256, b, c)), append(masks, 32)
	}
	hostname := fmt.Sprintf("sim-%04d", h.index+1)
	h.rendered = agent.HostPayload{
		Hostname:                 hostname,
		FullyQualifiedDomainName: hostname + "." + h.domain,
		OSName:                   "SLES",
		OSVersion:                rel.version,
		KernelVersion:            fmt.Sprintf(rel.kernel, h.patch),
		Arch:                     h.arch,
		CPUCount:                 h.cpus,
		SocketCount:              h.sockets,
		TotalMemoryMB:            h.memoryMB,
		IPAddresses:              ips,
		Netmasks:                 masks,
		AgentVersion:             agent.Version,
		InstallationSource:       h.source,
		LastBootTimestamp:        h.boot.Format(time.RFC3339),
	}
}

// discover is one discovery of the host: with probability rate something
// about it changed since the last one.
func (h *host) discover(rate float64) (agent.HostPayload, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, changed := h.docs[docHost].next(rate)
	return h.rendered, changed
}

// change applies one of the changes real machines go through.
func (h *host) change() {
	p := profiles[h.profile]
	switch r := h.rng.IntN(100); {
	case r < 35: // memory resized (a VM's, most often)
		old := h.memoryMB
		for h.memoryMB == old {
			h.memoryMB = reported(h.rng, p.memoryMB[h.rng.IntN(len(p.memoryMB))])
		}
	case r < 65 && p.vip: // the cluster's virtual IP moved to or from this node
		h.hasVIP = !h.hasVIP
	case r < 95: // rebooted, often into a kernel update
		h.boot = h.boot.Add(time.Duration(1+h.rng.IntN(30*24)) * time.Hour)
		h.patch += h.rng.IntN(3)
	default: // upgraded to the next service pack of the same major release
		next := h.release + 1
		if next < len(releases) && releases[next].version[:2] == releases[h.release].version[:2] {
			h.release, h.patch = next, releases[next].patch
		}
		h.boot = h.boot.Add(time.Duration(1+h.rng.IntN(24)) * time.Hour)
	}
}

// payload is the current payload, with slices of its own for callers
// outside the package.
func (h *host) payload() agent.HostPayload {
	h.mu.Lock()
	p := h.rendered
	h.mu.Unlock()
	return clonePayload(p)
}

func clonePayload(p agent.HostPayload) agent.HostPayload {
	p.IPAddresses, p.Netmasks = slices.Clone(p.IPAddresses), slices.Clone(p.Netmasks)
	return p
}
