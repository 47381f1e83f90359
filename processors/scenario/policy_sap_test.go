package scenario

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/database"
	sapsystem "github.com/fleetstream/fleetstream/processors/sap_system"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// sapRun feeds fixtures, in order, to one agent's scenario detection and
// returns the commands of each.
func sapRun(t *testing.T, agent string, paths ...string) [][]*fleetv1.Command {
	t.Helper()
	var state *fleetv1.ScenarioState
	var out [][]*fleetv1.Command
	for i, p := range paths {
		d := discovery(payload.SAPSystemDiscovery, fixture(t, p), collectedAt.Add(time.Duration(i)*time.Minute))
		d.AgentId = agent
		res, err := detect(state, d, origin{topic: "fleet.discoveries.v1", offset: int64(i)})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if res.state != nil {
			state = res.state
		}
		for _, c := range res.commands {
			if c.GetAggregateId() == "" || c.GetCommandId() == "" || c.GetIssuedAt() == nil {
				t.Errorf("%s: command envelope %v", p, c)
			}
		}
		out = append(out, res.commands)
	}
	return out
}

// describe summarises a SAP command: "<name> <number> <health> <replication>".
func describe(c *fleetv1.Command) string {
	switch b := c.GetBody().(type) {
	case *fleetv1.Command_RegisterDatabaseInstance:
		i := b.RegisterDatabaseInstance.GetInstance()
		return strings.TrimSpace("RegisterDatabaseInstance " + i.GetInstanceNumber() + " " + i.GetHealth() + " " + i.GetSystemReplication())
	case *fleetv1.Command_MarkDatabaseInstanceAbsent:
		return "MarkDatabaseInstanceAbsent " + b.MarkDatabaseInstanceAbsent.GetInstanceNumber()
	case *fleetv1.Command_RegisterApplicationInstance:
		return "RegisterApplicationInstance " + b.RegisterApplicationInstance.GetInstanceNumber() + " " + b.RegisterApplicationInstance.GetHealth()
	case *fleetv1.Command_MarkApplicationInstanceAbsent:
		return "MarkApplicationInstanceAbsent " + b.MarkApplicationInstanceAbsent.GetInstanceNumber()
	}
	return "unexpected " + c.String()
}

func describeAll(cs []*fleetv1.Command) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, describe(c))
	}
	return out
}

// The hana-database-details scenario: one host's secondary HANA instance
// changes colour, then is replaced by instance 11; the primary's host
// reports its instance.
func TestSapPolicyHanaDatabaseDetails(t *testing.T) {
	const dir = "scenarios/hana-database-details/"
	const agent = "0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4"
	got := sapRun(t, agent,
		dir+agent+"_sap_system_discovery_GREEN.json",
		dir+agent+"_sap_system_discovery_GREEN.json",
		dir+agent+"_sap_system_discovery_YELLOW.json",
		dir+agent+"_sap_system_discovery_RED.json",
		dir+agent+"_sap_system_discovery_GRAY.json",
		dir+agent+"_sap_system_discovery_new.json",
		dir+agent+"_sap_system_discovery_secondary_stopped.json",
	)
	want := [][]string{
		{"RegisterDatabaseInstance 10 passing Secondary"},
		{}, // the same payload again
		{"RegisterDatabaseInstance 10 warning Secondary"},
		{"RegisterDatabaseInstance 10 critical Secondary"},
		{"RegisterDatabaseInstance 10 unknown Secondary"},
		{"RegisterDatabaseInstance 11 unknown Secondary", "MarkDatabaseInstanceAbsent 10"},
		{"RegisterDatabaseInstance 10 unknown", "MarkDatabaseInstanceAbsent 11"},
	}
	for i := range want {
		if g := describeAll(got[i]); !slices.Equal(g, want[i]) {
			t.Errorf("discovery %d: %q, want %q", i, g, want[i])
		}
	}
	first := got[0][0]
	wantID := database.ID("fd44c254ccb14331e54015c720c7a1f2", "HDD")
	reg := first.GetRegisterDatabaseInstance()
	wantInstance := &fleetv1.DatabaseInstance{
		HostId: agent, InstanceNumber: "10", Health: "passing", SystemReplication: "Secondary",
		Features: "HDB|HDB_WORKER", Site: "WDF", ReplicationMode: "SYNC",
	}
	if first.GetAggregateId() != wantID || reg.GetSid() != "HDD" || !slices.Equal(reg.GetTenants(), []string{"HDD"}) || !proto.Equal(reg.GetInstance(), wantInstance) {
		t.Errorf("first command %v, want database %s with %v", first, wantID, wantInstance)
	}
	// Both sites compute the same database id.
	primary := sapRun(t, "13e8c25c-3180-5a9a-95c8-51ec38e50cfc", dir+"13e8c25c-3180-5a9a-95c8-51ec38e50cfc_sap_system_discovery_secondary_stopped.json")
	if g := describeAll(primary[0]); !slices.Equal(g, []string{"RegisterDatabaseInstance 10 passing Primary"}) || primary[0][0].GetAggregateId() != wantID {
		t.Errorf("primary site: %q for %s", g, primary[0][0].GetAggregateId())
	}
	if s := primary[0][0].GetRegisterDatabaseInstance().GetInstance().GetSystemReplicationStatus(); s != "ERROR" {
		t.Errorf("primary's replication status %q, want ERROR", s)
	}
}

// The sap-system-details scenario: an application server whose instance
// changes colour, then is replaced by instance 99.
func TestSapPolicySapSystemDetails(t *testing.T) {
	const dir = "scenarios/sap-system-details/"
	const agent = "1b0e9297-97dd-55d6-9874-8efde4d84c90"
	got := sapRun(t, agent,
		dir+agent+"_sap_system_discovery_GREEN.json",
		dir+agent+"_sap_system_discovery_YELLOW.json",
		dir+agent+"_sap_system_discovery_RED.json",
		dir+agent+"_sap_system_discovery_GRAY.json",
		dir+agent+"_sap_system_discovery_new.json",
	)
	want := [][]string{
		{"RegisterApplicationInstance 02 passing"},
		{"RegisterApplicationInstance 02 warning"},
		{"RegisterApplicationInstance 02 critical"},
		{"RegisterApplicationInstance 02 unknown"},
		{"RegisterApplicationInstance 99 unknown", "MarkApplicationInstanceAbsent 02"},
	}
	for i := range want {
		if g := describeAll(got[i]); !slices.Equal(g, want[i]) {
			t.Errorf("discovery %d: %q, want %q", i, g, want[i])
		}
	}
	first := got[0][0]
	want0 := &fleetv1.RegisterApplicationInstance{
		Sid: "NWD", HostId: agent, InstanceNumber: "02", Features: "ABAP|GATEWAY|ICMAN|IGS", Health: "passing",
		Tenant: "HDD", DbAddress: "10.100.1.13", Name: "D02", Hostname: "sapnwdaas1",
	}
	if first.GetAggregateId() != sapsystem.ID("NWD", "HDD") || !proto.Equal(first.GetRegisterApplicationInstance(), want0) {
		t.Errorf("first command %v, want %v", first, want0)
	}
}

// The sap-system-java scenario: one host runs the J2EE instance and the
// central services (message server) of NWJ.
func TestSapPolicySapSystemJava(t *testing.T) {
	got := sapRun(t, "a18a203d-4f2f-4d21-b9a5-e300a9c5eeee", "scenarios/sap-system-java/a18a203d-4f2f-4d21-b9a5-e300a9c5eeee_sap_system_discovery.json")
	if len(got[0]) != 2 {
		t.Fatalf("commands %v", got[0])
	}
	features := map[string]string{}
	for _, c := range got[0] {
		r := c.GetRegisterApplicationInstance()
		if c.GetAggregateId() != sapsystem.ID("NWJ", "HTJ") || r.GetTenant() != "HTJ" || r.GetDbAddress() != "10.17.0.4" {
			t.Errorf("command %v", c)
		}
		features[r.GetInstanceNumber()] = r.GetFeatures()
	}
	if features["80"] != "J2EE|IGS" || features["81"] != "GATEWAY|MESSAGESERVER|ENQUE" {
		t.Errorf("features %v", features)
	}
}

func TestSapPolicyIgnoresDiagnosticsAgents(t *testing.T) {
	got := sapRun(t, fixtureAgent, "discovery/sap_system_discovery_application_diagnostics.json")
	if g := describeAll(got[0]); !slices.Equal(g, []string{"RegisterApplicationInstance 02 passing"}) {
		t.Errorf("commands %q: the diagnostics agent DAA must be ignored", g)
	}
}

// A host that stops reporting its systems marks every instance absent;
// systems without instances send nothing.
func TestSapPolicyEmptiedHost(t *testing.T) {
	got := sapRun(t, fixtureAgent,
		"discovery/sap_system_discovery_application_diagnostics.json",
		"discovery/sap_system_discovery_empty.json",
		"discovery/sap_system_discovery_empty_application_instances.json",
	)
	if g := describeAll(got[1]); !slices.Equal(g, []string{"MarkApplicationInstanceAbsent 02"}) {
		t.Errorf("emptied: %q", g)
	}
	if got[1][0].GetMarkApplicationInstanceAbsent().GetHostId() != fixtureAgent {
		t.Errorf("absent %v", got[1][0])
	}
	if len(got[2]) != 0 {
		t.Errorf("a system without instances sent %v", got[2])
	}
}

// Unchanged facts in new bytes send nothing; a different host address
// (from the host discovery) resends the database instance.
func TestSapPolicyUnchangedFactsSendNothing(t *testing.T) {
	raw := fixture(t, "discovery/sap_system_discovery_database.json")
	state := new(fleetv1.ScenarioState)
	commands, _, err := sapSystemPolicy(state, discovery(payload.SAPSystemDiscovery, raw, collectedAt))
	if err != nil || len(commands) != 1 {
		t.Fatalf("first: %v, %v", commands, err)
	}
	reencoded := modifiedList(t, raw)
	commands, out, err := sapSystemPolicy(state, discovery(payload.SAPSystemDiscovery, reencoded, collectedAt))
	if err != nil || len(commands) != 0 || out != outcomeNoDifference {
		t.Fatalf("re-encoded: %v, %s, %v", commands, out, err)
	}
	state.Host = &fleetv1.HostDetails{IpAddresses: []string{"10.74.1.12"}}
	commands, _, err = sapSystemPolicy(state, discovery(payload.SAPSystemDiscovery, reencoded, collectedAt))
	if err != nil || len(commands) != 1 || !slices.Equal(commands[0].GetRegisterDatabaseInstance().GetInstance().GetIpAddresses(), []string{"10.74.1.12"}) {
		t.Fatalf("after the host's addresses: %v, %v", commands, err)
	}
}

func TestSapPolicyMalformedIsRejected(t *testing.T) {
	state := new(fleetv1.ScenarioState)
	_, _, err := sapSystemPolicy(state, discovery(payload.SAPSystemDiscovery, []byte(`[{"SID": "PRD", "Type": "1"}]`), collectedAt))
	if rejectionReason(err) != reasonMalformedPayload || !strings.Contains(err.Error(), "[0].Type") {
		t.Fatalf("err %v", err)
	}
}

// modifiedList re-encodes a JSON list: other bytes, same facts.
func modifiedList(t *testing.T, raw []byte) []byte {
	t.Helper()
	var v []any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
