package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

func init() {
	Register(payload.HostDiscovery, func(env Env) (Discoverer, error) {
		return &HostDiscoverer{Root: env.Root, Logger: env.Logger}, nil
	})
}

// HostPayload is the host_discovery payload this agent sends.
type HostPayload = payload.Host

// HostDiscoverer discovers the machine itself.
type HostDiscoverer struct {
	// Root is the machine's file system root; "/" when empty.
	Root   string
	Logger *slog.Logger
	// InterfaceAddrs lists the addresses, with prefix lengths, of the up,
	// non-loopback interfaces. Interfaces are not files, so a test with a fake
	// root sets it. Default: from net.Interfaces.
	InterfaceAddrs func() ([]netip.Prefix, error)
	// LookupCNAME resolves the FQDN when /etc/hosts does not name it.
	// Default: net.DefaultResolver.LookupCNAME.
	LookupCNAME func(ctx context.Context, host string) (string, error)
}

// fqdnLookupTimeout bounds the DNS lookup: the FQDN is best effort and must
// not hold the discovery back when DNS is unreachable.
const fqdnLookupTimeout = 2 * time.Second

// Type implements Discoverer.
func (d *HostDiscoverer) Type() string { return payload.HostDiscovery }

// Discover implements Discoverer; the payload is a HostPayload.
func (d *HostDiscoverer) Discover(ctx context.Context) (any, error) {
	return d.DiscoverHost(ctx)
}

// DiscoverHost reads the machine. Every field but the FQDN is required: a
// payload with a zero where the machine has a value would tell the control
// plane the host changed, so a failed read fails the discovery.
func (d *HostDiscoverer) DiscoverHost(ctx context.Context) (HostPayload, error) {
	root := d.Root
	if root == "" {
		root = "/"
	}
	p := HostPayload{AgentVersion: Version, InstallationSource: InstallationSource}
	var err error
	if p.Hostname, err = readLine(root, "proc/sys/kernel/hostname"); err != nil {
		return HostPayload{}, fmt.Errorf("hostname: %w", err)
	}
	rel, err := osRelease(root)
	if err != nil {
		return HostPayload{}, fmt.Errorf("os release: %w", err)
	}
	p.OSName = rel["NAME"]
	// VERSION first, as the Trento agent sends it: on SLES it is "15-SP4"
	// where VERSION_ID is "15.4", and hosts must not look changed when they
	// move from one agent to the other.
	p.OSVersion = cmp.Or(rel["VERSION"], rel["VERSION_ID"])
	if p.KernelVersion, err = readLine(root, "proc/sys/kernel/osrelease"); err != nil {
		return HostPayload{}, fmt.Errorf("kernel release: %w", err)
	}
	if p.Arch, err = arch(root); err != nil {
		return HostPayload{}, fmt.Errorf("architecture: %w", err)
	}
	if p.CPUCount, p.SocketCount, err = cpuCounts(root); err != nil {
		return HostPayload{}, fmt.Errorf("cpus: %w", err)
	}
	if p.TotalMemoryMB, err = memTotalMB(root); err != nil {
		return HostPayload{}, fmt.Errorf("memory: %w", err)
	}
	boot, err := bootTime(root)
	if err != nil {
		return HostPayload{}, fmt.Errorf("boot time: %w", err)
	}
	p.LastBootTimestamp = boot.Format(time.RFC3339)
	if p.IPAddresses, p.Netmasks, err = d.addresses(); err != nil {
		return HostPayload{}, fmt.Errorf("ip addresses: %w", err)
	}
	p.FullyQualifiedDomainName = d.fqdn(ctx, root, p.Hostname)
	return p, nil
}

func arch(root string) (string, error) {
	a, err := readLine(root, "proc/sys/kernel/arch")
	if errors.Is(err, os.ErrNotExist) {
		return unameMachine()
	}
	return a, err
}

func (d *HostDiscoverer) addresses() (ips []string, masks []payload.Netmask, err error) {
	list := d.InterfaceAddrs
	if list == nil {
		list = upInterfaceAddrs
	}
	prefixes, err := list()
	if err != nil {
		return nil, nil, err
	}
	ips, masks = make([]string, 0, len(prefixes)), make([]payload.Netmask, 0, len(prefixes))
	for _, p := range prefixes {
		ips = append(ips, p.Addr().String())
		masks = append(masks, payload.Netmask(p.Bits()))
	}
	return ips, masks, nil
}

// upInterfaceAddrs lists the addresses of the up, non-loopback interfaces,
// in the kernel's order.
func upInterfaceAddrs() ([]netip.Prefix, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			bits, _ := ipn.Mask.Size()
			if ip.Is4In6() && bits > 32 {
				bits -= 96
			}
			out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
		}
	}
	return out, nil
}

// fqdn answers like hostname -f: /etc/hosts first, then DNS; failing both, a
// hostname that already has a domain is its own FQDN. Empty when unknown.
func (d *HostDiscoverer) fqdn(ctx context.Context, root, hostname string) string {
	name, err := hostsCanonicalName(root, hostname)
	if err != nil {
		d.logger().Debug("fqdn from hosts file", "path", filepath.Join(root, "etc/hosts"), "err", err)
	}
	if name != "" {
		return name
	}
	lookup := d.LookupCNAME
	if lookup == nil {
		lookup = net.DefaultResolver.LookupCNAME
	}
	ctx, cancel := context.WithTimeout(ctx, fqdnLookupTimeout)
	defer cancel()
	cname, err := lookup(ctx, hostname)
	if cname = strings.TrimSuffix(cname, "."); err == nil && cname != "" {
		return cname
	}
	d.logger().Debug("fqdn from dns", "hostname", hostname, "err", err)
	if strings.Contains(hostname, ".") {
		return hostname
	}
	return ""
}

func (d *HostDiscoverer) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}
