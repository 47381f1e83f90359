package payload

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// fixture returns the raw payload of a Trento fixture (path relative to
// testdata/fixtures/trento), bytes as the agent sent them.
func fixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/trento/" + path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return f.Payload
}

func TestDecodeHostFixture(t *testing.T) {
	got, err := DecodeHost(fixture(t, "discovery/host_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fixtureDetails(); !proto.Equal(got, want) {
		t.Fatalf("decoded\n%v\nwant\n%v", got, want)
	}
}

func TestDecodeHostVariants(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(*testing.T, *fleetv1.HostDetails)
	}{
		{"last boot timestamp", "host_discovery_with_last_boot_timestamp.json", func(t *testing.T, d *fleetv1.HostDetails) {
			if want := time.Date(2024, 6, 10, 12, 34, 56, 0, time.UTC); !d.GetLastBootAt().AsTime().Equal(want) {
				t.Errorf("last_boot_at = %v, want %v", d.GetLastBootAt().AsTime(), want)
			}
		}},
		{"invalid last boot timestamp is unknown", "host_discovery_with_last_boot_timestamp_wrong.json", func(t *testing.T, d *fleetv1.HostDetails) {
			if d.LastBootAt != nil {
				t.Errorf("last_boot_at = %v, want unset", d.LastBootAt)
			}
			if d.Hostname != "suse" {
				t.Errorf("hostname = %q", d.Hostname)
			}
		}},
		{"installation source", "host_discovery_with_installation_source.json", func(t *testing.T, d *fleetv1.HostDetails) {
			if d.InstallationSource != "Community" || d.Arch != "" {
				t.Errorf("installation_source = %q, arch = %q", d.InstallationSource, d.Arch)
			}
		}},
		{"unknown fields ignored", "host_discovery_with_prometheus_mode_push.json", func(t *testing.T, d *fleetv1.HostDetails) {
			if d.CpuCount != 2 {
				t.Errorf("cpu_count = %d", d.CpuCount)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeHost(fixture(t, "discovery/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
		})
	}
}

// Some Trento agents send netmasks as strings.
func TestDecodeHostStringNetmasks(t *testing.T) {
	payload := fixture(t, "scenarios/single-hana-single-app/e77ab524-c4e4-5381-bb59-5af8639d52a4_host_discovery.json")
	d, err := DecodeHost(payload)
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{8, 128, 16, 24, 24, 64, 24, 24, 64, 64, 64}
	if !proto.Equal(&fleetv1.HostDetails{Netmasks: d.Netmasks}, &fleetv1.HostDetails{Netmasks: want}) {
		t.Errorf("netmasks = %v, want %v", d.Netmasks, want)
	}
	if d.Hostname != "trento-vmnetweaver01" || len(d.IpAddresses) != 11 {
		t.Errorf("hostname %q, %d addresses", d.Hostname, len(d.IpAddresses))
	}
}

func TestDecodeHostErrors(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":          `{"hostname": "a",`,
		"null":              `null`,
		"no hostname":       `{"cpu_count": 2}`,
		"wrong type":        `{"hostname": "a", "cpu_count": "two"}`,
		"bad netmask":       `{"hostname": "a", "netmasks": ["/24"]}`,
		"array not object":  `[1, 2]`,
		"units not objects": `{"hostname": "a", "systemd_units": ["sshd"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if d, err := DecodeHost([]byte(payload)); err == nil {
				t.Fatalf("decoded %v, want an error", d)
			}
		})
	}
}

// fixtureDetails is what host_discovery.json says, field by field.
func fixtureDetails() *fleetv1.HostDetails {
	return &fleetv1.HostDetails{
		Hostname:      "suse",
		Fqdn:          "suse.l15cqsinwnpu5gfyrf1r5l51fe.ax.internal.cloudapp.net",
		OsVersion:     "15-SP2",
		Arch:          "x86_64",
		CpuCount:      2,
		SocketCount:   1,
		TotalMemoryMb: 4096,
		IpAddresses:   []string{"10.1.1.4", "10.1.1.5", "10.1.1.6"},
		Netmasks:      []int32{16, 24, 32},
		AgentVersion:  "0.1.0",
		SystemdUnits:  []*fleetv1.SystemdUnit{{Name: "pacemaker.service", UnitFileState: "enabled"}},
	}
}
