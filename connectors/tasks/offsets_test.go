package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCommitOffsetStopsAtTheLowestUnfinishedRecord(t *testing.T) {
	o := newOffsets()
	o.assign(map[string][]int32{"q": {0, 1}})
	var tk []*ticket
	for off := range int64(5) {
		tk = append(tk, o.take(&kgo.Record{Topic: "q", Partition: 0, Offset: 10 + off}))
	}
	other := o.take(&kgo.Record{Topic: "q", Partition: 1, Offset: 7})
	if o.take(&kgo.Record{Topic: "q", Partition: 2, Offset: 0}) != nil {
		t.Fatal("took a record of a partition that is not assigned")
	}
	commitAt := func() int64 {
		if eo, ok := o.uncommitted()["q"][0]; ok {
			return eo.Offset
		}
		return -1
	}
	steps := []struct {
		finish int
		want   int64
	}{
		{2, -1}, {3, -1}, // later records done, 10 still running: nothing
		{0, 11},
		{1, 14}, // 11, 12, 13 all done now
		{4, 15},
	}
	for _, s := range steps {
		o.finish(tk[s.finish])
		if got := commitAt(); got != s.want {
			t.Fatalf("after finishing offset %d the commit offset is %d, want %d", 10+s.finish, got, s.want)
		}
	}
	o.finish(tk[4]) // twice is harmless
	o.committed(o.uncommitted())
	if m := o.uncommitted(); len(m["q"]) != 0 {
		t.Errorf("after committing, still uncommitted: %v", m)
	}
	if !o.start(other) {
		t.Fatal("start refused on an assigned partition")
	}
	o.finish(other)
	if got := o.uncommitted()["q"][1].Offset; got != 8 {
		t.Errorf("partition 1 commit offset %d, want 8", got)
	}
}

func TestRevokeWaitsForStartedRecordsOnly(t *testing.T) {
	o := newOffsets()
	o.assign(map[string][]int32{"q": {0}})
	a := o.take(&kgo.Record{Topic: "q", Partition: 0, Offset: 0})
	b := o.take(&kgo.Record{Topic: "q", Partition: 0, Offset: 1})
	c := o.take(&kgo.Record{Topic: "q", Partition: 0, Offset: 2})
	o.start(a)
	o.start(b)
	o.finish(a)
	go func() {
		time.Sleep(50 * time.Millisecond)
		o.finish(b)
	}()
	start := time.Now()
	m := o.revoke(context.Background(), map[string][]int32{"q": {0}}, 5*time.Second)
	if time.Since(start) > 4*time.Second {
		t.Fatal("revoke waited for a record that never started")
	}
	if got := m["q"][0].Offset; got != 2 {
		t.Errorf("revoke commits offset %d, want 2 (0 and 1 finished, 2 never started)", got)
	}
	if o.start(c) {
		t.Error("a record of a revoked partition may still start")
	}
}

func TestPickerPolicies(t *testing.T) {
	all := [3]bool{true, true, true}
	strict := &picker{}
	if q := strict.pick([3]bool{false, true, true}); q != 1 {
		t.Errorf("strict picked %d with high empty, want normal (1)", q)
	}
	if q := strict.pick([3]bool{}); q != -1 {
		t.Errorf("picked %d from empty queues", q)
	}
	p, err := ParsePolicy("weighted:5,3,2")
	if err != nil {
		t.Fatal(err)
	}
	w := &picker{policy: p}
	var n [3]int
	for range 100 {
		n[w.pick(all)]++
	}
	if n != [3]int{50, 30, 20} {
		t.Errorf("weighted 5,3,2 over 100 picks gave %v", n)
	}
	// An empty queue's share goes to the others.
	n = [3]int{}
	for range 50 {
		n[w.pick([3]bool{false, true, true})]++
	}
	if n != [3]int{0, 30, 20} {
		t.Errorf("with high empty, 50 picks gave %v", n)
	}
	for _, bad := range []string{"fair", "weighted:1,2", "weighted:0,1,1", "weighted:a,b,c"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
	if s := p.String(); s != "weighted:5,3,2" {
		t.Errorf("String() = %q", s)
	}
}

func TestBackoffGrowsAndStaysWithinBounds(t *testing.T) {
	base, limit := 100*time.Millisecond, time.Second
	for n := uint32(1); n <= 8; n++ {
		full := min(base<<(n-1), limit)
		for range 50 {
			d := backoff(n, base, limit)
			if d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
			}
		}
	}
}
