package api

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// memHosts is a HostReader over a map, standing in for the goka view.
type memHosts map[string]*fleetv1.Host

func (m memHosts) Get(id string) (*fleetv1.Host, error) { return m[id], nil }

// memStore is a Store over slices, for the API-contract tests only: it
// pages by id (hosts) and by version (events) as the ClickHouse store does.
type memStore struct {
	hosts  []*fleetv1.Host // sorted by id
	events map[string][]*fleetv1.EventRecord
	// entered and block, when set, make ListHosts announce itself and then
	// wait (shutdown test).
	entered, block chan struct{}
	// err, when set, is returned by every call.
	err error
	// panics makes ListHosts panic.
	panics bool

	mu    sync.Mutex
	calls []string // "after" keys received by ListHosts
}

func (s *memStore) ListHosts(ctx context.Context, f HostFilter, pageSize int, after string) ([]*fleetv1.Host, string, error) {
	if s.panics {
		panic("memStore: boom")
	}
	if s.block != nil {
		close(s.entered)
		<-s.block
	}
	if s.err != nil {
		return nil, "", s.err
	}
	s.mu.Lock()
	s.calls = append(s.calls, after)
	s.mu.Unlock()
	var out []*fleetv1.Host
	for _, h := range s.hosts {
		if h.GetId() <= after && after != "" ||
			!strings.HasPrefix(h.GetDetails().GetHostname(), f.HostnamePrefix) ||
			f.OS != "" && h.GetDetails().GetOsName() != f.OS ||
			f.Health != "" && h.GetHealth() != f.Health {
			continue
		}
		if len(out) == pageSize {
			return out, out[len(out)-1].GetId(), nil
		}
		out = append(out, h)
	}
	return out, "", nil
}

func (s *memStore) ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error) {
	if s.err != nil {
		return nil, "", s.err
	}
	var from uint64
	if after != "" {
		v, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("after key %q: %w", after, err)
		}
		from = v
	}
	var out []*fleetv1.EventRecord
	for _, e := range s.events[aggregateType+"/"+id] {
		if e.GetVersion() <= from {
			continue
		}
		if len(out) == pageSize {
			return out, strconv.FormatUint(out[len(out)-1].GetVersion(), 10), nil
		}
		out = append(out, e)
	}
	return out, "", nil
}

// fleet builds n hosts h000..h(n-1) with every third one critical, and
// events for h000.
func fleet(n int) (memHosts, *memStore) {
	hosts := memHosts{}
	store := &memStore{events: map[string][]*fleetv1.EventRecord{}}
	for i := range n {
		health := "passing"
		if i%3 == 0 {
			health = "critical"
		}
		h := &fleetv1.Host{
			Id: fmt.Sprintf("h%03d", i),
			Details: &fleetv1.HostDetails{
				Hostname:    fmt.Sprintf("node%03d", i),
				OsName:      "SLES",
				IpAddresses: []string{fmt.Sprintf("10.0.0.%d", i)},
				LastBootAt:  timestamppb.New(ts0),
			},
			Health:       health,
			Heartbeat:    "passing",
			RegisteredAt: timestamppb.New(ts0),
			Version:      3,
		}
		hosts[h.Id] = h
		store.hosts = append(store.hosts, h)
	}
	slices.SortFunc(store.hosts, func(a, b *fleetv1.Host) int { return strings.Compare(a.Id, b.Id) })
	for v := uint64(1); v <= 7; v++ {
		data, _ := structpb.NewStruct(map[string]any{"n": float64(v)})
		store.events["host/h000"] = append(store.events["host/h000"], &fleetv1.EventRecord{
			EventId: fmt.Sprintf("e%d", v), AggregateType: "host", AggregateId: "h000",
			Version: v, Type: "HostDetailsUpdated", OccurredAt: timestamppb.New(ts0), Data: data,
		})
	}
	return hosts, store
}
