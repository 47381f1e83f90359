package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// fakeRoot is a SLES 15 SP4 machine shaped like the Trento fixture host.
const fakeRoot = "testdata/root"

func fixedAddrs(prefixes ...string) func() ([]netip.Prefix, error) {
	return func() ([]netip.Prefix, error) {
		out := make([]netip.Prefix, len(prefixes))
		for i, p := range prefixes {
			out[i] = netip.MustParsePrefix(p)
		}
		return out, nil
	}
}

func noDNS(t *testing.T) func(context.Context, string) (string, error) {
	return func(_ context.Context, host string) (string, error) {
		t.Errorf("DNS lookup of %q although /etc/hosts names it", host)
		return "", errors.New("no DNS in this test")
	}
}

func TestHostDiscoveryFromFakeRoot(t *testing.T) {
	d := &HostDiscoverer{
		Root:           fakeRoot,
		InterfaceAddrs: fixedAddrs("10.1.1.4/16", "10.1.1.5/24", "10.1.1.6/32"),
		LookupCNAME:    noDNS(t),
	}
	got, err := d.DiscoverHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := HostPayload{
		Hostname:                 "suse",
		FullyQualifiedDomainName: "suse.l15cqsinwnpu5gfyrf1r5l51fe.ax.internal.cloudapp.net",
		OSName:                   "SLES",
		OSVersion:                "15-SP4",
		KernelVersion:            "5.14.21-150400.24.63-default",
		Arch:                     "x86_64",
		CPUCount:                 2,
		SocketCount:              1,
		TotalMemoryMB:            4096,
		IPAddresses:              []string{"10.1.1.4", "10.1.1.5", "10.1.1.6"},
		Netmasks:                 []payload.Netmask{16, 24, 32},
		AgentVersion:             Version,
		InstallationSource:       InstallationSource,
		LastBootTimestamp:        "2024-06-10T12:34:56Z",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("payload\n got %+v\nwant %+v", got, want)
	}
}

// The JSON must read like the Trento agent's: same field names, same JSON
// types, same values for the same machine.
func TestHostPayloadMatchesTrentoFixture(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/fixtures/trento/discovery/host_discovery_with_last_boot_timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		DiscoveryType string         `json:"discovery_type"`
		Payload       map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	d := &HostDiscoverer{
		Root:           fakeRoot,
		InterfaceAddrs: fixedAddrs("10.1.1.4/16", "10.1.1.5/24", "10.1.1.6/32"),
		LookupCNAME:    noDNS(t),
	}
	if d.Type() != fixture.DiscoveryType {
		t.Errorf("type %q, fixture %q", d.Type(), fixture.DiscoveryType)
	}
	p, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	var ours map[string]any
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	// systemd_units needs D-Bus (not discovered); the fixture host runs SP2.
	skip := []string{"systemd_units", "os_version", "agent_version"}
	for k, v := range fixture.Payload {
		if slices.Contains(skip, k) {
			continue
		}
		if !reflect.DeepEqual(ours[k], v) {
			t.Errorf("%s = %#v, fixture %#v", k, ours[k], v)
		}
	}
	for _, k := range []string{"os_name", "kernel_version", "installation_source", "os_version", "agent_version"} {
		if _, ok := ours[k]; !ok {
			t.Errorf("payload lacks %s: %s", k, b)
		}
	}
}

func TestHostDiscovererIsRegistered(t *testing.T) {
	ds, err := NewDiscoverers(Env{Root: fakeRoot})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, d := range ds {
		types = append(types, d.Type())
	}
	if !slices.Contains(types, "host_discovery") {
		t.Errorf("registered discoveries %v lack host_discovery", types)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering host_discovery twice did not panic")
		}
	}()
	Register("host_discovery", func(Env) (Discoverer, error) { return nil, nil })
}

// writeTree copies the fake root into a temporary directory and applies
// changes: a nil content removes the file.
func writeTree(t *testing.T, changes map[string]*string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(fakeRoot)); err != nil {
		t.Fatal(err)
	}
	for path, content := range changes {
		p := filepath.Join(dir, path)
		if content == nil {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(*content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func ptr(s string) *string { return &s }

func TestHostDiscoveryFailsOnUnreadableMachine(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"proc/sys/kernel/hostname", "hostname"},
		{"etc/os-release", "os release"},
		{"proc/sys/kernel/osrelease", "kernel release"},
		{"proc/cpuinfo", "cpus"},
		{"proc/meminfo", "memory"},
		{"proc/stat", "boot time"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			d := &HostDiscoverer{
				Root:           writeTree(t, map[string]*string{tc.file: nil}),
				InterfaceAddrs: fixedAddrs(),
				LookupCNAME:    noDNS(t),
			}
			_, err := d.DiscoverHost(t.Context())
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Errorf("without %s: err %v, want one about %s", tc.file, err, tc.want)
			}
		})
	}
}

func TestOSRelease(t *testing.T) {
	for _, tc := range []struct {
		name               string
		files              map[string]*string
		wantName, wantVers string
	}{
		{
			name: "VERSION_ID when there is no VERSION",
			files: map[string]*string{"etc/os-release": ptr(
				"NAME=\"openSUSE Tumbleweed\"\n# comment\nVERSION_ID=\"20240610\"\n")},
			wantName: "openSUSE Tumbleweed", wantVers: "20240610",
		},
		{
			name: "single quotes and escapes",
			files: map[string]*string{"etc/os-release": ptr(
				"NAME='Red Hat Enterprise Linux'\nVERSION=\"9.4 (Plow \\\"x\\\")\"\n")},
			wantName: "Red Hat Enterprise Linux", wantVers: `9.4 (Plow "x")`,
		},
		{
			name: "only /usr/lib/os-release",
			files: map[string]*string{
				"etc/os-release":     nil,
				"usr/lib/os-release": ptr("NAME=SLES\nVERSION=15-SP5\nVERSION_ID=15.5\n"),
			},
			wantName: "SLES", wantVers: "15-SP5",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &HostDiscoverer{Root: writeTree(t, tc.files), InterfaceAddrs: fixedAddrs(), LookupCNAME: noDNS(t)}
			p, err := d.DiscoverHost(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if p.OSName != tc.wantName || p.OSVersion != tc.wantVers {
				t.Errorf("os %q %q, want %q %q", p.OSName, p.OSVersion, tc.wantName, tc.wantVers)
			}
		})
	}
}

func TestCPUCounts(t *testing.T) {
	x86 := func(ids ...string) string {
		var b strings.Builder
		for i, id := range ids {
			b.WriteString("processor\t: " + string(rune('0'+i)) + "\nmodel name\t: Xeon\nphysical id\t: " + id + "\ncore id\t\t: 0\n\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name             string
		cpuinfo          string
		logical, sockets int
	}{
		{"x86 two sockets", x86("0", "0", "1", "1"), 4, 2},
		{"x86 one socket", x86("0", "0"), 2, 1},
		{"arm64 has no physical id", "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\nprocessor\t: 2\nBogoMIPS\t: 50.00\n", 3, 1},
		{"s390x", "vendor_id       : IBM/S390\n# processors    : 2\nbogomips per cpu: 3241.00\nprocessor 0: version = FF,  identification = 0133E8,  machine = 3906\nprocessor 1: version = FF,  identification = 0133E8,  machine = 3906\n", 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, map[string]*string{"proc/cpuinfo": &tc.cpuinfo})
			logical, sockets, err := cpuCounts(root)
			if err != nil {
				t.Fatal(err)
			}
			if logical != tc.logical || sockets != tc.sockets {
				t.Errorf("got %d cpus %d sockets, want %d %d", logical, sockets, tc.logical, tc.sockets)
			}
		})
	}
	if _, _, err := cpuCounts(writeTree(t, map[string]*string{"proc/cpuinfo": ptr("garbage\n")})); err == nil {
		t.Error("a cpuinfo without processors gave no error")
	}
}

func TestFQDN(t *testing.T) {
	dns := func(answer string, err error) func(context.Context, string) (string, error) {
		return func(context.Context, string) (string, error) { return answer, err }
	}
	for _, tc := range []struct {
		name, hostname string
		lookup         func(context.Context, string) (string, error)
		want           string
	}{
		{"hosts file, short name listed second", "suse", noDNS(t), "suse.l15cqsinwnpu5gfyrf1r5l51fe.ax.internal.cloudapp.net"},
		// The first name on the line is canonical, as for the C library,
		// even when a longer alias follows.
		{"hosts file, name listed first", "suse-hana", noDNS(t), "suse-hana"},
		{"dns when hosts does not know", "vmhana01", dns("vmhana01.example.com.", nil), "vmhana01.example.com"},
		{"hostname with a domain when dns fails", "db1.example.org", dns("", errors.New("no such host")), "db1.example.org"},
		{"unknown", "vmhana02", dns("", errors.New("no such host")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &HostDiscoverer{LookupCNAME: tc.lookup}
			if got := d.fqdn(t.Context(), fakeRoot, tc.hostname); got != tc.want {
				t.Errorf("fqdn(%q) = %q, want %q", tc.hostname, got, tc.want)
			}
		})
	}
}

func TestMachineAgentID(t *testing.T) {
	// The Trento agent's own test vector: machine-id "dummy-machine-id" is
	// agent 779cdd70-…, the agent id of every Trento fixture.
	id, err := MachineAgentID(fakeRoot)
	if err != nil {
		t.Fatal(err)
	}
	if id != "779cdd70-e9e2-58ca-b18a-bf3eb3f71244" {
		t.Errorf("agent id %s, want the Trento agent's 779cdd70-e9e2-58ca-b18a-bf3eb3f71244", id)
	}
	_, err = MachineAgentID(writeTree(t, map[string]*string{"etc/machine-id": ptr("\n")}))
	if err == nil || !strings.Contains(err.Error(), "set the agent id") {
		t.Errorf("empty machine-id: err %v, want one telling to set the agent id", err)
	}
}
