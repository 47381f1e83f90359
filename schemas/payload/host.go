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

// hostPayload is a host_discovery payload: the Trento agent's shape, plus
// os_name and kernel_version that fleetstream's agent also sends. Unknown
// fields (prometheus_targets, ...) are ignored.
type hostPayload struct {
	Hostname           string            `json:"hostname"`
	FQDN               string            `json:"fully_qualified_domain_name"`
	OSName             string            `json:"os_name"`
	OSVersion          string            `json:"os_version"`
	KernelVersion      string            `json:"kernel_version"`
	Arch               string            `json:"arch"`
	CPUCount           int32             `json:"cpu_count"`
	SocketCount        int32             `json:"socket_count"`
	TotalMemoryMB      int64             `json:"total_memory_mb"`
	IPAddresses        []string          `json:"ip_addresses"`
	Netmasks           []netmask         `json:"netmasks"`
	AgentVersion       string            `json:"agent_version"`
	LastBootTimestamp  string            `json:"last_boot_timestamp"`
	InstallationSource string            `json:"installation_source"`
	SystemdUnits       []hostSystemdUnit `json:"systemd_units"`
}

type hostSystemdUnit struct {
	Name          string `json:"name"`
	UnitFileState string `json:"unit_file_state"`
}

// netmask is a prefix length. Trento agents send it as a number (24) or,
// in some versions, as a string ("24").
type netmask int32

func (n *netmask) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("netmask %s is not a prefix length", b)
	}
	*n = netmask(v)
	return nil
}

// DecodeHost turns a host_discovery payload into HostDetails.
func DecodeHost(payload []byte) (*fleetv1.HostDetails, error) {
	var p hostPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, decodeError(err)
	}
	if p.Hostname == "" {
		return nil, &FieldError{Name: "hostname", Err: errors.New("hostname is required")}
	}
	d := &fleetv1.HostDetails{
		Hostname:           p.Hostname,
		Fqdn:               p.FQDN,
		OsName:             p.OSName,
		OsVersion:          p.OSVersion,
		KernelVersion:      p.KernelVersion,
		Arch:               p.Arch,
		CpuCount:           p.CPUCount,
		SocketCount:        p.SocketCount,
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
