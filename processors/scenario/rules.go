// Package scenario is scenario detection: the goka group that turns agent
// discoveries into aggregate commands. It remembers, per agent, a
// fingerprint of the last payload of each discovery type (so an unchanged
// discovery costs a hash and nothing else) and the host details it last
// sent (so a changed one yields only the fields that changed).
//
// The policies are pure functions of (state, discovery) in this file and
// the policy_*.go files; group.go wires them to Kafka.
package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// policy turns a discovery whose payload changed into commands (envelope
// fields left empty), updating next, a copy of the agent's state, in place.
type policy func(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error)

// policies of the fingerprinted discovery types. Types without a policy
// yet only record their fingerprint, so a later policy starts from the
// latest payload hash instead of a stream of "changed" discoveries.
var policies = map[string]policy{
	payload.HostDiscovery:         hostPolicy,
	payload.CloudDiscovery:        cloudPolicy,
	payload.SubscriptionDiscovery: subscriptionPolicy,
	payload.HAClusterDiscovery:    clusterPolicy,
	payload.SAPSystemDiscovery:    sapSystemPolicy,
	payload.SaptuneDiscovery:      saptunePolicy,
	payload.CloudResources:        resourcesPolicy,
}

// outcome says what a discovery led to; it labels the discoveries metric.
type outcome string

const (
	outcomeCommands     outcome = "commands"      // one or more commands
	outcomeUnchanged    outcome = "unchanged"     // same fingerprint as last time
	outcomeNoDifference outcome = "no_difference" // new bytes, same facts (e.g. key order)
	outcomeNoPolicy     outcome = "no_policy"     // known type, no policy yet
	outcomeHostUnknown  outcome = "host_unknown"  // heartbeat or host fact before the host's first discovery
	outcomeStale        outcome = "stale"         // a chunk of an older or already complete collection
)

// origin is where a discovery record was read. Command ids derive from it
// so a reprocessed record yields the same commands.
type origin struct {
	topic     string
	partition int32
	offset    int64
	traceID   string
}

// result is what one discovery yields.
type result struct {
	commands []*fleetv1.Command
	// state is the agent's new state, nil when unchanged (no table write).
	state   *fleetv1.ScenarioState
	outcome outcome
}

// Reasons a record is dead-lettered; they label the dead-letter metric.
const (
	reasonNotProtobuf      = "not_protobuf"
	reasonInvalidEnvelope  = "invalid_envelope"
	reasonUnknownType      = "unknown_type"
	reasonMalformedPayload = "malformed_payload"
)

// rejection is a record that cannot be processed: it goes to the
// dead-letter topic, labelled with reason.
type rejection struct {
	reason string
	err    error
}

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

func reject(reason string, format string, args ...any) error {
	return &rejection{reason: reason, err: fmt.Errorf(format, args...)}
}

// rejectionReason is the metric label of err.
func rejectionReason(err error) string {
	if r, ok := errors.AsType[*rejection](err); ok {
		return r.reason
	}
	return "internal"
}

// parseDiscovery decodes and validates one input record keyed by key.
func parseDiscovery(key string, value []byte) (*fleetv1.Discovery, error) {
	d := new(fleetv1.Discovery)
	if err := proto.Unmarshal(value, d); err != nil {
		return nil, reject(reasonNotProtobuf, "value is not a fleetstream.v1.Discovery: %v", err)
	}
	switch {
	case d.GetAgentId() == "":
		return nil, reject(reasonInvalidEnvelope, "discovery has no agent_id")
	case d.GetAgentId() != key:
		// State is kept per record key and commands are keyed by agent id:
		// a mismatch would split one agent's state across keys.
		return nil, reject(reasonInvalidEnvelope, "record key %q differs from agent_id %q: key discoveries by agent id", key, d.GetAgentId())
	case d.GetCollectedAt() == nil:
		return nil, reject(reasonInvalidEnvelope, "discovery of agent %s has no collected_at", d.GetAgentId())
	}
	if _, ok := policies[d.GetDiscoveryType()]; !ok && d.GetDiscoveryType() != payload.Heartbeat {
		return nil, reject(reasonUnknownType, "unknown discovery_type %q", d.GetDiscoveryType())
	}
	return d, nil
}

// detect applies the policy of d's type to the agent's state (nil before
// the agent's first discovery). A rejection leaves the state untouched, so
// the same bad payload is refused again rather than remembered.
func detect(state *fleetv1.ScenarioState, d *fleetv1.Discovery, o origin) (result, error) {
	if d.GetDiscoveryType() == payload.Heartbeat {
		// Not fingerprinted: heartbeats carry no facts and repeat by design.
		return heartbeat(state, d, o), nil
	}
	p, ok := policies[d.GetDiscoveryType()]
	if !ok {
		return result{}, reject(reasonUnknownType, "unknown discovery_type %q", d.GetDiscoveryType())
	}
	fp := xxhash.Sum64(d.GetPayload())
	if old, seen := state.GetFingerprints()[d.GetDiscoveryType()]; seen && old == fp {
		return result{outcome: outcomeUnchanged}, nil
	}
	next := new(fleetv1.ScenarioState)
	if state != nil {
		next = proto.CloneOf(state)
	}
	commands, out, err := p(next, d)
	if err != nil {
		return result{}, err
	}
	if next.Fingerprints == nil {
		next.Fingerprints = map[string]uint64{}
	}
	next.Fingerprints[d.GetDiscoveryType()] = fp
	stamp(commands, d, o)
	return result{commands: commands, state: next, outcome: out}, nil
}

// forgets reports whether e ends what scenario detection knows of agent
// key: its host was deregistered (the host aggregate's id is the agent id).
func forgets(e *fleetv1.Event, key string) bool {
	_, ok := e.GetPayload().(*fleetv1.Event_HostDeregistered)
	return ok && e.GetAggregateId() == key
}

// heartbeat forwards a heartbeat only for agents whose host this processor
// has registered. An agent heartbeats every few seconds from start-up, and
// its host discovery may come later (or never, if it fails): forwarding
// those heartbeats would make the host aggregate emit a CommandRejected
// event every few seconds per unregistered agent, flooding the event store
// with noise. They are counted (outcome host_unknown) instead.
func heartbeat(state *fleetv1.ScenarioState, d *fleetv1.Discovery, o origin) result {
	if !state.GetHostRegistered() {
		return result{outcome: outcomeHostUnknown}
	}
	commands := []*fleetv1.Command{{Body: &fleetv1.Command_UpdateHeartbeat{
		UpdateHeartbeat: &fleetv1.UpdateHeartbeat{At: d.GetCollectedAt()},
	}}}
	stamp(commands, d, o)
	return result{commands: commands, outcome: outcomeCommands}
}

// noPolicy accepts any JSON payload of a type whose policy does not exist
// yet, and emits nothing.
func noPolicy(_ *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	if !json.Valid(d.GetPayload()) {
		return nil, "", reject(reasonMalformedPayload, "%s payload of agent %s is not valid JSON", d.GetDiscoveryType(), d.GetAgentId())
	}
	return nil, outcomeNoPolicy, nil
}

// commandNamespace is the UUIDv5 namespace of command ids:
// UUIDv5(URL namespace, "urn:fleetstream:command").
var commandNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:command"))

// commandID is UUIDv5 of "<topic>/<partition>/<offset>/<index>": the same
// input record always yields the same ids.
func commandID(o origin, index int) string {
	name := o.topic + "/" + strconv.Itoa(int(o.partition)) + "/" + strconv.FormatInt(o.offset, 10) + "/" + strconv.Itoa(index)
	return uuid.NewSHA1(commandNamespace, []byte(name)).String()
}

// stamp fills the envelopes of commands derived from d. Every timestamp
// comes from the discovery, never the clock, so reprocessing is identical.
func stamp(commands []*fleetv1.Command, d *fleetv1.Discovery, o origin) {
	for i, c := range commands {
		c.CommandId = commandID(o, i)
		if c.AggregateId == "" { // the agent's own aggregate (host)
			c.AggregateId = d.GetAgentId()
		}
		c.IssuedAt = d.GetCollectedAt()
		c.TraceId = o.traceID
	}
}
