package fields

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func details() *fleetv1.HostDetails {
	return &fleetv1.HostDetails{
		Hostname:     "suse",
		CpuCount:     2,
		IpAddresses:  []string{"10.1.1.4", "10.1.1.5"},
		Netmasks:     []int32{16, 24},
		LastBootAt:   &timestamppb.Timestamp{Seconds: 1718022896},
		SystemdUnits: []*fleetv1.SystemdUnit{{Name: "pacemaker.service", UnitFileState: "enabled"}},
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(*fleetv1.HostDetails)
		want   []string
	}{
		{"identical", func(*fleetv1.HostDetails) {}, nil},
		{"scalar", func(d *fleetv1.HostDetails) { d.CpuCount = 4 }, []string{"cpu_count"}},
		{"list order counts", func(d *fleetv1.HostDetails) { d.IpAddresses = []string{"10.1.1.5", "10.1.1.4"} }, []string{"ip_addresses"}},
		{"list element removed", func(d *fleetv1.HostDetails) { d.Netmasks = d.Netmasks[:1] }, []string{"netmasks"}},
		{"nested message", func(d *fleetv1.HostDetails) { d.SystemdUnits[0].UnitFileState = "disabled" }, []string{"systemd_units"}},
		{"timestamp cleared", func(d *fleetv1.HostDetails) { d.LastBootAt = nil }, []string{"last_boot_at"}},
		{"field-number order", func(d *fleetv1.HostDetails) { d.IpAddresses = nil; d.Hostname = "x" }, []string{"hostname", "ip_addresses"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := details()
			tt.change(b)
			if got := Diff(details(), b); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiffNil(t *testing.T) {
	var empty *fleetv1.HostDetails
	if got := Diff(empty, &fleetv1.HostDetails{}); got != nil {
		t.Errorf("nil vs empty: %v", got)
	}
	if got := Diff(empty, &fleetv1.HostDetails{Arch: "x86_64"}); !slices.Equal(got, []string{"arch"}) {
		t.Errorf("nil vs arch: %v", got)
	}
}

func TestCopy(t *testing.T) {
	src := details()
	dst := &fleetv1.HostDetails{Hostname: "old", CpuCount: 8, Arch: "aarch64"}
	if err := Copy(dst, src, []string{"cpu_count", "systemd_units", "arch"}); err != nil {
		t.Fatal(err)
	}
	want := &fleetv1.HostDetails{Hostname: "old", CpuCount: 2, SystemdUnits: src.SystemdUnits}
	if !proto.Equal(dst, want) {
		t.Fatalf("Copy = %v, want %v", dst, want)
	}
	src.SystemdUnits[0].Name = "changed"
	if dst.SystemdUnits[0].Name != "pacemaker.service" {
		t.Error("dst shares systemd_units with src")
	}
}

func TestCopyUnknownFieldChangesNothing(t *testing.T) {
	dst := &fleetv1.HostDetails{CpuCount: 8}
	err := Copy(dst, details(), []string{"cpu_count", "cpuCount"})
	if err == nil || err.Error() != `fleetstream.v1.HostDetails has no field "cpuCount"` {
		t.Fatalf("err = %v", err)
	}
	if dst.CpuCount != 8 {
		t.Errorf("cpu_count copied despite the error: %d", dst.CpuCount)
	}
}
