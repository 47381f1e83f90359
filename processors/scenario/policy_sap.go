package scenario

import (
	"cmp"
	"slices"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/database"
	sapsystem "github.com/fleetstream/fleetstream/processors/sap_system"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// sapSystemPolicy turns the SAP systems a host reports into instance
// commands: RegisterDatabaseInstance / RegisterApplicationInstance for
// each instance whose command differs from the one last sent for it, and
// MarkDatabaseInstanceAbsent / MarkApplicationInstanceAbsent for each
// instance the host reported before and no longer does. Diagnostics agents
// (type 3) and systems of unknown type are not part of the landscape
// fleetstream models: they are ignored.
func sapSystemPolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	systems, err := payload.DecodeSAPSystems(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "sap_system_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	host := d.GetAgentId()
	var reported []sapReport
	for i := range systems {
		reported = append(reported, sapInstanceCommands(&systems[i], host, next.GetHost().GetIpAddresses())...)
	}
	reported = dedupe(reported)
	sent := make(map[sapInstanceKey]uint64, len(next.GetSapInstances()))
	for _, r := range next.GetSapInstances() {
		sent[keyOf(r)] = r.GetCommand()
	}
	var commands []*fleetv1.Command
	remembered := make([]*fleetv1.SapInstanceReport, 0, len(reported))
	for _, r := range reported {
		last, known := sent[keyOf(r.report)]
		delete(sent, keyOf(r.report))
		remembered = append(remembered, r.report)
		if !known || last != r.report.GetCommand() {
			commands = append(commands, r.command)
		}
	}
	for _, old := range next.GetSapInstances() {
		if _, gone := sent[keyOf(old)]; gone {
			commands = append(commands, absent(old, host))
		}
	}
	next.SapInstances = remembered
	if len(commands) == 0 {
		return nil, outcomeNoDifference, nil
	}
	return commands, outcomeCommands, nil
}

// sapReport is one instance's register command and what is remembered of it.
type sapReport struct {
	report  *fleetv1.SapInstanceReport
	command *fleetv1.Command
}

type sapInstanceKey struct {
	aggregateID string
	database    bool
	number      string
}

func keyOf(r *fleetv1.SapInstanceReport) sapInstanceKey {
	return sapInstanceKey{r.GetAggregateId(), r.GetDatabase(), r.GetInstanceNumber()}
}

// dedupe sorts reports by instance and keeps one per instance: the last,
// when a payload lists an instance twice.
func dedupe(reports []sapReport) []sapReport {
	slices.SortStableFunc(reports, func(a, b sapReport) int { return compareReports(a.report, b.report) })
	out := reports[:0]
	for _, r := range reports {
		if n := len(out); n > 0 && compareReports(out[n-1].report, r.report) == 0 {
			out[n-1] = r
			continue
		}
		out = append(out, r)
	}
	return out
}

func compareReports(a, b *fleetv1.SapInstanceReport) int {
	return cmp.Or(
		cmp.Compare(a.GetAggregateId(), b.GetAggregateId()),
		compareBool(a.GetDatabase(), b.GetDatabase()),
		cmp.Compare(a.GetInstanceNumber(), b.GetInstanceNumber()),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// sapInstanceCommands are the register commands of the instances of s on
// host, whose addresses are ips.
func sapInstanceCommands(s *payload.SAPSystem, host string, ips []string) []sapReport {
	if s.Type != payload.SAPSystemDatabase && s.Type != payload.SAPSystemApplication {
		return nil
	}
	var out []sapReport
	for i := range s.Instances {
		inst := &s.Instances[i]
		nr, _ := inst.Number() // DecodeSAPSystems refuses instances without one
		var c *fleetv1.Command
		if s.Type == payload.SAPSystemDatabase {
			sr := inst.Replication()
			c = &fleetv1.Command{
				AggregateId: database.ID(s.ID, s.SID),
				Body: &fleetv1.Command_RegisterDatabaseInstance{RegisterDatabaseInstance: &fleetv1.RegisterDatabaseInstance{
					Sid:     s.SID,
					Tenants: s.Tenants(),
					Instance: &fleetv1.DatabaseInstance{
						HostId:                  host,
						InstanceNumber:          nr,
						Health:                  database.InstanceHealth(inst.Status()),
						SystemReplication:       sr.Role,
						Features:                inst.Features(),
						SystemReplicationStatus: sr.Status,
						Site:                    sr.Site,
						ReplicationMode:         sr.Mode,
						IpAddresses:             slices.Clone(ips),
					},
				}},
			}
		} else {
			tenant := s.DatabaseTenant()
			c = &fleetv1.Command{
				AggregateId: sapsystem.ID(s.SID, tenant),
				Body: &fleetv1.Command_RegisterApplicationInstance{RegisterApplicationInstance: &fleetv1.RegisterApplicationInstance{
					Sid:            s.SID,
					HostId:         host,
					InstanceNumber: nr,
					Features:       inst.Features(),
					Health:         database.InstanceHealth(inst.Status()),
					Tenant:         tenant,
					DbAddress:      s.DatabaseAddress(),
					Name:           inst.Name,
					Hostname:       inst.Hostname(),
				}},
			}
		}
		out = append(out, sapReport{
			report: &fleetv1.SapInstanceReport{
				AggregateId:    c.GetAggregateId(),
				Database:       s.Type == payload.SAPSystemDatabase,
				InstanceNumber: nr,
				Command:        commandHash(c),
			},
			command: c,
		})
	}
	return out
}

// commandHash fingerprints a command's body: equal bodies, equal hashes.
func commandHash(c *fleetv1.Command) uint64 {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		// Only a message that is not valid UTF-8 fails; such a command
		// must be sent, never taken for an unchanged one.
		return 0
	}
	return xxhash.Sum64(b)
}

// absent is the command that removes an instance host no longer reports.
func absent(r *fleetv1.SapInstanceReport, host string) *fleetv1.Command {
	if r.GetDatabase() {
		return &fleetv1.Command{AggregateId: r.GetAggregateId(), Body: &fleetv1.Command_MarkDatabaseInstanceAbsent{
			MarkDatabaseInstanceAbsent: &fleetv1.MarkDatabaseInstanceAbsent{HostId: host, InstanceNumber: r.GetInstanceNumber()},
		}}
	}
	return &fleetv1.Command{AggregateId: r.GetAggregateId(), Body: &fleetv1.Command_MarkApplicationInstanceAbsent{
		MarkApplicationInstanceAbsent: &fleetv1.MarkApplicationInstanceAbsent{HostId: host, InstanceNumber: r.GetInstanceNumber()},
	}}
}
