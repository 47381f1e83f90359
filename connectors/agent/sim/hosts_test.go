package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func newFleet(t *testing.T, cfg Config) *Fleet {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAgentIDsAreStable(t *testing.T) {
	f := newFleet(t, Config{N: 42})
	// UUIDv5(UUIDv5(URL namespace, the package URL), "fleetstream/<i>"),
	// computed independently; benchmarks and dev data depend on these.
	for i, want := range map[int]string{0: "e4596342-b63e-5ec7-9495-a20061e88424", 41: "a4ec1fc7-81b6-5f77-bfc3-076a1ced6f99"} {
		if got := f.AgentID(i); got != want {
			t.Errorf("AgentID(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestFleetIsDeterministic(t *testing.T) {
	small := newFleet(t, Config{N: 50, Seed: "a", ChangeRate: 0.3})
	large := newFleet(t, Config{N: 500, Seed: "a", ChangeRate: 0.3})
	other := newFleet(t, Config{N: 50, Seed: "b", ChangeRate: 0.3})
	samePayloads := 0
	for i := range small.Len() {
		if small.AgentID(i) != large.AgentID(i) {
			t.Fatalf("host %d: id %s in a fleet of 50, %s in a fleet of 500", i, small.AgentID(i), large.AgentID(i))
		}
		if other.AgentID(i) == small.AgentID(i) {
			t.Fatalf("host %d has id %s under two seeds", i, small.AgentID(i))
		}
		if reflect.DeepEqual(other.Payload(i), small.Payload(i)) {
			samePayloads++
		}
		for step := range 20 {
			a, aChanged := small.Next(i)
			b, bChanged := large.Next(i)
			if aChanged != bChanged || !reflect.DeepEqual(a, b) {
				t.Fatalf("host %d, discovery %d differs between runs:\n%+v (%v)\n%+v (%v)", i, step, a, aChanged, b, bChanged)
			}
		}
	}
	if samePayloads > 5 {
		t.Errorf("%d of 50 hosts are the same machine under another seed", samePayloads)
	}
}

// Payloads must read like the Trento agent's host_discovery.
func TestPayloadIsShapedLikeTrentos(t *testing.T) {
	raw, err := os.ReadFile("../../../testdata/fixtures/trento/discovery/host_discovery_with_last_boot_timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Payload map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	f := newFleet(t, Config{N: 200})
	for i := range f.Len() {
		b, _ := json.Marshal(f.Payload(i))
		var ours map[string]any
		if err := json.Unmarshal(b, &ours); err != nil {
			t.Fatal(err)
		}
		for k, v := range fixture.Payload {
			if k == "systemd_units" {
				continue
			}
			if reflect.TypeOf(ours[k]) != reflect.TypeOf(v) {
				t.Fatalf("host %d: %s is %T (%v), Trento's is %T", i, k, ours[k], ours[k], v)
			}
		}
		for _, k := range []string{"os_name", "kernel_version", "installation_source"} {
			if s, _ := ours[k].(string); s == "" {
				t.Fatalf("host %d: %s missing in %s", i, k, b)
			}
		}
	}
	if h := f.Payload(0).Hostname; h != "sim-0001" {
		t.Errorf("host 0 is named %q, want sim-0001", h)
	}
	if h := f.Payload(41).Hostname; h != "sim-0042" {
		t.Errorf("host 41 is named %q, want sim-0042", h)
	}
}

func TestPayloadsAreVariedAndPlausible(t *testing.T) {
	f := newFleet(t, Config{N: 1000})
	versions, memories, cpus := map[string]bool{}, map[int64]bool{}, map[int]bool{}
	primaries := map[string]bool{}
	for i := range f.Len() {
		p := f.Payload(i)
		versions[p.OSVersion], memories[p.TotalMemoryMB], cpus[p.CPUCount] = true, true, true
		if !strings.HasPrefix(p.OSVersion, "12-SP") && !strings.HasPrefix(p.OSVersion, "15-SP") {
			t.Errorf("host %d runs %q, not a SLES service pack", i, p.OSVersion)
		}
		if p.SocketCount < 1 || p.CPUCount%p.SocketCount != 0 {
			t.Errorf("host %d: %d cpus on %d sockets", i, p.CPUCount, p.SocketCount)
		}
		if len(p.IPAddresses) == 0 || len(p.IPAddresses) != len(p.Netmasks) {
			t.Errorf("host %d: addresses %v netmasks %v", i, p.IPAddresses, p.Netmasks)
		}
		if primaries[p.IPAddresses[0]] {
			t.Errorf("host %d shares primary address %s", i, p.IPAddresses[0])
		}
		primaries[p.IPAddresses[0]] = true
		if !strings.HasPrefix(p.FullyQualifiedDomainName, p.Hostname+".") {
			t.Errorf("host %d: fqdn %q for %q", i, p.FullyQualifiedDomainName, p.Hostname)
		}
		if _, err := time.Parse(time.RFC3339, p.LastBootTimestamp); err != nil {
			t.Errorf("host %d: boot %q: %v", i, p.LastBootTimestamp, err)
		}
	}
	if len(versions) < 4 || len(memories) < 50 || len(cpus) < 5 {
		t.Errorf("too uniform: %d OS versions, %d memory sizes, %d cpu counts", len(versions), len(memories), len(cpus))
	}
}

func TestChangeRateIsHonoured(t *testing.T) {
	const hosts, rounds = 500, 40
	for _, rate := range []float64{0, 0.05, 0.2, 1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			f := newFleet(t, Config{N: hosts, ChangeRate: rate})
			changes := 0
			for i := range hosts {
				prev := f.Payload(i)
				for range rounds {
					p, changed := f.Next(i)
					// A change must show in the payload; no change must not.
					if changed == reflect.DeepEqual(p, prev) {
						t.Fatalf("host %d: changed=%v but\n%+v\n%+v", i, changed, prev, p)
					}
					if changed {
						changes++
					}
					prev = p
				}
			}
			// Binomial(n, rate): allow five standard deviations.
			n := float64(hosts * rounds)
			if mean, sd := n*rate, math.Sqrt(n*rate*(1-rate)); math.Abs(float64(changes)-mean) > 5*sd {
				t.Errorf("%d changes in %v discoveries at rate %v, want %v ± %.0f", changes, n, rate, mean, 5*sd)
			}
			if got := f.Stats().Changes; got != uint64(changes) {
				t.Errorf("Stats().Changes = %d, counted %d", got, changes)
			}
		})
	}
}

func TestChangesCoverSeveralFields(t *testing.T) {
	f := newFleet(t, Config{N: 200, ChangeRate: 1})
	fields := map[string]int{}
	for i := range f.Len() {
		prev := f.Payload(i)
		p, _ := f.Next(i)
		if p.TotalMemoryMB != prev.TotalMemoryMB {
			fields["memory"]++
		}
		if !slices.Equal(p.IPAddresses, prev.IPAddresses) {
			fields["ip"]++
		}
		if p.LastBootTimestamp != prev.LastBootTimestamp {
			fields["boot"]++
		}
		if p.OSVersion != prev.OSVersion {
			fields["os"]++
		}
	}
	for _, k := range []string{"memory", "ip", "boot", "os"} {
		if fields[k] == 0 {
			t.Errorf("no change of %s in 200 changes: %v", k, fields)
		}
	}
}

func TestPayloadIsACopy(t *testing.T) {
	f := newFleet(t, Config{N: 1})
	p := f.Payload(0)
	want := p.IPAddresses[0]
	p.IPAddresses[0], p.Netmasks[0] = "0.0.0.0", 0
	if got := f.Payload(0); got.IPAddresses[0] != want || got.Netmasks[0] == 0 {
		t.Errorf("changing a returned payload changed the host: %v %v", got.IPAddresses, got.Netmasks)
	}
}
