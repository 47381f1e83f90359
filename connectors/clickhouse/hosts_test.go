package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// fleetOf250 writes 250 hosts, then a second version of every tenth one
// (critical now) in a later insert, then a stale copy of a first version
// (a redelivery arriving late). It returns the current state by id.
func fleetOf250(t *testing.T) (map[string]*fleetv1.Host, func(HostFilter, int) []*fleetv1.Host) {
	t.Helper()
	ctx := context.Background()
	conn, db := database(t, true)
	oses := [][2]string{{"SLES", "15-SP5"}, {"SLES", "15-SP4"}, {"Ubuntu", "22.04"}, {"sles", "15-SP5"}}
	healths := []string{"passing", "warning", "unknown"}
	current := map[string]*fleetv1.Host{}
	var v1, v2 []*fleetv1.Event
	for i := range 250 {
		// Ids in an order unrelated to the hostnames.
		id := fmt.Sprintf("%08x-host", uint32(i)*2654435761)
		var hostname string
		switch {
		case i < 50:
			hostname = fmt.Sprintf("web_%03d", i)
		case i < 100:
			hostname = fmt.Sprintf("webX%03d", i) // "web_" must not match: '_' is literal
		case i < 110:
			hostname = fmt.Sprintf("100%%-db%d", i)
		case i < 120:
			hostname = fmt.Sprintf("100x-db%d", i) // "100%" must not match
		default:
			hostname = fmt.Sprintf("App%03d", i)
		}
		os := oses[i%len(oses)]
		h := hostState(id, hostname, os[0], os[1], healths[i%len(healths)], 1)
		v1 = append(v1, registered(h, id+"-1"))
		current[id] = h
		if i%10 == 0 {
			h2 := hostState(id, hostname, os[0], os[1], "critical", 2)
			v2 = append(v2, detailsUpdated(h2, id+"-2", "health"))
			current[id] = h2
		}
	}
	writeEvents(t, conn, db, v1...)
	writeEvents(t, conn, db, v2...)
	writeEvents(t, conn, db, v1[0]) // host 0 is at version 2: this must not win
	list := func(f HostFilter, pageSize int) []*fleetv1.Host {
		t.Helper()
		var all []*fleetv1.Host
		after := ""
		for pages := 0; ; pages++ {
			if pages > 300 {
				t.Fatalf("%+v: pagination does not end", f)
			}
			page, next, err := ListHosts(ctx, conn, db, f, pageSize, after)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > pageSize {
				t.Fatalf("%+v: page of %d hosts, page size %d", f, len(page), pageSize)
			}
			if next != "" && len(page) != pageSize {
				t.Fatalf("%+v: short page of %d with a next token", f, len(page))
			}
			all = append(all, page...)
			if next == "" {
				return all
			}
			after = next
		}
	}
	return current, list
}

func TestListHostsPagesThroughEveryHostOnce(t *testing.T) {
	current, list := fleetOf250(t)
	for _, pageSize := range []int{7, 50, 250, 1000} {
		hosts := list(HostFilter{}, pageSize)
		seen := map[string]int{}
		var ids []string
		for _, h := range hosts {
			seen[h.GetId()]++
			ids = append(ids, h.GetId())
			if want := current[h.GetId()]; h.GetVersion() != want.GetVersion() || h.GetHealth() != want.GetHealth() {
				t.Errorf("page size %d: host %s at version %d (%s), want %d (%s)", pageSize, h.GetId(), h.GetVersion(),
					h.GetHealth(), want.GetVersion(), want.GetHealth())
			}
		}
		if len(seen) != len(current) || len(hosts) != len(current) {
			t.Fatalf("page size %d: %d hosts listed, %d distinct; want each of %d once", pageSize, len(hosts), len(seen), len(current))
		}
		if !slices.IsSorted(ids) {
			t.Errorf("page size %d: hosts not ordered by id", pageSize)
		}
	}
}

func TestListHostsFilters(t *testing.T) {
	current, list := fleetOf250(t)
	count := func(pred func(*fleetv1.Host) bool) int {
		n := 0
		for _, h := range current {
			if pred(h) {
				n++
			}
		}
		return n
	}
	sles155 := func(h *fleetv1.Host) bool {
		d := h.GetDetails()
		return strings.EqualFold(d.GetOsName(), "sles") && d.GetOsVersion() == "15-SP5"
	}
	for _, tc := range []struct {
		filter HostFilter
		want   int
		match  func(*fleetv1.Host) bool
	}{
		{HostFilter{HostnamePrefix: "web_"}, 50, func(h *fleetv1.Host) bool { return strings.HasPrefix(h.GetDetails().GetHostname(), "web_") }},
		{HostFilter{HostnamePrefix: "WEB_0"}, 50, func(h *fleetv1.Host) bool { return strings.HasPrefix(h.GetDetails().GetHostname(), "web_0") }},
		{HostFilter{HostnamePrefix: "web"}, 100, func(h *fleetv1.Host) bool {
			return strings.HasPrefix(strings.ToLower(h.GetDetails().GetHostname()), "web")
		}},
		{HostFilter{HostnamePrefix: "100%"}, 10, func(h *fleetv1.Host) bool { return strings.HasPrefix(h.GetDetails().GetHostname(), "100%") }},
		{HostFilter{HostnamePrefix: "app12"}, 10, func(h *fleetv1.Host) bool { return strings.HasPrefix(h.GetDetails().GetHostname(), "App12") }},
		{HostFilter{HostnamePrefix: "nothing"}, 0, nil},
		{HostFilter{OS: "sles"}, count(func(h *fleetv1.Host) bool { return strings.EqualFold(h.GetDetails().GetOsName(), "sles") }), nil},
		{HostFilter{OS: "15-sp5"}, count(sles155), nil},
		{HostFilter{OS: "SLES 15-SP5"}, count(sles155), sles155},
		{HostFilter{OS: "  sles   15-sp5 "}, count(sles155), sles155},
		{HostFilter{OS: "ubuntu"}, count(func(h *fleetv1.Host) bool { return h.GetDetails().GetOsName() == "Ubuntu" }), nil},
		{HostFilter{OS: "15"}, 0, nil},
		{HostFilter{OS: "SLES 15"}, 0, nil},
		// Health is the current one: 25 hosts went critical at version 2,
		// none of them is still listed under its version 1 health.
		{HostFilter{Health: "critical"}, 25, func(h *fleetv1.Host) bool { return h.GetVersion() == 2 }},
		{HostFilter{Health: "passing"}, count(func(h *fleetv1.Host) bool { return h.GetHealth() == "passing" }), nil},
		{HostFilter{HostnamePrefix: "web_", OS: "SLES 15-SP5", Health: "critical"}, count(func(h *fleetv1.Host) bool {
			return strings.HasPrefix(h.GetDetails().GetHostname(), "web_") && sles155(h) && h.GetHealth() == "critical"
		}), nil},
	} {
		got := list(tc.filter, 9)
		if len(got) != tc.want {
			t.Errorf("%+v: %d hosts, want %d", tc.filter, len(got), tc.want)
		}
		for _, h := range got {
			if tc.filter.Health != "" && h.GetHealth() != tc.filter.Health {
				t.Errorf("%+v: listed %s with health %s", tc.filter, h.GetId(), h.GetHealth())
			}
			if tc.match != nil && !tc.match(h) {
				t.Errorf("%+v: listed %s (%s, %s %s)", tc.filter, h.GetId(), h.GetDetails().GetHostname(),
					h.GetDetails().GetOsName(), h.GetDetails().GetOsVersion())
			}
		}
	}
	// The counts above must not be vacuous.
	if n := count(sles155); n == 0 || n == len(current) {
		t.Fatalf("fixture has %d SLES 15-SP5 hosts of %d", n, len(current))
	}
}

func TestListHostsRejectsBadInput(t *testing.T) {
	conn, db := database(t, true)
	writeEvents(t, conn, db, registered(hostState("h1", "x1", "SLES", "15-SP5", "passing", 1), "e1"))
	if _, _, err := ListHosts(context.Background(), conn, db, HostFilter{}, 0, ""); err == nil {
		t.Error("page size 0 accepted")
	}
	if _, _, err := ListHosts(context.Background(), conn, "db; DROP TABLE x", HostFilter{}, 10, ""); err == nil {
		t.Error("database name with SQL accepted")
	}
	// Quotes and backslashes in filters are data, not SQL.
	for _, f := range []HostFilter{{HostnamePrefix: `x' OR 1=1 --\`}, {OS: `' OR 1=1 OR '`}, {Health: `\' OR 1=1 --`}} {
		hosts, _, err := ListHosts(context.Background(), conn, db, f, 10, "")
		if err != nil || len(hosts) != 0 {
			t.Errorf("hostile filter %+v: %d hosts, %v", f, len(hosts), err)
		}
	}
	if hosts, _, err := ListHosts(context.Background(), conn, db, HostFilter{HostnamePrefix: "X"}, 10, ""); err != nil || len(hosts) != 1 {
		t.Errorf("control query: %d hosts, %v; want 1", len(hosts), err)
	}
}
