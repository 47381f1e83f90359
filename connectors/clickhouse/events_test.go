package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestListEventsPagesOldestFirstWithoutDuplicates(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	var events []*fleetv1.Event
	for v := uint64(1); v <= 20; v++ {
		h := hostState("host-e", "echo", "SLES", "15-SP5", "passing", v)
		events = append(events, detailsUpdated(h, fmt.Sprintf("e-%02d", v), "agent_version"))
		if v%5 == 0 { // rejections keep the version: several events share it
			events = append(events, rejected(h, fmt.Sprintf("e-%02d-r1", v), "stale"), rejected(h, fmt.Sprintf("e-%02d-r2", v), "stale"))
		}
	}
	other := hostState("host-f", "foxtrot", "SLES", "15-SP5", "passing", 1)
	events = append(events, registered(other, "f-01"))
	writeEvents(t, conn, db, events...)
	writeEvents(t, conn, db, events[3:12]...) // redelivered

	wantIDs := []string{}
	for _, e := range events {
		if e.GetAggregateId() == "host-e" {
			wantIDs = append(wantIDs, e.GetEventId()) // built in (version, event id) order
		}
	}
	var got []EventRow
	var after *EventCursor
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("pagination does not end")
		}
		page, next, err := ListEvents(ctx, conn, db, "host", "host-e", 4, after)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == nil {
			break
		}
		if len(page) != 4 {
			t.Fatalf("short page (%d) with a next cursor", len(page))
		}
		after = next
	}
	if len(got) != len(wantIDs) {
		t.Fatalf("%d events listed, want %d", len(got), len(wantIDs))
	}
	for i, e := range got {
		if e.EventID != wantIDs[i] {
			t.Fatalf("event %d is %s, want %s", i, e.EventID, wantIDs[i])
		}
	}
	if n, err := CountEvents(ctx, conn, db, "host", "host-e"); err != nil || n != uint64(len(wantIDs)) {
		t.Fatalf("CountEvents = %d, %v; want %d", n, err, len(wantIDs))
	}
	if n, err := CountEvents(ctx, conn, db, "host", "nobody"); err != nil || n != 0 {
		t.Fatalf("CountEvents of an unknown host = %d, %v", n, err)
	}
	if _, _, err := ListEvents(ctx, conn, db, "host", "host-e", 0, nil); err == nil {
		t.Error("page size 0 accepted")
	}
}

func TestDateTimeClamps(t *testing.T) {
	for _, tc := range []struct {
		in   *timestamppb.Timestamp
		want int64
	}{
		{nil, 0},
		{timestamppb.New(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)), 0},
		{timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix()},
		{timestamppb.New(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)), 1<<32 - 1},
	} {
		if got := dateTime(tc.in).Unix(); got != tc.want {
			t.Errorf("dateTime(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
