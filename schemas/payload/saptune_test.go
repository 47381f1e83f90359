package payload

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestDecodeSaptuneFixture(t *testing.T) {
	got, err := DecodeSaptune(fixture(t, "discovery/saptune_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	notes := []string{"941735", "1771258", "2578899", "2993054", "1656250", "900929"}
	want := &fleetv1.SaptuneStatus{Installed: true, PackageVersion: "3.1.0", Tuning: &fleetv1.SaptuneTuning{
		TuningState:       "not compliant",
		ConfiguredVersion: "3",
		Services: []*fleetv1.SaptuneService{
			{Name: "sapconf"}, {Name: "saptune", Enabled: "enabled", Active: "active"}, {Name: "tuned"},
		},
		EnabledSolutions: []string{"NETWEAVER"},
		AppliedSolutions: []*fleetv1.SaptuneSolution{{Id: "NETWEAVER"}},
		EnabledNotes:     notes,
		AppliedNotes:     notes,
		StagedNotes:      []string{},
		StagedSolutions:  []string{},
	}}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded\n%v\nwant\n%v", got, want)
	}
}

func TestDecodeSaptuneVariants(t *testing.T) {
	const hosts = "scenarios/hosts-overview/9cd46919-5f19-59aa-993e-cf3736c71053_saptune_discovery_"
	tests := []struct {
		file      string
		installed bool
		version   string
		state     string // "" for no tuning status
	}{
		{"discovery/saptune_discovery_empty_result.json", true, "3.1.0", ""},
		{"discovery/saptune_discovery_empty_status.json", true, "3.0.0", ""},
		{"discovery/saptune_discovery_not_configured.json", true, "3.1.0", "not tuned"},
		{hosts + "compliant.json", true, "3.1.0", "compliant"},
		{hosts + "not_compliant.json", true, "3.1.0", "not compliant"},
		{hosts + "not_tuned.json", true, "3.1.0", "not tuned"},
		{hosts + "uninstalled.json", false, "", ""},
		{hosts + "unsupported.json", true, "3.0.0", ""},
		{"scenarios/hana-scale-up-cost-opt/2372b24f-3d7a-5d01-9b1a-a2c4c95c53d4_saptune_discovery.json", true, "3.1.2", "not compliant"},
	}
	for _, tt := range tests {
		got, err := DecodeSaptune(fixture(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if got.Installed != tt.installed || got.PackageVersion != tt.version || got.GetTuning().GetTuningState() != tt.state || (tt.state == "") != (got.Tuning == nil) {
			t.Errorf("%s: %v", tt.file, got)
		}
	}
}

// saptune's publish time, pid and messages change at every run; the
// decoded status must not.
func TestDecodeSaptuneIgnoresWhatChangesEveryRun(t *testing.T) {
	raw := fixture(t, "discovery/saptune_discovery.json")
	again := bytes.Replace(raw, []byte(`"2023-04-24 12:41:56.612"`), []byte(`"2023-04-24 12:56:57.001"`), 1)
	again = bytes.Replace(again, []byte(`"pid": 24623`), []byte(`"pid": 31337`), 1)
	if bytes.Equal(raw, again) {
		t.Fatal("the fixture's publish time or pid was not found")
	}
	a, err := DecodeSaptune(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeSaptune(again)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a, b) {
		t.Errorf("the status changed with the publish time:\n%v\n%v", a, b)
	}
}

func TestDecodeSaptuneErrors(t *testing.T) {
	tests := []struct {
		name, raw, field, message string
	}{
		{"no installed flag", `{"package_version": "3.1.0"}`, "saptune_installed", "saptune_installed is required"},
		{"installed not a bool", `{"saptune_installed": "yes"}`, "saptune_installed", "saptune_installed must be a JSON bool, got string"},
		{"tuning state not a string", `{"saptune_installed": true, "status": {"result": {"tuning state": 1}}}`, "status.result.tuning state", "must be a JSON string, got number"},
		{"not an object", `"saptune"`, "", "not a valid payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSaptune([]byte(tt.raw))
			checkError(t, err, tt.field, tt.message)
		})
	}
}
