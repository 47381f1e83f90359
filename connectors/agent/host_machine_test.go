//go:build linux

package agent

import (
	"bufio"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHostDiscoveryOfThisMachine discovers the machine the test runs on and
// checks each value against a source the discoverer does not read.
func TestHostDiscoveryOfThisMachine(t *testing.T) {
	p, err := (&HostDiscoverer{}).DiscoverHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("discovered %+v", p)

	if h, err := os.Hostname(); err != nil || p.Hostname != h {
		t.Errorf("hostname %q, os.Hostname %q (%v)", p.Hostname, h, err)
	}

	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if r := unix.ByteSliceToString(u.Release[:]); p.KernelVersion != r {
		t.Errorf("kernel %q, uname -r %q", p.KernelVersion, r)
	}
	if m := unix.ByteSliceToString(u.Machine[:]); p.Arch != m {
		t.Errorf("arch %q, uname -m %q", p.Arch, m)
	}
	goarchUname := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}
	if want, ok := goarchUname[runtime.GOARCH]; ok && p.Arch != want {
		t.Errorf("arch %q on GOARCH %s, want %q", p.Arch, runtime.GOARCH, want)
	}

	// runtime.NumCPU counts the CPUs this process may use, a subset of the
	// machine's; the kernel's online list counts them all.
	if p.CPUCount < runtime.NumCPU() {
		t.Errorf("cpu_count %d < runtime.NumCPU %d", p.CPUCount, runtime.NumCPU())
	}
	if online, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if n := countCPUList(t, strings.TrimSpace(string(online))); p.CPUCount != n {
			t.Errorf("cpu_count %d, /sys/devices/system/cpu/online lists %d", p.CPUCount, n)
		}
	}
	if p.SocketCount < 1 || p.SocketCount > p.CPUCount {
		t.Errorf("socket_count %d with %d cpus", p.SocketCount, p.CPUCount)
	}

	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if mb := int64(uint64(si.Totalram) * uint64(si.Unit) >> 20); p.TotalMemoryMB != mb {
		t.Errorf("total_memory_mb %d, sysinfo %d", p.TotalMemoryMB, mb)
	}
	boot, err := time.Parse(time.RFC3339, p.LastBootTimestamp)
	if err != nil {
		t.Fatalf("last_boot_timestamp %q: %v", p.LastBootTimestamp, err)
	}
	// Both are whole seconds read at slightly different instants.
	if fromUptime := time.Now().Add(-time.Duration(si.Uptime) * time.Second); boot.Sub(fromUptime).Abs() > 3*time.Second {
		t.Errorf("boot %s, now - sysinfo uptime %s", boot, fromUptime)
	}

	if name := osReleaseName(t); p.OSName != name {
		t.Errorf("os_name %q, os-release NAME %q", p.OSName, name)
	}
	if p.OSVersion == "" {
		t.Error("os_version is empty")
	}

	if want := machineAddrs(t); !slices.Equal(sortedPrefixes(t, p), want) {
		t.Errorf("addresses %v %v, machine has %v", p.IPAddresses, p.Netmasks, want)
	}

	if out, err := exec.Command("hostname", "-f").Output(); err == nil {
		if want := strings.TrimSpace(string(out)); p.FullyQualifiedDomainName != want {
			t.Errorf("fqdn %q, hostname -f %q", p.FullyQualifiedDomainName, want)
		}
	}
}

// countCPUList counts a kernel CPU list such as "0-3,8,10-11".
func countCPUList(t *testing.T, list string) int {
	n := 0
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			t.Fatalf("cpu list %q", list)
		}
		n += b - a + 1
	}
	return n
}

func osReleaseName(t *testing.T) string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		f, err = os.Open("/usr/lib/os-release")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

func sortedPrefixes(t *testing.T, p HostPayload) []string {
	if len(p.IPAddresses) != len(p.Netmasks) {
		t.Fatalf("%d addresses, %d netmasks", len(p.IPAddresses), len(p.Netmasks))
	}
	out := make([]string, len(p.IPAddresses))
	for i, ip := range p.IPAddresses {
		out[i] = ip + "/" + strconv.Itoa(int(p.Netmasks[i]))
	}
	slices.Sort(out)
	return out
}

// machineAddrs lists the non-loopback addresses of up interfaces: IPv6 from
// /proc/net/if_inet6, IPv4 from the routing socket (net.InterfaceAddrs).
func machineAddrs(t *testing.T) []string {
	var out []string
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			t.Fatal(err)
		}
		if p.Addr().Is4() && !p.Addr().IsLoopback() {
			out = append(out, p.String())
		}
	}
	if b, err := os.ReadFile("/proc/net/if_inet6"); err == nil {
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) != 6 || f[5] == "lo" || !interfaceUp(f[5]) {
				continue
			}
			raw, err1 := hex.DecodeString(f[0])
			bits, err2 := strconv.ParseInt(f[2], 16, 0)
			if err1 != nil || err2 != nil || len(raw) != 16 {
				t.Fatalf("if_inet6 line %q", line)
			}
			out = append(out, netip.PrefixFrom(netip.AddrFrom16([16]byte(raw)), int(bits)).String())
		}
	}
	slices.Sort(out)
	return out
}

func interfaceUp(name string) bool {
	b, err := os.ReadFile("/sys/class/net/" + name + "/flags")
	if err != nil {
		return true
	}
	flags, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	return err == nil && flags&unix.IFF_UP != 0
}
