package payload

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// sapFixture reads the payload of a Trento fixture.
func sapFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/trento/" + path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d.Payload
}

// Every SAP fixture decodes; each instance is summarised as "SID type
// number features status replication".
func TestDecodeSAPSystemsFixtures(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"discovery/sap_system_discovery_application.json", []string{"HA1 2 02 ABAP|GATEWAY|ICMAN|IGS GREEN"}},
		{"discovery/sap_system_discovery_application_diagnostics.json", []string{"HA1 2 02 ABAP|GATEWAY|ICMAN|IGS GREEN", "DAA 3 98 SMDAGENT GREEN"}},
		{"discovery/sap_system_discovery_database.json", []string{"PRD 1 00 HDB|HDB_WORKER GREEN Primary/ERROR"}},
		{"discovery/sap_system_discovery_database_multi_tenant.json", []string{"HS6 1 56 HDB|HDB_WORKER GREEN"}},
		{"discovery/sap_system_discovery_database_secondary.json", []string{"PRD 1 00 HDB|HDB_WORKER GREEN Secondary/"}},
		{"discovery/sap_system_discovery_database_stopped_instance.json", []string{"HDP 1 10 HDB|HDB_WORKER GRAY"}},
		{"discovery/sap_system_discovery_empty.json", []string{}},
		{"discovery/sap_system_discovery_empty_application_instances.json", []string{"NWQ 0 -"}},
		{"scenarios/hana-database-details/0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4_sap_system_discovery_GRAY.json", []string{"HDD 1 10 HDB|HDB_WORKER GRAY Secondary/"}},
		{"scenarios/hana-database-details/0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4_sap_system_discovery_GREEN.json", []string{"HDD 1 10 HDB|HDB_WORKER GREEN Secondary/"}},
		{"scenarios/hana-database-details/0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4_sap_system_discovery_RED.json", []string{"HDD 1 10 HDB|HDB_WORKER RED Secondary/"}},
		{"scenarios/hana-database-details/0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4_sap_system_discovery_YELLOW.json", []string{"HDD 1 10 HDB|HDB_WORKER YELLOW Secondary/"}},
		{"scenarios/hana-database-details/0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4_sap_system_discovery_new.json", []string{"HDD 1 11 HDB|HDB_WORKER GRAY Secondary/"}},
		{"scenarios/hana-database-details/0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4_sap_system_discovery_secondary_stopped.json", []string{"HDD 1 10 HDB|HDB_WORKER GRAY"}},
		{"scenarios/hana-database-details/13e8c25c-3180-5a9a-95c8-51ec38e50cfc_sap_system_discovery_primary_stopped.json", []string{"HDD 1 10 HDB|HDB_WORKER GRAY"}},
		{"scenarios/hana-database-details/13e8c25c-3180-5a9a-95c8-51ec38e50cfc_sap_system_discovery_secondary_stopped.json", []string{"HDD 1 10 HDB|HDB_WORKER GREEN Primary/ERROR"}},
		{"scenarios/hana-scale-up-angi/4b67842f-ccf7-46a4-a344-9e918648b117_sap_system_discovery.json", []string{"HN9 1 09 HDB|HDB_WORKER GREEN Secondary/"}},
		{"scenarios/hana-scale-up-angi/851a4dd3-9693-44c3-a40b-b32d22872e74_sap_system_discovery.json", []string{"HN9 1 09 HDB|HDB_WORKER GREEN Primary/ACTIVE"}},
		{"scenarios/hana-scale-up-cost-opt/2372b24f-3d7a-5d01-9b1a-a2c4c95c53d4_sap_system_discovery.json", []string{"HDC 1 10 HDB|HDB_WORKER GREEN Secondary/", "QAS 1 20 HDB|HDB_WORKER GREEN"}},
		{"scenarios/hana-scale-up-cost-opt/fa7a5602-232b-5389-96a6-f5f5de6ff9a2_sap_system_discovery.json", []string{"HDC 1 10 HDB|HDB_WORKER GREEN Primary/ACTIVE"}},
		{"scenarios/sap-system-details/1b0e9297-97dd-55d6-9874-8efde4d84c90_sap_system_discovery_GRAY.json", []string{"NWD 2 02 ABAP|GATEWAY|ICMAN|IGS GRAY"}},
		{"scenarios/sap-system-details/1b0e9297-97dd-55d6-9874-8efde4d84c90_sap_system_discovery_GREEN.json", []string{"NWD 2 02 ABAP|GATEWAY|ICMAN|IGS GREEN"}},
		{"scenarios/sap-system-details/1b0e9297-97dd-55d6-9874-8efde4d84c90_sap_system_discovery_RED.json", []string{"NWD 2 02 ABAP|GATEWAY|ICMAN|IGS RED"}},
		{"scenarios/sap-system-details/1b0e9297-97dd-55d6-9874-8efde4d84c90_sap_system_discovery_YELLOW.json", []string{"NWD 2 02 ABAP|GATEWAY|ICMAN|IGS YELLOW"}},
		{"scenarios/sap-system-details/1b0e9297-97dd-55d6-9874-8efde4d84c90_sap_system_discovery_new.json", []string{"NWD 2 99 ABAP|GATEWAY|ICMAN|IGS GRAY"}},
		{"scenarios/sap-system-java/a18a203d-4f2f-4d21-b9a5-e300a9c5eeee_sap_system_discovery.json", []string{"NWJ 2 80 J2EE|IGS GREEN", "NWJ 2 81 GATEWAY|MESSAGESERVER|ENQUE GREEN"}},
		{"scenarios/single-hana-single-app/c4914bd4-efa3-553a-9a52-e9b562e210e5_sap_system_discovery.json", []string{"PRD 1 00 HDB|HDB_WORKER GREEN"}},
		{"scenarios/single-hana-single-app/e77ab524-c4e4-5381-bb59-5af8639d52a4_sap_system_discovery.json", []string{"HA1 2 00 MESSAGESERVER|ENQUE GREEN", "HA1 2 01 ABAP|GATEWAY|ICMAN|IGS GREEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			systems, err := DecodeSAPSystems(sapFixture(t, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(SAPSystemDiscovery, sapFixture(t, tt.path)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := []string{}
			for _, s := range systems {
				if len(s.Instances) == 0 {
					got = append(got, fmt.Sprintf("%s %d -", s.SID, s.Type))
				}
				for _, i := range s.Instances {
					nr, ok := i.Number()
					if !ok {
						t.Errorf("%s %s: no instance number", s.SID, i.Name)
					}
					sr := i.Replication()
					replication := ""
					if sr.Role != "" {
						replication = sr.Role + "/" + sr.Status
					}
					got = append(got, strings.TrimSpace(fmt.Sprintf("%s %d %s %s %s %s", s.SID, s.Type, nr, i.Features(), i.Status(), replication)))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestSAPSystemDatabaseLink(t *testing.T) {
	app, err := DecodeSAPSystems(sapFixture(t, "scenarios/single-hana-single-app/e77ab524-c4e4-5381-bb59-5af8639d52a4_sap_system_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := app[0].DatabaseTenant(); got != "PRD" {
		t.Errorf("tenant %q, want PRD (dbs/hdb/dbname)", got)
	}
	if got := app[0].DatabaseAddress(); got != "10.0.1.10" {
		t.Errorf("address %q", got)
	}
	java, err := DecodeSAPSystems(sapFixture(t, "scenarios/sap-system-java/a18a203d-4f2f-4d21-b9a5-e300a9c5eeee_sap_system_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := java[0].DatabaseTenant(); got != "HTJ" {
		t.Errorf("Java tenant %q, want HTJ (j2ee/dbname)", got)
	}
	if got := java[0].DatabaseAddress(); got != "10.17.0.4" {
		t.Errorf("Java address %q: DBAddress (resolved) wins over SAPDBHOST", got)
	}
	db, err := DecodeSAPSystems(sapFixture(t, "discovery/sap_system_discovery_database_multi_tenant.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := db[0].Tenants(); !slices.Equal(got, []string{"HS6", "S4TENANT"}) {
		t.Errorf("tenants %v", got)
	}
	if db[0].ID != "bf970e0404d21abf439a45bff0e6daa9" {
		t.Errorf("id %q", db[0].ID)
	}
	primary, err := DecodeSAPSystems(sapFixture(t, "scenarios/hana-scale-up-angi/851a4dd3-9693-44c3-a40b-b32d22872e74_sap_system_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := SystemReplicationInfo{Role: "Primary", Status: "ACTIVE", Site: "WDF", Mode: "PRIMARY"}
	if got := primary[0].Instances[0].Replication(); got != want {
		t.Errorf("replication %+v, want %+v", got, want)
	}
}

func TestDecodeSAPSystemsErrorsNameTheField(t *testing.T) {
	tests := []struct {
		payload, field, says string
	}{
		{`{"SID": "HA1"}`, "", "not a valid payload"},
		{`[{"SID": "HA1", "Type": "2"}]`, "[0].Type", "must be a JSON int"},
		{`[{"SID": "HA1", "Type": 7}]`, "[0].Type", "got 7"},
		{`[{"SID": "", "Type": 1, "Instances": [{"Name": "HDB00"}]}]`, "[0].SID", "SID is required"},
		{`[{"SID": "PRD", "Type": 1}, {"SID": "HA1", "Type": 2, "Instances": [{"Name": "D0x"}]}]`, "[1].Instances[0].Name", "two-digit instance number"},
		{`[{"SID": "HA1", "Type": 2, "Instances": [{"Name": "D02", "SAPControl": {"Instances": [{"instanceNr": "2"}]}}]}]`, "[0].Instances.SAPControl.Instances.instanceNr", "must be a JSON int"},
	}
	for _, tt := range tests {
		_, err := DecodeSAPSystems([]byte(tt.payload))
		if err == nil {
			t.Errorf("%s: accepted", tt.payload)
			continue
		}
		if !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: error %q does not say %q", tt.payload, err, tt.says)
		}
		fe, ok := errors.AsType[*FieldError](err)
		if tt.field == "" {
			if ok {
				t.Errorf("%s: names field %q", tt.payload, fe.Field())
			}
			continue
		}
		if !ok || fe.Field() != tt.field {
			t.Errorf("%s: error %v names %v, want %s", tt.payload, err, fe, tt.field)
		}
	}
}
