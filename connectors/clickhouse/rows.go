package clickhouse

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// jsonOptions is the JSON form of payload and state columns: proto field
// names, as the API and analysts see them.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

var (
	// payloadOneof is the Event oneof whose message names the event type.
	payloadOneof = (&fleetv1.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("payload")
	// stateOneof is the AggregateState oneof holding the entity.
	stateOneof = (&fleetv1.AggregateState{}).ProtoReflect().Descriptor().Oneofs().ByName("state")
)

// rejectionError says why a record cannot go into ClickHouse; reason is
// the dead_letters_total label.
type rejectionError struct {
	reason string
	err    error
}

func (e *rejectionError) Error() string { return e.reason + ": " + e.err.Error() }

// projected is one event turned into the rows it writes.
type projected struct {
	ev        *fleetv1.Event
	eventType string
	payload   string
	state     string
	host      *fleetv1.Host // nil when the event does not update hosts
	hostState string        // JSON of host
	// resource is set by cloud_resource events (not rejections), with the
	// JSON of the resource and of its attributes.
	resource           *fleetv1.CloudResource
	resourceState      string
	resourceAttributes string
	// link is set by link events: the link after the event.
	link *fleetv1.Link
	// entity is set by cluster, SAP system and database events (not
	// rejections): the row of its table.
	entity *entityRow
}

// project decodes a fleet.events.v1 record value. The event type is the
// payload message's name, so a new payload needs no change here.
func project(value []byte) (*projected, error) {
	ev := &fleetv1.Event{}
	if err := proto.Unmarshal(value, ev); err != nil {
		return nil, &rejectionError{reasonUndecodable, fmt.Errorf("not a fleetstream.v1.Event: %w", err)}
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"event_id", ev.GetEventId()}, {"aggregate_type", ev.GetAggregateType()}, {"aggregate_id", ev.GetAggregateId()},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event without %s", strings.Join(missing, ", "))}
	}
	m := ev.ProtoReflect()
	fd := m.WhichOneof(payloadOneof)
	if fd == nil {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s has no payload this sink knows (written by a newer fleetstream? upgrade the sink and replay the dead letters)", ev.GetEventId())}
	}
	p := &projected{ev: ev, eventType: string(fd.Message().Name())}
	payload, err := jsonOptions.Marshal(m.Get(fd).Message().Interface())
	if err != nil {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s payload to JSON: %w", ev.GetEventId(), err)}
	}
	p.payload = string(payload)
	st := ev.GetState().ProtoReflect()
	sfd := st.WhichOneof(stateOneof)
	if sfd == nil {
		return p, nil
	}
	entity, err := jsonOptions.Marshal(st.Get(sfd).Message().Interface())
	if err != nil {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s state to JSON: %w", ev.GetEventId(), err)}
	}
	// AggregateState's JSON is {"<field>": entity}: built, not encoded a
	// second time (JSON encoding is most of the sink's CPU).
	p.state = `{"` + string(sfd.Name()) + `":` + string(entity) + `}`
	// A rejection carries the unchanged state: projecting it would only
	// rewrite the same version.
	if h := ev.GetState().GetHost(); h != nil && ev.GetCommandRejected() == nil {
		if h.GetId() == "" {
			return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s carries a host state without id", ev.GetEventId())}
		}
		p.host, p.hostState = h, string(entity)
	}
	if r := ev.GetState().GetCloudResource(); r != nil && ev.GetCommandRejected() == nil {
		if r.GetId() == "" {
			return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s carries a cloud resource state without id", ev.GetEventId())}
		}
		attrs, err := jsonOptions.Marshal(r.GetSpec().GetAttributes())
		if err != nil {
			return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s: attributes of resource %s to JSON: %w", ev.GetEventId(), r.GetId(), err)}
		}
		p.resource, p.resourceState, p.resourceAttributes = r, string(entity), string(attrs)
	}
	if ev.GetCommandRejected() == nil {
		if p.entity, err = entityOf(ev, string(entity)); err != nil {
			return nil, err
		}
	}
	if l := ev.GetState().GetLink(); l != nil {
		if l.GetFrom().GetId() == "" || l.GetTo().GetId() == "" {
			return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s carries a link without both ends", ev.GetEventId())}
		}
		p.link = l
	}
	return p, nil
}

// eventColumns are rows of the events table, column by column, in the
// order of eventsInsert.
type eventColumns struct {
	eventID, aggregateType, aggregateID []string
	version                             []uint64
	eventType                           []string
	occurredAt                          []time.Time
	traceID, commandID, payload, state  []string
	partition                           []int32
	offset                              []int64
}

const eventsInsert = "INSERT INTO %s (event_id, aggregate_type, aggregate_id, version, event_type, occurred_at, " +
	"trace_id, command_id, payload, state, kafka_partition, kafka_offset)"

func (c *eventColumns) add(p *projected, partition int32, offset int64) {
	ev := p.ev
	c.eventID = append(c.eventID, ev.GetEventId())
	c.aggregateType = append(c.aggregateType, ev.GetAggregateType())
	c.aggregateID = append(c.aggregateID, ev.GetAggregateId())
	c.version = append(c.version, ev.GetVersion())
	c.eventType = append(c.eventType, p.eventType)
	c.occurredAt = append(c.occurredAt, dateTime(ev.GetOccurredAt()))
	c.traceID = append(c.traceID, ev.GetTraceId())
	c.commandID = append(c.commandID, ev.GetCommandId())
	c.payload = append(c.payload, p.payload)
	c.state = append(c.state, p.state)
	c.partition = append(c.partition, partition)
	c.offset = append(c.offset, offset)
}

func (c *eventColumns) len() int { return len(c.eventID) }

func (c *eventColumns) values() []any {
	return []any{c.eventID, c.aggregateType, c.aggregateID, c.version, c.eventType, c.occurredAt,
		c.traceID, c.commandID, c.payload, c.state, c.partition, c.offset}
}

// hostColumns are rows of the hosts table in the order of hostsInsert.
type hostColumns struct {
	id, hostname, fqdn, osName, osVersion, kernelVersion, arch []string
	cpuCount, socketCount                                      []uint32
	totalMemoryMB                                              []uint64
	ipAddresses                                                [][]string
	agentVersion, health, heartbeat                            []string
	lastHeartbeatAt, registeredAt, updatedAt                   []time.Time
	version                                                    []uint64
	state                                                      []string
	provider                                                   []string
	deregistered                                               []uint8
}

const hostsInsert = "INSERT INTO %s (id, hostname, fqdn, os_name, os_version, kernel_version, arch, cpu_count, " +
	"socket_count, total_memory_mb, ip_addresses, agent_version, health, heartbeat, last_heartbeat_at, " +
	"registered_at, updated_at, version, state, provider, deregistered)"

func (c *hostColumns) add(p *projected) {
	h := p.host
	d := h.GetDetails()
	ips := d.GetIpAddresses()
	if ips == nil {
		ips = []string{} // a nil element is not an empty Array for the driver
	}
	c.id = append(c.id, h.GetId())
	c.hostname = append(c.hostname, d.GetHostname())
	c.fqdn = append(c.fqdn, d.GetFqdn())
	c.osName = append(c.osName, d.GetOsName())
	c.osVersion = append(c.osVersion, d.GetOsVersion())
	c.kernelVersion = append(c.kernelVersion, d.GetKernelVersion())
	c.arch = append(c.arch, d.GetArch())
	c.cpuCount = append(c.cpuCount, uint32(max(d.GetCpuCount(), 0)))
	c.socketCount = append(c.socketCount, uint32(max(d.GetSocketCount(), 0)))
	c.totalMemoryMB = append(c.totalMemoryMB, uint64(max(d.GetTotalMemoryMb(), 0)))
	c.ipAddresses = append(c.ipAddresses, ips)
	c.agentVersion = append(c.agentVersion, d.GetAgentVersion())
	c.health = append(c.health, h.GetHealth())
	c.heartbeat = append(c.heartbeat, h.GetHeartbeat())
	c.lastHeartbeatAt = append(c.lastHeartbeatAt, dateTime(h.GetLastHeartbeatAt()))
	c.registeredAt = append(c.registeredAt, dateTime(h.GetRegisteredAt()))
	c.updatedAt = append(c.updatedAt, dateTime(h.GetUpdatedAt()))
	c.version = append(c.version, h.GetVersion())
	c.state = append(c.state, p.hostState)
	c.provider = append(c.provider, h.GetProvider().GetProvider())
	var deregistered uint8
	if h.GetDeregistered() {
		deregistered = 1
	}
	c.deregistered = append(c.deregistered, deregistered)
}

func (c *hostColumns) len() int { return len(c.id) }

func (c *hostColumns) values() []any {
	return []any{c.id, c.hostname, c.fqdn, c.osName, c.osVersion, c.kernelVersion, c.arch, c.cpuCount,
		c.socketCount, c.totalMemoryMB, c.ipAddresses, c.agentVersion, c.health, c.heartbeat, c.lastHeartbeatAt,
		c.registeredAt, c.updatedAt, c.version, c.state, c.provider, c.deregistered}
}

// resourceColumns are rows of the cloud_resources table in the order of
// resourcesInsert.
type resourceColumns struct {
	id, provider, account, region, kind, resourceID, name []string
	tags                                                  [][]string
	attributes                                            []string
	deleted                                               []uint8
	discoveredAt, updatedAt, deletedAt                    []time.Time
	version                                               []uint64
	state                                                 []string
}

const resourcesInsert = "INSERT INTO %s (id, provider, account, region, kind, resource_id, name, tags, attributes, " +
	"deleted, discovered_at, updated_at, deleted_at, version, state)"

func (c *resourceColumns) add(p *projected) {
	r := p.resource
	s := r.GetSpec()
	tags := make([]string, 0, len(s.GetTags()))
	for k, v := range s.GetTags() {
		tags = append(tags, k+"="+v)
	}
	slices.Sort(tags)
	var deleted uint8
	if r.GetDeleted() {
		deleted = 1
	}
	c.id = append(c.id, r.GetId())
	c.provider = append(c.provider, s.GetProvider())
	c.account = append(c.account, s.GetAccount())
	c.region = append(c.region, s.GetRegion())
	c.kind = append(c.kind, s.GetKind())
	c.resourceID = append(c.resourceID, s.GetResourceId())
	c.name = append(c.name, s.GetName())
	c.tags = append(c.tags, tags)
	c.attributes = append(c.attributes, p.resourceAttributes)
	c.deleted = append(c.deleted, deleted)
	c.discoveredAt = append(c.discoveredAt, dateTime(r.GetDiscoveredAt()))
	c.updatedAt = append(c.updatedAt, dateTime(r.GetUpdatedAt()))
	c.deletedAt = append(c.deletedAt, dateTime(r.GetDeletedAt()))
	c.version = append(c.version, r.GetVersion())
	c.state = append(c.state, p.resourceState)
}

func (c *resourceColumns) len() int { return len(c.id) }

func (c *resourceColumns) values() []any {
	return []any{c.id, c.provider, c.account, c.region, c.kind, c.resourceID, c.name, c.tags, c.attributes,
		c.deleted, c.discoveredAt, c.updatedAt, c.deletedAt, c.version, c.state}
}

// linkColumns are rows of the links table in the order of linksInsert.
type linkColumns struct {
	fromType, fromID, fromKind, relation, toType, toID, toKind []string
	active                                                     []uint8
	reason                                                     []string
	version                                                    []uint64
	updatedAt                                                  []time.Time
}

const linksInsert = "INSERT INTO %s (from_type, from_id, from_kind, relation, to_type, to_id, to_kind, active, reason, version, updated_at)"

func (c *linkColumns) add(p *projected) {
	l := p.link
	var active uint8
	if l.GetActive() {
		active = 1
	}
	c.fromType = append(c.fromType, l.GetFrom().GetType())
	c.fromID = append(c.fromID, l.GetFrom().GetId())
	c.fromKind = append(c.fromKind, l.GetFrom().GetKind())
	c.relation = append(c.relation, l.GetRelation())
	c.toType = append(c.toType, l.GetTo().GetType())
	c.toID = append(c.toID, l.GetTo().GetId())
	c.toKind = append(c.toKind, l.GetTo().GetKind())
	c.active = append(c.active, active)
	c.reason = append(c.reason, l.GetReason())
	c.version = append(c.version, l.GetVersion())
	c.updatedAt = append(c.updatedAt, dateTime(l.GetUpdatedAt()))
}

func (c *linkColumns) len() int { return len(c.fromID) }

func (c *linkColumns) values() []any {
	return []any{c.fromType, c.fromID, c.fromKind, c.relation, c.toType, c.toID, c.toKind, c.active, c.reason, c.version, c.updatedAt}
}

// linkKey is a link's identity in the links table.
type linkKey struct{ from, relation, toType, to string }

func keyOfLink(l *fleetv1.Link) linkKey {
	return linkKey{l.GetFrom().GetId(), l.GetRelation(), l.GetTo().GetType(), l.GetTo().GetId()}
}

// dateTime clamps a timestamp into what a DateTime column holds (whole
// seconds, 1970 to 2106); a missing timestamp is 0.
func dateTime(ts *timestamppb.Timestamp) time.Time {
	s := ts.GetSeconds()
	if ts == nil || s < 0 {
		s = 0
	}
	return time.Unix(min(s, math.MaxUint32), 0).UTC()
}
