package sim

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// AgentDiscoveryTypes are the discovery types a fleet can simulate, in the
// order a host sends them: what a real agent on a SLES for SAP host sends
// every discovery interval.
func AgentDiscoveryTypes() []string { return slices.Clone(agentDiscoveryTypes[:]) }

var agentDiscoveryTypes = [docCount]string{payload.HostDiscovery, payload.CloudDiscovery, payload.SubscriptionDiscovery, payload.SaptuneDiscovery}

// Index of each type in AgentDiscoveryTypes and in host.docs.
const (
	docHost = iota
	docCloud
	docSubscription
	docSaptune
	docCount
)

// docIndex is the index of discovery type t, or -1 for a type the fleet
// cannot simulate.
func docIndex(t string) int {
	for i, known := range agentDiscoveryTypes {
		if known == t {
			return i
		}
	}
	return -1
}

// doc is one discovery type of a host: its state's change and its payload,
// kept as the JSON the agent sends so that an unchanged discovery costs no
// encoding. Each type has a random source of its own, seeded from the agent
// id and the type: simulating more types leaves the host_discovery sequence
// of a seed as it was.
type doc struct {
	rng    *rand.Rand
	change func(*rand.Rand) bool // false: nothing about this type can change
	render func() any
	json   json.RawMessage // nil until first needed
}

func (d *doc) current() json.RawMessage {
	if d.json == nil {
		b, err := json.Marshal(d.render())
		if err != nil {
			// The payloads are plain structs, maps of strings and numbers.
			panic(fmt.Sprintf("sim: encode payload: %v", err))
		}
		d.json = b
	}
	return d.json
}

// next is one discovery: with probability rate the state changes first.
// It reports whether the payload differs from the previous one.
func (d *doc) next(rate float64) (json.RawMessage, bool) {
	changed := d.rng.Float64() < rate && d.change(d.rng)
	if changed {
		d.json = nil
	}
	return d.current(), changed
}

// typeRand is the random source of one discovery type of the host whose
// agent id is id.
func typeRand(id [16]byte, t string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(t))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(id[:8])^h.Sum64(), binary.BigEndian.Uint64(id[8:])))
}

// newDocs builds the host's discovery types. host_discovery uses the host's
// own random source and state (see hosts.go); the cloud a host runs on is
// drawn even when cloud_discovery is not sent, since saptune and the
// subscriptions depend on it.
func (h *host) newDocs(id [16]byte) {
	h.docs[docHost] = &doc{
		rng:    h.rng,
		change: func(*rand.Rand) bool { h.change(); return true },
		render: func() any { h.render(); return h.rendered },
	}
	cloudRand := typeRand(id, payload.CloudDiscovery)
	c := newCloud(cloudRand)
	h.docs[docCloud] = &doc{rng: cloudRand, change: c.change, render: func() any { return c.render(h) }}
	subRand := typeRand(id, payload.SubscriptionDiscovery)
	s := newSubscriptions(subRand, h, c)
	h.docs[docSubscription] = &doc{rng: subRand, change: s.change, render: func() any { return s.render() }}
	tuneRand := typeRand(id, payload.SaptuneDiscovery)
	t := newSaptune(tuneRand, h, c)
	h.docs[docSaptune] = &doc{rng: tuneRand, change: t.change, render: func() any { return t.render() }}
}

// discoverDoc is one discovery of type k (a docs index).
func (h *host) discoverDoc(k int, rate float64) (json.RawMessage, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.docs[k].next(rate)
}

// docJSON is the current payload of type k, without advancing it.
func (h *host) docJSON(k int) json.RawMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.docs[k].current()
}
