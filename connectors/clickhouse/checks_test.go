package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// checksT0 is when the checks history of these tests starts.
var checksT0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// resultChanged is a continuous evaluation event: check's result on a
// target changed to after (removed when after is "") at t0+at.
func resultChanged(target string, version uint64, check, group, before, after string, at time.Duration) *fleetv1.Event {
	when := timestamppb.New(checksT0.Add(at))
	e := &fleetv1.CheckResultChanged{CheckId: check, Before: before, After: after}
	if after != "" {
		e.Result = &fleetv1.CheckResult{CheckId: check, EntityId: target, EntityType: "host", Group: group, Severity: "critical",
			Result: after, Messages: []string{check + " is " + after}, EvaluatedAt: when, Version: version}
	}
	return &fleetv1.Event{EventId: fmt.Sprintf("checks/%s/%d", target, version), AggregateType: "checks", AggregateId: target,
		Version: version, OccurredAt: when, Payload: &fleetv1.Event_CheckResultChanged{CheckResultChanged: e},
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Checks{Checks: &fleetv1.ChecksStatus{Id: target, TargetType: "host", Version: version}}}}
}

// executionEvents are the requested and completed events of execution id
// on cluster group, at t0+at, with one critical result of check C3.
func executionEvents(group, id string, version uint64, at time.Duration) []*fleetv1.Event {
	req := timestamppb.New(checksT0.Add(at))
	done := timestamppb.New(checksT0.Add(at + 10*time.Second))
	running := &fleetv1.Execution{Id: id, GroupId: group, TargetType: "cluster", Status: "running", Targets: []string{"h1", "h2"},
		CheckIds: []string{"C3"}, RequestedAt: req, Actor: "ops"}
	completed := proto.CloneOf(running)
	completed.Status, completed.CompletedAt, completed.Result = "completed", done, "critical"
	completed.Answered, completed.TimedOut = []string{"h1"}, []string{"h2"}
	completed.CheckResults = []*fleetv1.CheckResult{{CheckId: "C3", EntityId: group, EntityType: "cluster", Group: "G3",
		Severity: "critical", Result: "critical", EvaluatedAt: done, ExecutionId: id}}
	ev := func(v uint64, at *timestamppb.Timestamp, e *fleetv1.Execution, payload func(*fleetv1.Event)) *fleetv1.Event {
		out := &fleetv1.Event{EventId: fmt.Sprintf("checks_execution/%s/%d", group, v), AggregateType: "checks_execution",
			AggregateId: group, Version: v, OccurredAt: at,
			State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_CheckExecutions{CheckExecutions: &fleetv1.ExecutionGroup{GroupId: group, Version: v}}}}
		payload(out)
		return out
	}
	return []*fleetv1.Event{
		ev(version, req, running, func(e *fleetv1.Event) {
			e.Payload = &fleetv1.Event_ExecutionRequested{ExecutionRequested: &fleetv1.ExecutionRequested{Execution: running}}
		}),
		ev(version+1, done, completed, func(e *fleetv1.Event) {
			e.Payload = &fleetv1.Event_ExecutionCompleted{ExecutionCompleted: &fleetv1.ExecutionCompleted{Execution: completed}}
		}),
	}
}

// checksHistory: h1's C1 passes, then fails at 1h; h2's C1 warns from
// 30m; h2's C2 passes from 10m and has no result any more from 2h05m;
// execution x1 on cluster c1 at 20m, x2 at 40m (still running).
func checksHistory() []*fleetv1.Event {
	evs := []*fleetv1.Event{
		resultChanged("h1", 1, "C1", "G1", "", "passing", 0),
		resultChanged("h1", 2, "C1", "G1", "passing", "critical", time.Hour),
		resultChanged("h2", 1, "C2", "G2", "", "passing", 10*time.Minute),
		resultChanged("h2", 2, "C1", "G1", "", "warning", 30*time.Minute),
		resultChanged("h2", 3, "C2", "G2", "passing", "", 2*time.Hour+5*time.Minute),
	}
	evs = append(evs, executionEvents("c1", "x1", 1, 20*time.Minute)...)
	return append(evs, executionEvents("c1", "x2", 3, 40*time.Minute)[0])
}

// writeChecks projects events and inserts their checks rows the way the
// sink does, without Kafka.
func writeChecks(t *testing.T, conn driver.Conn, db string, events ...*fleetv1.Event) {
	t.Helper()
	b := newBatch()
	for _, e := range events {
		c, err := checksOf(e)
		if err != nil {
			t.Fatal(err)
		}
		b.addChecks(c)
	}
	s, err := NewSink(SinkOptions{Seeds: []string{"unused:9092"}, Topics: kafka.DefaultTopics(), Conn: conn, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.flushChecks(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestSinkProjectsChecks(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	c := newCluster(t)
	events := checksHistory()
	stop := c.runSink(t, conn, db, NewMetrics(nil))
	c.produceEvents(t, events...)
	c.waitCaughtUp(t)
	stop()
	// Delivered again (a replay by another group): every row collapses.
	c.produceEvents(t, events...)
	replay := c.topics.Group("replay")
	c.runSink(t, conn, db, NewMetrics(nil), func(o *SinkOptions) { o.Group = replay })
	waitGroupCaughtUp(t, c, replay)

	count := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Five continuous rows and the one result of x1.
	if n := count("SELECT count() FROM " + db + ".check_results FINAL"); n != 6 {
		t.Errorf("check_results FINAL has %d rows, want 6", n)
	}
	if n := count("SELECT count() FROM " + db + ".check_executions FINAL"); n != 2 {
		t.Errorf("check_executions FINAL has %d rows, want 2", n)
	}
	var status, result, group string
	var completedAt time.Time
	if err := conn.QueryRow(ctx, "SELECT status, result, group_id, completed_at FROM "+db+".check_executions FINAL WHERE id = 'x1'").
		Scan(&status, &result, &group, &completedAt); err != nil {
		t.Fatal(err)
	}
	if status != "completed" || result != "critical" || group != "c1" || !completedAt.Equal(checksT0.Add(20*time.Minute+10*time.Second)) {
		t.Errorf("x1 row: %s %s %s %s; the completed version must win over the requested one", status, result, group, completedAt)
	}
	var removed string
	var typ string
	if err := conn.QueryRow(ctx, "SELECT result, entity_type FROM "+db+".check_results FINAL WHERE entity_id = 'h2' AND check_id = 'C2' AND version = 3").
		Scan(&removed, &typ); err != nil {
		t.Fatal(err)
	}
	if removed != "" || typ != "host" {
		t.Errorf("removed result row: result %q entity_type %q, want \"\" and host", removed, typ)
	}
	var execEntity, execType string
	if err := conn.QueryRow(ctx, "SELECT entity_id, entity_type FROM "+db+".check_results FINAL WHERE execution_id = 'x1'").Scan(&execEntity, &execType); err != nil {
		t.Fatal(err)
	}
	if execEntity != "c1" || execType != "cluster" {
		t.Errorf("execution result row: %s %s", execEntity, execType)
	}
}

func TestListCheckResultsAndExecutions(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	writeChecks(t, conn, db, checksHistory()...)
	// A redelivered batch changes nothing.
	writeChecks(t, conn, db, checksHistory()...)

	list := func(f ResultFilter, pageSize int) []string {
		t.Helper()
		var out []string
		after := ""
		for range 20 {
			page, next, err := ListResults(ctx, conn, db, f, pageSize, after)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				out = append(out, fmt.Sprintf("%s/%s/%s%s", r.GetEntityId(), r.GetCheckId(), r.GetResult(), r.GetExecutionId()))
			}
			if next == "" {
				return out
			}
			after = next
		}
		t.Fatalf("%+v: more than 20 pages", f)
		return nil
	}
	for _, c := range []struct {
		name string
		f    ResultFilter
		want []string
	}{
		{"everything", ResultFilter{}, []string{"c1/C3/criticalx1", "h1/C1/passing", "h1/C1/critical", "h2/C1/warning", "h2/C2/passing", "h2/C2/"}},
		{"current", ResultFilter{Current: true}, []string{"h1/C1/critical", "h2/C1/warning"}},
		{"current of one entity", ResultFilter{Current: true, EntityID: "h1"}, []string{"h1/C1/critical"}},
		{"current critical", ResultFilter{Current: true, Result: "critical"}, []string{"h1/C1/critical"}},
		{"one check's history", ResultFilter{CheckID: "C1"}, []string{"h1/C1/passing", "h1/C1/critical", "h2/C1/warning"}},
		{"one entity", ResultFilter{EntityID: "h2", Source: SourceContinuous}, []string{"h2/C1/warning", "h2/C2/passing", "h2/C2/"}},
		{"executions", ResultFilter{Source: SourceExecution}, []string{"c1/C3/criticalx1"}},
		{"one execution", ResultFilter{ExecutionID: "x1"}, []string{"c1/C3/criticalx1"}},
		{"a window", ResultFilter{Since: checksT0.Add(30 * time.Minute), Until: checksT0.Add(2 * time.Hour)}, []string{"h1/C1/critical", "h2/C1/warning"}},
	} {
		for _, size := range []int{1, 2, 100} {
			if got := list(c.f, size); !slices.Equal(got, c.want) {
				t.Errorf("%s, pages of %d: %v, want %v", c.name, size, got, c.want)
			}
		}
	}
	if _, _, err := ListResults(ctx, conn, db, ResultFilter{Source: "cron"}, 10, ""); err == nil || !strings.Contains(err.Error(), "source must be") {
		t.Errorf("bad source: %v", err)
	}

	execs := func(f ExecutionFilter, pageSize int) []string {
		t.Helper()
		var out []string
		after := ""
		for range 10 {
			page, next, err := ListExecutions(ctx, conn, db, f, pageSize, after)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				out = append(out, e.GetId()+"/"+e.GetStatus())
			}
			if next == "" {
				return out
			}
			after = next
		}
		t.Fatal("more than 10 pages")
		return nil
	}
	for _, size := range []int{1, 10} {
		if got := execs(ExecutionFilter{GroupID: "c1"}, size); !slices.Equal(got, []string{"x2/running", "x1/completed"}) {
			t.Errorf("executions of c1, pages of %d: %v, want newest first", size, got)
		}
	}
	if got := execs(ExecutionFilter{Status: "completed", Result: "critical"}, 10); !slices.Equal(got, []string{"x1/completed"}) {
		t.Errorf("completed critical executions: %v", got)
	}
	if got := execs(ExecutionFilter{GroupID: "h1"}, 10); len(got) != 0 {
		t.Errorf("executions of h1: %v", got)
	}
	x1, err := GetExecution(ctx, conn, db, "x1")
	if err != nil {
		t.Fatal(err)
	}
	if x1.GetStatus() != "completed" || len(x1.GetCheckResults()) != 1 || !slices.Equal(x1.GetTimedOut(), []string{"h2"}) {
		t.Errorf("x1 = %v", x1)
	}
	if e, err := GetExecution(ctx, conn, db, "nope"); e != nil || err != nil {
		t.Errorf("unknown execution: %v %v", e, err)
	}
}

// counts renders a bucket as "C1:p1w1c0e0 ..." for checks, then "|", then
// groups.
func counts(b *fleetv1.ComplianceBucket) string {
	var parts []string
	for _, c := range b.GetChecks() {
		parts = append(parts, fmt.Sprintf("%s:p%dw%dc%de%d", c.GetCheckId(), c.GetPassing(), c.GetWarning(), c.GetCritical(), c.GetError()))
	}
	parts = append(parts, "|")
	for _, c := range b.GetGroups() {
		parts = append(parts, fmt.Sprintf("%s:p%dw%dc%de%d", c.GetGroup(), c.GetPassing(), c.GetWarning(), c.GetCritical(), c.GetError()))
	}
	return strings.Join(parts, " ")
}

func TestCompliance(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	writeChecks(t, conn, db, checksHistory()...)
	for _, c := range []struct {
		name string
		f    ComplianceFilter
		want []string
	}{
		{"hourly", ComplianceFilter{Since: checksT0, Until: checksT0.Add(3 * time.Hour), Bucket: time.Hour}, []string{
			"C1:p1w1c0e0 C2:p1w0c0e0 | G1:p1w1c0e0 G2:p1w0c0e0",
			"C1:p0w1c1e0 C2:p1w0c0e0 | G1:p0w1c1e0 G2:p1w0c0e0",
			"C1:p0w1c1e0 | G1:p0w1c1e0",
		}},
		// The state at since comes from before the window; the last
		// bucket is cut at until.
		{"from the middle", ComplianceFilter{Since: checksT0.Add(90 * time.Minute), Until: checksT0.Add(140 * time.Minute), Bucket: 30 * time.Minute}, []string{
			"C1:p0w1c1e0 C2:p1w0c0e0 | G1:p0w1c1e0 G2:p1w0c0e0",
			"C1:p0w1c1e0 | G1:p0w1c1e0",
		}},
		{"one group", ComplianceFilter{Group: "G2", Since: checksT0, Until: checksT0.Add(3 * time.Hour), Bucket: time.Hour}, []string{
			"C2:p1w0c0e0 | G2:p1w0c0e0", "C2:p1w0c0e0 | G2:p1w0c0e0", "|",
		}},
		{"one check, before anything", ComplianceFilter{CheckID: "C1", Since: checksT0.Add(-2 * time.Hour), Until: checksT0.Add(time.Hour), Bucket: 90 * time.Minute}, []string{
			"|", "C1:p1w1c0e0 | G1:p1w1c0e0",
		}},
		{"clusters", ComplianceFilter{EntityType: "cluster", Since: checksT0, Until: checksT0.Add(time.Hour), Bucket: time.Hour}, []string{"|"}},
	} {
		buckets, err := GetCompliance(ctx, conn, db, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range buckets {
			got = append(got, counts(b))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		if last := buckets[len(buckets)-1]; !last.GetEnd().AsTime().Equal(c.f.Until) || !buckets[0].GetStart().AsTime().Equal(c.f.Since) {
			t.Errorf("%s: buckets from %s to %s", c.name, buckets[0].GetStart().AsTime(), last.GetEnd().AsTime())
		}
	}
	for _, f := range []ComplianceFilter{
		{Since: checksT0, Until: checksT0, Bucket: time.Hour},
		{Since: checksT0, Until: checksT0.Add(time.Hour), Bucket: time.Millisecond},
		{Since: checksT0, Until: checksT0.Add(1000 * time.Hour), Bucket: time.Hour},
	} {
		if _, err := GetCompliance(ctx, conn, db, f); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}
