package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Host is the host_discovery payload: the Trento agent's fields plus
// os_name and kernel_version, which fleetstream's agent also sends. The
// agent encodes it and DecodeHost decodes it; unknown fields
// (prometheus_targets, ...) are ignored. Uptime is left out on purpose: it
// changes at every discovery, the boot time does not.
type Host struct {
	Hostname                 string    `json:"hostname"`
	FullyQualifiedDomainName string    `json:"fully_qualified_domain_name,omitempty"`
	OSName                   string    `json:"os_name"`
	OSVersion                string    `json:"os_version"`
	KernelVersion            string    `json:"kernel_version"`
	Arch                     string    `json:"arch"`
	CPUCount                 int       `json:"cpu_count"`
	SocketCount              int       `json:"socket_count"`
	TotalMemoryMB            int64     `json:"total_memory_mb"`
	IPAddresses              []string  `json:"ip_addresses"`
	Netmasks                 []Netmask `json:"netmasks"`
	AgentVersion             string    `json:"agent_version"`
	InstallationSource       string    `json:"installation_source"`
	// LastBootTimestamp is RFC 3339 in UTC, like the Trento agent's.
	LastBootTimestamp string        `json:"last_boot_timestamp,omitempty"`
	SystemdUnits      []SystemdUnit `json:"systemd_units,omitempty"`
}

// SystemdUnit is one entry of Host.SystemdUnits.
type SystemdUnit struct {
	Name          string `json:"name"`
	UnitFileState string `json:"unit_file_state"`
}

// Netmask is a prefix length. Trento agents send it as a number (24) or,
// in some versions, as a string ("24"); it is encoded as a number.
type Netmask int32

// UnmarshalJSON accepts a number or a numeric string.
func (n *Netmask) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("netmask %s is not a prefix length", b)
	}
	*n = Netmask(v)
	return nil
}

// DecodeHost turns a host_discovery payload into HostDetails.
func DecodeHost(payload []byte) (*fleetv1.HostDetails, error) {
	var p Host
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, decodeError(err)
	}
	if p.Hostname == "" {
		return nil, &FieldError{Name: "hostname", Err: errors.New("hostname is required")}
	}
	d := &fleetv1.HostDetails{
		Hostname:           p.Hostname,
		Fqdn:               p.FullyQualifiedDomainName,
		OsName:             p.OSName,
		OsVersion:          p.OSVersion,
		KernelVersion:      p.KernelVersion,
		Arch:               p.Arch,
		CpuCount:           int32(p.CPUCount),
		SocketCount:        int32(p.SocketCount),
		TotalMemoryMb:      p.TotalMemoryMB,
		IpAddresses:        p.IPAddresses,
		AgentVersion:       p.AgentVersion,
		InstallationSource: p.InstallationSource,
	}
	for _, m := range p.Netmasks {
		d.Netmasks = append(d.Netmasks, int32(m))
	}
	for _, u := range p.SystemdUnits {
		d.SystemdUnits = append(d.SystemdUnits, &fleetv1.SystemdUnit{Name: u.Name, UnitFileState: u.UnitFileState})
	}
	// An unparsable boot time is treated as unknown rather than refusing
	// the whole discovery: it is informational, and the agent reports it
	// as it found it (Trento agents send "invalid-date" and the like).
	if t, err := time.Parse(time.RFC3339, p.LastBootTimestamp); err == nil {
		d.LastBootAt = timestamppb.New(t)
	}
	return d, nil
}
