package sapsystem

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/database"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

var topics = kafka.DefaultTopics()

var (
	systemTable     = goka.GroupTable(goka.Group(topics.Group(kafka.SapSystemGroup)))
	dependencyTable = goka.GroupTable(ReactionGroup(topics))
)

type sapHarness = aggregatetest.Harness[*Metrics]

func runSystems(t *testing.T) *sapHarness {
	return aggregatetest.Run(t, topics, topics.SapSystemCommands, NewProcessor, NewMetrics(prometheus.NewRegistry()))
}

func tableSystem(h *sapHarness, id string) *fleetv1.SapSystem {
	v, _ := h.Tester.TableValue(systemTable, id).(*fleetv1.SapSystem)
	return v
}

func eventNames(es []*fleetv1.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, aggregate.EventName(e))
	}
	return out
}

// reactionHarness is the database reaction on its own goka tester: the
// aggregate's events topic has another codec than the reaction reads it
// with, so the two cannot share one; the test carries records between.
type reactionHarness struct {
	tt       *tester.Tester
	m        *ReactionMetrics
	commands *tester.QueueTracker
	dlq      *tester.QueueTracker
}

func runReaction(t *testing.T) *reactionHarness {
	t.Helper()
	tt := tester.New(t)
	m := NewReactionMetrics(prometheus.NewRegistry())
	proc, err := NewReaction(nil, topics, m, slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	aggregatetest.GoRun(t, proc.Run)
	return &reactionHarness{tt: tt, m: m, commands: tt.NewQueueTracker(topics.SapSystemCommands), dlq: tt.NewQueueTracker(topics.DLQ)}
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// command reads c as the reaction does, off the SAP system command topic.
func (r *reactionHarness) command(t *testing.T, c *fleetv1.Command) {
	t.Helper()
	r.tt.Consume(topics.SapSystemCommands, c.GetAggregateId(), marshal(t, c))
}

// event reads e as the reaction does, off the event store.
func (r *reactionHarness) event(t *testing.T, e *fleetv1.Event) {
	t.Helper()
	r.tt.Consume(topics.Events, e.GetAggregateId(), marshal(t, e))
}

// sent are the DatabaseAvailable commands the reaction sent since the last
// call (it reads back its own output on the command topic and ignores it).
func (r *reactionHarness) sent(t *testing.T) []*fleetv1.Command {
	t.Helper()
	var out []*fleetv1.Command
	for {
		key, raw, ok := r.commands.NextRaw()
		if !ok {
			return out
		}
		c := new(fleetv1.Command)
		if err := proto.Unmarshal(raw, c); err != nil || c.GetDatabaseAvailable() == nil {
			continue // what the test itself consumed
		}
		if key != c.GetAggregateId() {
			t.Errorf("command keyed %q for %q", key, c.GetAggregateId())
		}
		out = append(out, c)
	}
}

// fixtureDatabaseCommand is the RegisterDatabaseInstance the scenario
// policy makes of the fixture's HANA instance on its host.
func fixtureDatabaseCommand(t *testing.T) *fleetv1.Command {
	t.Helper()
	s := fixtureSystems(t, fixtureDB)[0]
	inst := s.Instances[0]
	nr, _ := inst.Number()
	sr := inst.Replication()
	c := command(&fleetv1.RegisterHost{})
	c.AggregateId = database.ID(s.ID, s.SID)
	c.Body = &fleetv1.Command_RegisterDatabaseInstance{RegisterDatabaseInstance: &fleetv1.RegisterDatabaseInstance{
		Sid: s.SID, Tenants: s.Tenants(),
		Instance: &fleetv1.DatabaseInstance{
			HostId: fixtureDBHost, InstanceNumber: nr, Health: database.InstanceHealth(inst.Status()),
			SystemReplication: sr.Role, Features: inst.Features(), SystemReplicationStatus: sr.Status,
			Site: sr.Site, ReplicationMode: sr.Mode, IpAddresses: []string{"10.0.1.10"},
		},
	}}
	if s.Type != payload.SAPSystemDatabase {
		t.Fatalf("%s is no database", fixtureDB)
	}
	return c
}

// The single-hana-single-app landscape through the processors as
// production builds them: the application server's instances reach the
// aggregate before their database exists and are held (not readable); the
// database's events reach the reaction, which tells the system its
// database; the system registers with both instances. Then a redelivery,
// a move, a lost heartbeat and the instances leaving.
func TestSapSystemGroupWithTheDatabaseReaction(t *testing.T) {
	h := runSystems(t)
	view, err := NewView(nil, topics, goka.WithViewTester(h.Tester))
	if err != nil {
		t.Fatal(err)
	}
	aggregatetest.GoRun(t, view.Run)
	reader := NewReader(view)
	r := runReaction(t)
	dbs := aggregatetest.Run(t, topics, topics.DatabaseCommands, database.NewProcessor, database.NewMetrics(prometheus.NewRegistry()))

	app := fixtureCommands(t, fixtureApp, fixtureAppHost)
	for _, c := range app {
		h.Send(t, c)
		r.command(t, c)
	}
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("held instances emitted %v", eventNames(evs))
	}
	if s := tableSystem(h, sysID); s == nil || len(s.GetApplicationInstances()) != 2 || s.GetRegisteredAt() != nil {
		t.Fatalf("held system %v", s)
	}
	if got, err := reader.Get(sysID); got != nil || err != nil {
		t.Fatalf("pending system readable: %v, %v", got, err)
	}
	if cs := r.sent(t); len(cs) != 0 {
		t.Fatalf("told before the database exists: %v", cs)
	}
	deps, _ := r.tt.TableValue(dependencyTable, "PRD").(*fleetv1.SapDatabaseDependencies)
	if len(deps.GetSapSystems()) != 1 || deps.GetSapSystems()[0].GetId() != sysID || deps.GetSapSystems()[0].GetDbAddress() != "10.0.1.10" {
		t.Fatalf("tenant PRD: %v", deps)
	}

	// The database registers; its events reach the reaction.
	dbs.Send(t, fixtureDatabaseCommand(t))
	dbEvents := dbs.Drain(t)
	if len(dbEvents) == 0 || dbEvents[0].GetDatabaseRegistered() == nil {
		t.Fatalf("database events %v", eventNames(dbEvents))
	}
	for _, e := range dbEvents {
		r.event(t, e)
	}
	told := r.sent(t)
	if len(told) != 1 || told[0].GetAggregateId() != sysID || told[0].GetDatabaseAvailable().GetDatabaseId() != fixtureDatabaseID(t) ||
		told[0].GetDatabaseAvailable().GetHealth() != database.HealthPassing {
		t.Fatalf("told %v", told)
	}

	h.Send(t, told[0])
	evs := h.Drain(t)
	if got := eventNames(evs); !slices.Equal(got, []string{"SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered"}) {
		t.Fatalf("registration emitted %v", got)
	}
	last := evs[2].GetState().GetSapSystem()
	if evs[2].GetVersion() != 3 || last.GetHealth() != database.HealthPassing || last.GetType() != "abap" {
		t.Fatalf("registered %v", evs[2])
	}
	if stored := tableSystem(h, sysID); !proto.Equal(stored, last) {
		t.Fatalf("table %v, want %v", stored, last)
	}
	if got, err := reader.Get(sysID); err != nil || !proto.Equal(got, last) {
		t.Fatalf("Get = %v, %v", got, err)
	}

	// Redeliveries: nothing.
	h.Send(t, told[0])
	h.Send(t, app[0])
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("redelivery emitted %v", eventNames(evs))
	}
	for _, e := range dbEvents {
		r.event(t, e)
	}
	if cs := r.sent(t); len(cs) != 0 {
		t.Fatalf("redelivered database events told %v", cs)
	}

	// The clustered ASCS moves.
	moved := proto.CloneOf(app[0])
	moved.CommandId = "move"
	moved.GetRegisterApplicationInstance().HostId = "h-other"
	h.Send(t, moved)
	evs = h.Drain(t)
	if len(evs) != 1 || evs[0].GetApplicationInstanceMoved().GetToHostId() != "h-other" || evs[0].GetApplicationInstanceMoved().GetFromHostId() != fixtureAppHost {
		t.Fatalf("move emitted %v", evs)
	}

	// The application server's host loses its heartbeat, then is back.
	h.Send(t, command(&fleetv1.MarkApplicationInstancesStale{HostId: fixtureAppHost, Stale: true}))
	if got := eventNames(h.Drain(t)); !slices.Equal(got, []string{"ApplicationInstanceStaleChanged"}) {
		t.Fatalf("stale emitted %v", got)
	}
	if s := tableSystem(h, sysID); !s.GetApplicationInstances()[1].GetStale() || s.GetHealth() != database.HealthPassing {
		t.Fatalf("stale system %v", s)
	}
	h.Send(t, command(&fleetv1.MarkApplicationInstancesStale{HostId: fixtureAppHost, Stale: false}))
	if got := eventNames(h.Drain(t)); !slices.Equal(got, []string{"ApplicationInstanceStaleChanged"}) {
		t.Fatalf("back in sync emitted %v", got)
	}

	// The instances leave: deregistered, then tombstoned; still readable.
	h.Send(t, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: fixtureAppHost, InstanceNumber: "01"}))
	if got := eventNames(h.Drain(t)); !slices.Equal(got, []string{"ApplicationInstanceMarkedAbsent", "SapSystemDeregistered"}) {
		t.Fatalf("absent emitted %v", got)
	}
	h.Send(t, command(&fleetv1.DeregisterApplicationInstances{HostId: "h-other"}))
	evs = h.Drain(t)
	if got := eventNames(evs); !slices.Equal(got, []string{"SapSystemTombstoned"}) {
		t.Fatalf("last instance leaving emitted %v", got)
	}
	if got, err := reader.Get(sysID); err != nil || !got.GetDeregistered() || !proto.Equal(got, evs[0].GetState().GetSapSystem()) {
		t.Fatalf("Get tombstoned = %v, %v", got, err)
	}

	for name, want := range map[[2]string]float64{
		{"RegisterApplicationInstance", "accepted"}: 3, // two held, one move
		{"RegisterApplicationInstance", "noop"}:     1,
		{"DatabaseAvailable", "accepted"}:           1,
		{"DatabaseAvailable", "noop"}:               1,
	} {
		if got := testutil.ToFloat64(h.Metrics.Commands.WithLabelValues(name[0], name[1])); got != want {
			t.Errorf("%s %s counted %v, want %v", name[0], name[1], got, want)
		}
	}
	if got := testutil.ToFloat64(r.m.commands); got != 1 {
		t.Errorf("reaction commands counted %v", got)
	}
}

// Commands an unknown system does not take are rejected on the events
// topic and leave the table alone; a record that is no command is
// dead-lettered and the processor goes on.
func TestSapSystemGroupRejectsAndDeadLetters(t *testing.T) {
	h := runSystems(t)
	h.Send(t, dbAvailable(database.HealthPassing))
	evs := h.Drain(t)
	if len(evs) != 1 || evs[0].GetCommandRejected().GetCommand() != "DatabaseAvailable" || evs[0].GetVersion() != 0 {
		t.Fatalf("events %v", evs)
	}
	if v := h.Tester.TableValue(systemTable, sysID); v != nil {
		t.Fatalf("a rejection wrote the table: %v", v)
	}

	h.Tester.Consume(topics.SapSystemCommands, sysID, []byte("not a command"))
	if _, key, _, ok := h.DLQ.NextRawWithHeaders(); !ok || key != sysID {
		t.Fatalf("not dead-lettered (%q)", key)
	}
	if got := testutil.ToFloat64(h.Metrics.DeadLetters.WithLabelValues("not_protobuf")); got != 1 {
		t.Errorf("dead letters %v", got)
	}
	h.Send(t, instance("h1", "00", "MESSAGESERVER|ABAP", "passing"))
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("held instance emitted %v", eventNames(evs))
	}
	if s := tableSystem(h, sysID); s == nil || len(s.GetApplicationInstances()) != 1 {
		t.Fatalf("after a bad record: %v", s)
	}
}

// The reaction, database first: the system is told as soon as its
// registration names the tenant, and again on each health change; what it
// cannot read is skipped (events, commands) or dead-lettered (its loop).
func TestReactionDatabaseFirst(t *testing.T) {
	r := runReaction(t)
	db := prdDatabase(3, database.HealthPassing)
	r.event(t, databaseEvent("e1", db))
	if cs := r.sent(t); len(cs) != 0 {
		t.Fatalf("told %v", cs)
	}
	for _, tenant := range []string{"PRD", "S4T"} {
		if d, _ := r.tt.TableValue(dependencyTable, tenant).(*fleetv1.SapDatabaseDependencies); len(d.GetDatabases()) != 1 {
			t.Errorf("tenant %s: %v", tenant, d)
		}
	}

	reg := instance("h1", "00", dialog, "passing")
	r.command(t, reg)
	told := r.sent(t)
	if len(told) != 1 || told[0].GetAggregateId() != sysID || told[0].GetDatabaseAvailable().GetDatabaseId() != "db-prd" ||
		told[0].GetCommandId() != reactionCommandID(reg.GetCommandId(), sysID) || told[0].GetIssuedAt().AsTime() != reg.GetIssuedAt().AsTime() {
		t.Fatalf("told %v", told)
	}
	r.command(t, instance("h1", "01", ascs, "passing")) // the same tenant and address
	if cs := r.sent(t); len(cs) != 0 {
		t.Fatalf("told again %v", cs)
	}
	r.event(t, databaseEvent("e2", prdDatabase(4, database.HealthCritical)))
	if cs := r.sent(t); len(cs) != 1 || cs[0].GetDatabaseAvailable().GetHealth() != database.HealthCritical {
		t.Fatalf("health change told %v", cs)
	}
	r.event(t, databaseEvent("e1", db)) // older version, late
	if cs := r.sent(t); len(cs) != 0 {
		t.Fatalf("a late event told %v", cs)
	}

	r.tt.Consume(topics.Events, "x", []byte("not an event"))
	r.tt.Consume(topics.SapSystemCommands, "x", []byte("not a command"))
	mismatched := instance("h1", "00", dialog, "passing")
	r.tt.Consume(topics.SapSystemCommands, "another key", marshal(t, mismatched))
	if cs := r.sent(t); len(cs) != 0 {
		t.Fatalf("told %v", cs)
	}
	if got := testutil.ToFloat64(r.m.inputs.WithLabelValues(inputEvent, "ignored")); got != 1 {
		t.Errorf("ignored events %v", got)
	}
	if got := testutil.ToFloat64(r.m.inputs.WithLabelValues(inputCommand, "ignored")); got < 2 {
		t.Errorf("ignored commands %v", got)
	}
	r.tt.Consume(kafka.LoopTopic(topics.Group(kafka.SapDatabasesGroup)), "PRD", []byte("not an update"))
	if _, key, _, ok := r.dlq.NextRawWithHeaders(); !ok || key != "PRD" {
		t.Fatalf("loop record not dead-lettered (%q)", key)
	}
	if got := testutil.ToFloat64(r.m.inputs.WithLabelValues(inputLoop, "dead_letter")); got != 1 {
		t.Errorf("dead letters %v", got)
	}
}
