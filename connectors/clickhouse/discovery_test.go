package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// entityEvent wraps an entity state in an event of its aggregate.
func entityEvent(eventID string, state *fleetv1.AggregateState, payload func(*fleetv1.Event)) *fleetv1.Event {
	var typ, id string
	var version uint64
	switch {
	case state.GetCluster() != nil:
		typ, id, version = EntityCluster, state.GetCluster().GetId(), state.GetCluster().GetVersion()
	case state.GetSapSystem() != nil:
		typ, id, version = EntitySapSystem, state.GetSapSystem().GetId(), state.GetSapSystem().GetVersion()
	default:
		typ, id, version = EntityDatabase, state.GetDatabase().GetId(), state.GetDatabase().GetVersion()
	}
	ev := &fleetv1.Event{EventId: eventID, AggregateType: typ, AggregateId: id, Version: version,
		OccurredAt: timestamppb.New(epoch.Add(time.Duration(version) * time.Minute)), State: state}
	if payload == nil {
		// Any payload: the sink projects the state, whatever happened.
		payload = func(ev *fleetv1.Event) {
			ev.Payload = &fleetv1.Event_HostRegistered{HostRegistered: &fleetv1.HostRegistered{}}
		}
	}
	payload(ev)
	return ev
}

func clusterState(id, name, typ, health string, version uint64, hosts ...string) *fleetv1.AggregateState {
	c := &fleetv1.Cluster{Id: id, Name: name, Type: typ, Health: health, Version: version,
		RegisteredAt: timestamppb.New(epoch), UpdatedAt: timestamppb.New(epoch.Add(time.Duration(version) * time.Minute))}
	for _, h := range hosts {
		c.Hosts = append(c.Hosts, &fleetv1.ClusterHost{HostId: h, Name: "node-" + h, Online: true})
	}
	return &fleetv1.AggregateState{State: &fleetv1.AggregateState_Cluster{Cluster: c}}
}

func sapState(id, sid, typ, health, databaseID string, version uint64, hosts ...string) *fleetv1.AggregateState {
	s := &fleetv1.SapSystem{Id: id, Sid: sid, Type: typ, Health: health, DatabaseId: databaseID, Version: version}
	for i, h := range hosts {
		s.ApplicationInstances = append(s.ApplicationInstances, &fleetv1.ApplicationInstance{HostId: h, InstanceNumber: fmt.Sprintf("%02d", i), Health: health})
	}
	return &fleetv1.AggregateState{State: &fleetv1.AggregateState_SapSystem{SapSystem: s}}
}

func databaseState(id, sid, health string, version uint64, hosts ...string) *fleetv1.AggregateState {
	d := &fleetv1.Database{Id: id, Sid: sid, Health: health, Version: version}
	for i, h := range hosts {
		d.Instances = append(d.Instances, &fleetv1.DatabaseInstance{HostId: h, InstanceNumber: fmt.Sprintf("%02d", i), Health: health})
	}
	return &fleetv1.AggregateState{State: &fleetv1.AggregateState_Database{Database: d}}
}

// writeEntities projects events and inserts their entity rows the way the
// sink does, without Kafka.
func writeEntities(t *testing.T, conn driver.Conn, db string, events ...*fleetv1.Event) {
	t.Helper()
	byTable := map[string][]*entityRow{}
	for _, e := range events {
		value, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		p, err := project(value)
		if err != nil {
			t.Fatal(err)
		}
		if p.entity != nil {
			byTable[p.entity.table] = append(byTable[p.entity.table], p.entity)
		}
	}
	for name, rows := range byTable {
		if err := insert(context.Background(), conn, fmt.Sprintf(entityInserts[name], db+"."+name), entityValues(name, rows)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateReappliesAddColumn(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	// A crash between applying and recording: every migration runs again.
	if err := conn.Exec(ctx, "DROP TABLE "+db+".schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, conn, db, testLogger(t)); err != nil {
		t.Fatalf("migrations applied a second time: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = 'hosts' AND name IN ('provider', 'deregistered')", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("hosts has %d of the columns provider, deregistered", n)
	}
}

func TestSinkProjectsDiscoveryEntities(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	c := newCluster(t)
	events := []*fleetv1.Event{
		entityEvent("c1-1", clusterState("c1", "hana_cluster", "hana_scale_up", "unknown", 1, "h2"), nil),
		entityEvent("c1-2", clusterState("c1", "hana_cluster", "hana_scale_up", "passing", 2, "h2", "h1"), nil),
		entityEvent("s1-1", sapState("s1", "NWP", "abap", "warning", "d1", 1, "h3", "h3", "h1"), nil),
		entityEvent("d1-1", databaseState("d1", "HDP", "passing", 1, "h1", "h2"), nil),
		// A rejection carries the unchanged state: it writes no row.
		entityEvent("d1-rej", databaseState("d1", "HDP", "critical", 1, "h1"), func(ev *fleetv1.Event) {
			ev.Payload = &fleetv1.Event_CommandRejected{CommandRejected: &fleetv1.CommandRejected{Command: "RegisterDatabaseInstance", Reason: "x"}}
		}),
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	stop := c.runSink(t, conn, db, m)
	c.produceEvents(t, events...)
	c.waitCaughtUp(t)
	stop()
	// Delivered again (a replay): still one row per entity, same state.
	c.produceEvents(t, events...)
	replay := c.topics.Group("replay")
	c.runSink(t, conn, db, NewMetrics(nil), func(o *SinkOptions) { o.Group = replay })
	waitGroupCaughtUp(t, c, replay)
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(events)) {
		t.Errorf("events FINAL = %d, want %d", n, len(events))
	}
	for _, tbl := range []string{"clusters", "sap_systems", "databases"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+"."+tbl+" FINAL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s FINAL has %d rows, want 1", tbl, n)
		}
	}

	cl, err := GetCluster(ctx, conn, db, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if cl.GetVersion() != 2 || cl.GetHealth() != "passing" || len(cl.GetHosts()) != 2 {
		t.Fatalf("cluster c1 = %v, want version 2, passing, two hosts", cl)
	}
	var hosts []string
	var typ, health string
	if err := conn.QueryRow(ctx, "SELECT host_ids, type, health FROM "+db+".clusters FINAL WHERE id = 'c1'").Scan(&hosts, &typ, &health); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hosts, []string{"h1", "h2"}) || typ != "hana_scale_up" || health != "passing" {
		t.Errorf("cluster row: host_ids %v type %q health %q", hosts, typ, health)
	}
	var sid, databaseID string
	if err := conn.QueryRow(ctx, "SELECT sid, database_id, host_ids FROM "+db+".sap_systems FINAL WHERE id = 's1'").Scan(&sid, &databaseID, &hosts); err != nil {
		t.Fatal(err)
	}
	if sid != "NWP" || databaseID != "d1" || !slices.Equal(hosts, []string{"h1", "h3"}) {
		t.Errorf("sap system row: sid %q database %q host_ids %v", sid, databaseID, hosts)
	}
	d, err := GetDatabase(ctx, conn, db, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if d.GetHealth() != "passing" || len(d.GetInstances()) != 2 {
		t.Errorf("database d1 = %v: the rejection's state must not be projected", d)
	}
	if s, err := GetSapSystem(ctx, conn, db, "nope"); err != nil || s != nil {
		t.Errorf("unknown SAP system: %v, %v", s, err)
	}
}

// withDetails gives cluster i a provider and SIDs: HANA SID H<i%3> and SAP
// instance SID H<i%6> (the same as the HANA one for some).
func withDetails(st *fleetv1.AggregateState, i int) *fleetv1.AggregateState {
	st.GetCluster().Details = &fleetv1.ClusterDetails{Provider: []string{"aws", "azure"}[i%2],
		HanaSids: []string{fmt.Sprintf("H%02d", i%3)}, SapInstanceSids: []string{fmt.Sprintf("H%02d", i%6)}}
	return st
}

// landscape writes 30 clusters, 30 SAP systems and 30 databases with
// varied fields, a second version of some, and a late stale copy.
func landscape(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, db := database(t, true)
	healths := []string{"passing", "warning", "critical", "unknown"}
	clusterTypes := []string{"hana_scale_up", "hana_scale_out", "ascs_ers"}
	sapTypes := []string{"abap", "j2ee"}
	var v1, v2 []*fleetv1.Event
	for i := range 30 {
		health := healths[i%4]
		host := fmt.Sprintf("h%02d", i%5)
		v1 = append(v1,
			entityEvent(fmt.Sprintf("c%02d-1", i), withDetails(clusterState(fmt.Sprintf("c%02d", i), "cl", clusterTypes[i%3], health, 1, host), i), nil),
			entityEvent(fmt.Sprintf("s%02d-1", i), sapState(fmt.Sprintf("s%02d", i), fmt.Sprintf("S%02d", i%6), sapTypes[i%2], health, fmt.Sprintf("d%02d", i%10), 1, host), nil),
			entityEvent(fmt.Sprintf("d%02d-1", i), databaseState(fmt.Sprintf("d%02d", i), fmt.Sprintf("H%02d", i%3), health, 1, host), nil))
		if i%7 == 0 {
			// Later versions: the cluster is deregistered, the database critical.
			cs := withDetails(clusterState(fmt.Sprintf("c%02d", i), "cl", clusterTypes[i%3], health, 2), i)
			cs.GetCluster().Deregistered = true
			v2 = append(v2,
				entityEvent(fmt.Sprintf("c%02d-2", i), cs, nil),
				entityEvent(fmt.Sprintf("d%02d-2", i), databaseState(fmt.Sprintf("d%02d", i), fmt.Sprintf("H%02d", i%3), "critical", 2, host), nil))
		}
	}
	writeEntities(t, conn, db, v1...)
	writeEntities(t, conn, db, v2...)
	writeEntities(t, conn, db, v1[0], v1[2]) // stale copies of c00 and d00 arrive late
	return conn, db
}

// ids pages through a listing and returns the ids, checking the pages.
func ids[T interface{ GetId() string }](t *testing.T, list func(pageSize int, after string) ([]T, string, error), pageSize int) []string {
	t.Helper()
	var out []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		page, next, err := list(pageSize, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > pageSize || next != "" && len(page) != pageSize {
			t.Fatalf("page of %d with next %q, page size %d", len(page), next, pageSize)
		}
		for _, e := range page {
			out = append(out, e.GetId())
		}
		if next == "" {
			return out
		}
		after = next
	}
}

func expect(prefix string, pick func(i int) bool) []string {
	var out []string
	for i := range 30 {
		if pick(i) {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
	}
	return out
}

func TestListDiscoveryFilters(t *testing.T) {
	ctx := context.Background()
	conn, db := landscape(t)
	healths := []string{"passing", "warning", "critical", "unknown"}
	dbHealth := func(i int) string {
		if i%7 == 0 {
			return "critical"
		}
		return healths[i%4]
	}
	clusters := func(f DiscoveryFilter) func(int, string) ([]*fleetv1.Cluster, string, error) {
		return func(n int, after string) ([]*fleetv1.Cluster, string, error) {
			return ListClusters(ctx, conn, db, f, n, after)
		}
	}
	saps := func(f DiscoveryFilter) func(int, string) ([]*fleetv1.SapSystem, string, error) {
		return func(n int, after string) ([]*fleetv1.SapSystem, string, error) {
			return ListSapSystems(ctx, conn, db, f, n, after)
		}
	}
	dbs := func(f DiscoveryFilter) func(int, string) ([]*fleetv1.Database, string, error) {
		return func(n int, after string) ([]*fleetv1.Database, string, error) {
			return ListDatabases(ctx, conn, db, f, n, after)
		}
	}
	cases := []struct {
		name string
		got  func(pageSize int) []string
		want []string
	}{
		{"clusters", func(n int) []string { return ids(t, clusters(DiscoveryFilter{}), n) }, expect("c", func(i int) bool { return i%7 != 0 })},
		{"clusters with deregistered", func(n int) []string { return ids(t, clusters(DiscoveryFilter{IncludeDeregistered: true}), n) }, expect("c", func(int) bool { return true })},
		{"clusters by health", func(n int) []string { return ids(t, clusters(DiscoveryFilter{Health: "warning"}), n) }, expect("c", func(i int) bool { return i%7 != 0 && i%4 == 1 })},
		{"clusters by type", func(n int) []string { return ids(t, clusters(DiscoveryFilter{Type: "ascs_ers"}), n) }, expect("c", func(i int) bool { return i%7 != 0 && i%3 == 2 })},
		{"clusters by host", func(n int) []string { return ids(t, clusters(DiscoveryFilter{HostID: "h03"}), n) }, expect("c", func(i int) bool { return i%7 != 0 && i%5 == 3 })},
		{"clusters by sid", func(n int) []string { return ids(t, clusters(DiscoveryFilter{SID: "h02"}), n) }, expect("c", func(i int) bool { return i%7 != 0 && (i%3 == 2 || i%6 == 2) })},
		{"clusters by provider", func(n int) []string { return ids(t, clusters(DiscoveryFilter{Provider: "azure"}), n) }, expect("c", func(i int) bool { return i%7 != 0 && i%2 == 1 })},
		{"sap systems by sid", func(n int) []string { return ids(t, saps(DiscoveryFilter{SID: "s04"}), n) }, expect("s", func(i int) bool { return i%6 == 4 })},
		{"sap systems by type and health", func(n int) []string { return ids(t, saps(DiscoveryFilter{Type: "j2ee", Health: "critical"}), n) }, expect("s", func(i int) bool { return i%2 == 1 && i%4 == 2 })},
		{"sap systems by database", func(n int) []string { return ids(t, saps(DiscoveryFilter{DatabaseID: "d03"}), n) }, expect("s", func(i int) bool { return i%10 == 3 })},
		{"databases by health", func(n int) []string { return ids(t, dbs(DiscoveryFilter{Health: "critical"}), n) }, expect("d", func(i int) bool { return dbHealth(i) == "critical" })},
		{"databases by sid", func(n int) []string { return ids(t, dbs(DiscoveryFilter{SID: "H01"}), n) }, expect("d", func(i int) bool { return i%3 == 1 })},
		{"nothing", func(n int) []string { return ids(t, dbs(DiscoveryFilter{SID: "XYZ"}), n) }, nil},
	}
	for _, c := range cases {
		for _, size := range []int{1, 4, 100} {
			if got := c.got(size); !slices.Equal(got, c.want) {
				t.Errorf("%s (page size %d) = %v, want %v", c.name, size, got, c.want)
			}
		}
	}
	if _, _, err := ListDatabases(ctx, conn, db, DiscoveryFilter{Type: "hana"}, 10, ""); err == nil || !strings.Contains(err.Error(), "no type") {
		t.Errorf("databases by type: %v, want an error", err)
	}
	if _, _, err := ListDatabases(ctx, conn, db, DiscoveryFilter{Provider: "aws"}, 10, ""); err == nil {
		t.Error("databases by provider: no error")
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	conn, db := landscape(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(AddTag(ctx, conn, db, EntityCluster, "c01", "prod"))
	must(AddTag(ctx, conn, db, EntityCluster, "c01", "prod")) // again: no change
	must(AddTag(ctx, conn, db, EntityCluster, "c01", "eu-west"))
	must(AddTag(ctx, conn, db, EntityCluster, "c02", "prod"))
	must(AddTag(ctx, conn, db, EntityCluster, "c03", "prod"))
	must(RemoveTag(ctx, conn, db, EntityCluster, "c03", "prod"))
	must(RemoveTag(ctx, conn, db, EntityCluster, "c04", "never-set"))
	// The same value on another entity type is another tag.
	must(AddTag(ctx, conn, db, EntitySapSystem, "c02", "prod"))

	tags, err := TagsOf(ctx, conn, db, EntityCluster, []string{"c01", "c02", "c03", "c04"})
	must(err)
	want := map[string][]string{"c01": {"eu-west", "prod"}, "c02": {"prod"}}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Fatalf("TagsOf = %v, want %v", tags, want)
	}
	list := func(tags ...string) []string {
		return ids(t, func(n int, after string) ([]*fleetv1.Cluster, string, error) {
			return ListClusters(ctx, conn, db, DiscoveryFilter{Tags: tags}, n, after)
		}, 1)
	}
	if got := list("prod"); !slices.Equal(got, []string{"c01", "c02"}) {
		t.Errorf("clusters tagged prod = %v", got)
	}
	if got := list("prod", "eu-west"); !slices.Equal(got, []string{"c01"}) {
		t.Errorf("clusters tagged prod and eu-west = %v", got)
	}
	// Removed, then set again: the newest write wins.
	must(RemoveTag(ctx, conn, db, EntityCluster, "c01", "prod"))
	if got := list("prod"); !slices.Equal(got, []string{"c02"}) {
		t.Errorf("clusters tagged prod after removing c01's = %v", got)
	}
	must(AddTag(ctx, conn, db, EntityCluster, "c01", "prod"))
	if got := list("prod"); !slices.Equal(got, []string{"c01", "c02"}) {
		t.Errorf("clusters tagged prod after tagging c01 again = %v", got)
	}
	var rows uint64
	must(conn.QueryRow(ctx, "SELECT count() FROM "+db+".tags FINAL").Scan(&rows))
	if rows != 6 {
		t.Errorf("tags FINAL has %d rows, want 6 (c01 x2, c02, c03 removed, c04 removed, sap system c02)", rows)
	}
}

func TestListHostsByTag(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	var events []*fleetv1.Event
	var tagged, taggedCritical []string
	for i := range 20 {
		id := fmt.Sprintf("host-%02d", i)
		health := "passing"
		if i%2 == 0 {
			health = "critical"
		}
		h := hostState(id, "n"+id, "SLES", "15-SP5", health, 1)
		if i%4 == 0 {
			h.Provider = &fleetv1.HostProvider{Provider: "gcp"}
		}
		h.Deregistered = i == 19
		events = append(events, registered(h, id+"-1"))
		if i%3 == 0 {
			tagged = append(tagged, id)
			if health == "critical" {
				taggedCritical = append(taggedCritical, id)
			}
			if err := AddTag(ctx, conn, db, EntityHost, id, "sap"); err != nil {
				t.Fatal(err)
			}
		}
		if i%5 == 0 {
			// Another entity type with the same id and tag is not this host.
			if err := AddTag(ctx, conn, db, EntityCluster, id, "sap"); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeEvents(t, conn, db, events...)
	list := func(f HostFilter) []string {
		return ids(t, func(n int, after string) ([]*fleetv1.Host, string, error) {
			return ListHosts(ctx, conn, db, f, n, after)
		}, 2)
	}
	if got := list(HostFilter{Tags: []string{"sap"}}); !slices.Equal(got, tagged) {
		t.Errorf("hosts tagged sap = %v, want %v", got, tagged)
	}
	if got := list(HostFilter{Tags: []string{"sap"}, Health: "critical"}); !slices.Equal(got, taggedCritical) {
		t.Errorf("hosts tagged sap and critical = %v, want %v", got, taggedCritical)
	}
	if got := list(HostFilter{Provider: "gcp", Tags: []string{"sap"}}); !slices.Equal(got, []string{"host-00", "host-12"}) {
		t.Errorf("gcp hosts tagged sap = %v", got)
	}
	if got := list(HostFilter{}); len(got) != 19 || slices.Contains(got, "host-19") {
		t.Errorf("hosts = %v, want all but the deregistered host-19", got)
	}
	if got := list(HostFilter{IncludeDeregistered: true, HostnamePrefix: "nhost-1"}); len(got) != 10 {
		t.Errorf("hosts nhost-1* with deregistered = %v, want 10", got)
	}
	if got := list(HostFilter{Tags: []string{"sap", "other"}}); len(got) != 0 {
		t.Errorf("hosts tagged sap and other = %v, want none", got)
	}
}

// waitGroupCaughtUp waits until group has committed the end of every
// partition of the events topic.
func waitGroupCaughtUp(t *testing.T, c *cluster, group string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := c.adm.ListEndOffsets(ctx, c.topics.Events)
		if err != nil {
			t.Fatal(err)
		}
		offs, _ := c.adm.FetchOffsets(ctx, group)
		behind := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			if at, ok := offs.Lookup(c.topics.Events, o.Partition); !ok || at.Err != nil || at.At < o.Offset {
				behind++
			}
		})
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still behind on %d partitions after 30s", group, behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
