// Package checks evaluates the configuration checks of the catalog
// (processors/checks/catalog) as two stream processors.
//
// # Continuous evaluation (group fleet.checks)
//
// The group's table is keyed by target: a host (its host id, which is its
// agent id) or a cluster (its cluster id). A target's value (ChecksTarget)
// holds what the checks need:
//
//   - facts: a host's facts by gatherer and argument — derived from its
//     discoveries ("discovery.<type>@v1", the payload as the agent sent it,
//     see DerivedGatherer) and gathered by its agent on its own schedule
//     (fleet.facts.v1 records without an execution id);
//   - env: the attributes metadata selectors and CEL's env see: target_type,
//     hostname, arch, os_name, os_version (host events' state), provider
//     (a host's from its cloud_discovery; a cluster's from its events'
//     state, which takes it from the ha_cluster_discovery's Provider),
//     cluster_type, cluster_id, cluster_name (cluster events' state);
//   - a cluster's member hosts with their facts and env: cluster checks are
//     evaluated over every member. Members come from the cluster's events;
//     the cluster key tells each member host over the group's loop topic
//     that it joined (or left), and a member host forwards its facts and
//     env to the cluster key on every change (only the facts of gatherers
//     that cluster checks use, so the cluster's value stays small);
//   - the selection (SelectChecks; until the first, every applicable check
//     is selected), value overrides (OverrideCheckValue) and the current
//     results.
//
// Whenever facts, env, members, selection or overrides change, the
// selected checks of the target's type that apply to its env are
// evaluated; a check whose facts are not all known yet (on every member,
// for a cluster) is not evaluated and keeps its current result, if any,
// until it can be. A result that differs from the current
// one (result, error or messages) is emitted as CheckResultChanged (before
// and after) to fleet.events.v1 (aggregate_type "checks", deterministic
// ids) and as a CheckResult record to fleet.checks.results.v1; when the
// worst result changes, UpdateChecksHealth goes to the host or cluster
// aggregate. Identical input changes nothing and emits nothing.
//
// # On-demand executions (group fleet.checks.executions)
//
// See executions.go.
//
// Rules are pure functions of the catalog, the stored value and the input;
// group.go wires them to Kafka.
package checks

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// AggregateType is the aggregate_type of continuous evaluation's events;
// their aggregate id is the target id.
const AggregateType = "checks"

// Target types.
const (
	TargetHost    = catalog.TargetHost
	TargetCluster = catalog.TargetCluster
)

// Health values of UpdateChecksHealth.
const (
	HealthUnknown  = "unknown"
	HealthPassing  = catalog.Passing
	HealthWarning  = catalog.Warning
	HealthCritical = catalog.Critical
)

// The aggregate types whose events tell targets' env and memberships.
const (
	hostAggregate    = "host"
	clusterAggregate = "cluster"
)

// Env keys the processor sets.
const (
	EnvTargetType  = "target_type"
	EnvHostname    = "hostname"
	EnvArch        = "arch"
	EnvOSName      = "os_name"
	EnvOSVersion   = "os_version"
	EnvProvider    = "provider"
	EnvClusterType = "cluster_type"
	EnvClusterID   = "cluster_id"
	EnvClusterName = "cluster_name"
)

// commandNamespace is the UUIDv5 namespace of the commands the processors
// send: UUIDv5(URL namespace, "urn:fleetstream:checks-command").
var commandNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:checks-command"))

// Rules evaluates one catalog. It is immutable and safe for concurrent use.
type Rules struct {
	cat *catalog.Catalog
	// clusterGatherers are the gatherers cluster checks use: what a member
	// host forwards to its cluster.
	clusterGatherers map[string]bool
}

// NewRules returns the rules of cat.
func NewRules(cat *catalog.Catalog) *Rules {
	r := &Rules{cat: cat, clusterGatherers: map[string]bool{}}
	for _, c := range cat.Checks() {
		if c.TargetType() == TargetCluster {
			for _, f := range c.Facts {
				r.clusterGatherers[f.Gatherer] = true
			}
		}
	}
	return r
}

// Catalog is the catalog the rules evaluate.
func (r *Rules) Catalog() *catalog.Catalog { return r.cat }

type outcome string

const (
	outcomeApplied   outcome = "applied"   // state, events or results changed
	outcomeUnchanged outcome = "unchanged" // nothing to do
	outcomeStale     outcome = "stale"     // older than what was applied
	outcomeIgnored   outcome = "ignored"   // not for this processor
	outcomeRejected  outcome = "rejected"  // a command broke a rule
)

// send is a loop message for key.
type send struct {
	key string
	msg *fleetv1.ChecksLoopMessage
}

// healthCommand is an UpdateChecksHealth for a host or cluster aggregate.
type healthCommand struct {
	targetType string
	cmd        *fleetv1.Command
}

// result is what one input does to one target.
type result struct {
	// state is the target after the input, nil when the table need not be
	// written.
	state    *fleetv1.ChecksTarget
	events   []*fleetv1.Event
	results  []*fleetv1.CheckResult
	commands []healthCommand
	sends    []send
	traceID  string
	outcome  outcome
	// evaluations counts the check evaluations of the input, by result.
	evaluations map[string]int
}

// step accumulates the effects of one input on one target.
type step struct {
	r       *Rules
	key     string
	next    *fleetv1.ChecksTarget
	at      *timestamppb.Timestamp
	cause   string
	traceID string

	events      []*fleetv1.Event
	results     []*fleetv1.CheckResult
	commands    []healthCommand
	sends       []send
	evaluations map[string]int
	// changed: the table must be written; dirty: checks must be
	// re-evaluated; forward: a member host's facts or env changed.
	changed, dirty, forward bool
}

func (r *Rules) newStep(state *fleetv1.ChecksTarget, key string, at *timestamppb.Timestamp, cause, traceID string) *step {
	next := &fleetv1.ChecksTarget{Status: &fleetv1.ChecksStatus{Id: key, Health: HealthUnknown}}
	if state != nil {
		next = proto.CloneOf(state)
		if next.Status == nil {
			next.Status = &fleetv1.ChecksStatus{Id: key, Health: HealthUnknown}
		}
	}
	return &step{r: r, key: key, next: next, at: at, cause: cause, traceID: traceID}
}

// finish evaluates if needed, forwards a member's facts, and returns the
// step's result.
func (s *step) finish() result {
	if s.dirty {
		s.evaluate()
	}
	if s.forward && s.next.GetStatus().GetTargetType() == TargetHost && s.next.GetClusterId() != "" {
		s.sendMemberFacts()
	}
	r := result{events: s.events, results: s.results, commands: s.commands, sends: s.sends, traceID: s.traceID, outcome: outcomeUnchanged, evaluations: s.evaluations}
	if s.changed {
		r.state, r.outcome = s.next, outcomeApplied
	}
	if len(s.events) > 0 || len(s.sends) > 0 {
		r.outcome = outcomeApplied
	}
	return r
}

// setTargetType types the target on its first input; false when it is
// already the other type (a host id equal to a cluster id: ignored).
func (s *step) setTargetType(t string) bool {
	switch s.next.Status.GetTargetType() {
	case t:
		return true
	case "":
		s.next.Status.TargetType = t
		setEnv(&s.next.Env, EnvTargetType, t)
		s.changed, s.dirty = true, true
		return true
	}
	return false
}

func (s *step) setEnv(key, value string) {
	if setEnv(&s.next.Env, key, value) {
		s.changed, s.dirty, s.forward = true, true, true
	}
}

// ApplyDiscovery follows fleet.discoveries.v1: a derived fact of the host
// keyed by the discovery's agent id, and its provider from cloud_discovery.
func (r *Rules) applyDiscovery(state *fleetv1.ChecksTarget, d *fleetv1.Discovery, traceID, cause string) result {
	if !slices.Contains(derivedTypes, d.GetDiscoveryType()) {
		return result{outcome: outcomeIgnored}
	}
	gatherer := DerivedGatherer(d.GetDiscoveryType())
	if old := findFact(state.GetFacts(), gatherer, ""); old != nil && d.GetCollectedAt().AsTime().Before(old.GetGatheredAt().AsTime()) {
		return result{outcome: outcomeStale}
	}
	value := d.GetPayload()
	if len(value) == 0 {
		value = []byte("null")
	}
	s := r.newStep(state, d.GetAgentId(), d.GetCollectedAt(), cause, traceID)
	if !s.setTargetType(TargetHost) {
		return result{outcome: outcomeIgnored}
	}
	facts, changed := setFact(s.next.Facts, &fleetv1.Fact{Gatherer: gatherer, Value: compactJSON(value), GatheredAt: d.GetCollectedAt()})
	s.next.Facts = facts
	if changed {
		s.changed, s.dirty, s.forward = true, true, true
	}
	if d.GetDiscoveryType() == payload.CloudDiscovery {
		if c, err := payload.DecodeCloud(d.GetPayload()); err == nil {
			s.setEnv(EnvProvider, strings.ToLower(c.Provider))
		}
	}
	return s.finish()
}

// applyFacts follows facts an agent gathered on its own schedule
// (fleet.facts.v1 without an execution id).
func (r *Rules) applyFacts(state *fleetv1.ChecksTarget, fg *fleetv1.FactsGathered, traceID, cause string) (result, error) {
	if fg.GetExecutionId() != "" {
		return result{outcome: outcomeIgnored}, nil
	}
	s := r.newStep(state, fg.GetAgentId(), fg.GetGatheredAt(), cause, traceID)
	if !s.setTargetType(TargetHost) {
		return result{outcome: outcomeIgnored}, nil
	}
	for _, g := range fg.GetFacts() {
		if g.GetGatherer() == "" {
			return result{}, fmt.Errorf("facts of agent %s: a fact has no gatherer", fg.GetAgentId())
		}
		f, err := gatheredFact(g, fg.GetGatheredAt())
		if err != nil {
			return result{}, fmt.Errorf("facts of agent %s: %w", fg.GetAgentId(), err)
		}
		if old := findFact(s.next.Facts, f.GetGatherer(), f.GetArgument()); old != nil && fg.GetGatheredAt().AsTime().Before(old.GetGatheredAt().AsTime()) {
			continue
		}
		facts, changed := setFact(s.next.Facts, f)
		s.next.Facts = facts
		if changed {
			s.changed, s.dirty, s.forward = true, true, true
		}
	}
	return s.finish(), nil
}

// applyEvent follows host and cluster events: env and memberships.
func (r *Rules) applyEvent(state *fleetv1.ChecksTarget, key string, e *fleetv1.Event) result {
	if _, rejected := e.GetPayload().(*fleetv1.Event_CommandRejected); rejected {
		return result{outcome: outcomeIgnored}
	}
	switch {
	case e.GetAggregateType() == hostAggregate && e.GetState().GetHost() != nil:
		if e.GetVersion() <= state.GetEntityVersion() {
			return result{outcome: outcomeStale}
		}
		s := r.newStep(state, key, e.GetOccurredAt(), e.GetEventId(), e.GetTraceId())
		if !s.setTargetType(TargetHost) {
			return result{outcome: outcomeIgnored}
		}
		s.next.EntityVersion = e.GetVersion()
		s.changed = true
		d := e.GetState().GetHost().GetDetails()
		s.setEnv(EnvHostname, d.GetHostname())
		s.setEnv(EnvArch, d.GetArch())
		s.setEnv(EnvOSName, d.GetOsName())
		s.setEnv(EnvOSVersion, d.GetOsVersion())
		return s.finish()
	case e.GetAggregateType() == clusterAggregate && e.GetState().GetCluster() != nil:
		if e.GetVersion() <= state.GetEntityVersion() {
			return result{outcome: outcomeStale}
		}
		s := r.newStep(state, key, e.GetOccurredAt(), e.GetEventId(), e.GetTraceId())
		if !s.setTargetType(TargetCluster) {
			return result{outcome: outcomeIgnored}
		}
		s.next.EntityVersion = e.GetVersion()
		s.changed = true
		s.cluster(e.GetState().GetCluster())
		return s.finish()
	}
	return result{outcome: outcomeIgnored}
}

// cluster applies a cluster's state: env and members.
func (s *step) cluster(c *fleetv1.Cluster) {
	typeChanged := setEnv(&s.next.Env, EnvClusterType, c.GetType())
	if typeChanged {
		s.dirty = true
	}
	if setEnv(&s.next.Env, EnvClusterName, c.GetName()) {
		s.dirty = true
	}
	if setEnv(&s.next.Env, EnvProvider, clusterProvider(c)) {
		s.dirty = true
	}
	setEnv(&s.next.Env, EnvClusterID, s.key)
	var want []string
	if !c.GetDeregistered() {
		for _, h := range c.GetHosts() {
			want = append(want, h.GetHostId())
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	var members []*fleetv1.MemberFacts
	for _, m := range s.next.GetMembers() {
		if _, ok := slices.BinarySearch(want, m.GetHostId()); ok {
			members = append(members, m)
			if typeChanged {
				s.membership(m.GetHostId(), true)
			}
			continue
		}
		s.membership(m.GetHostId(), false)
		s.dirty = true
	}
	for _, id := range want {
		if !slices.ContainsFunc(members, func(m *fleetv1.MemberFacts) bool { return m.GetHostId() == id }) {
			members = append(members, &fleetv1.MemberFacts{HostId: id})
			s.membership(id, true)
			s.dirty = true
		}
	}
	slices.SortFunc(members, func(a, b *fleetv1.MemberFacts) int { return cmp.Compare(a.GetHostId(), b.GetHostId()) })
	s.next.Members = members
}

// clusterProvider is a cluster's provider as the env has it: lower case,
// like a host's, and absent when the agent named none (the cluster's
// details say "unknown"), so that in a member's env the host's own provider
// is not hidden by it.
func clusterProvider(c *fleetv1.Cluster) string {
	p := strings.ToLower(c.GetDetails().GetProvider())
	if p == payload.CloudUnknown {
		return ""
	}
	return p
}

func (s *step) membership(hostID string, member bool) {
	s.sends = append(s.sends, send{key: hostID, msg: &fleetv1.ChecksLoopMessage{
		At: s.at, Cause: s.cause,
		Body: &fleetv1.ChecksLoopMessage_Membership{Membership: &fleetv1.ClusterMembership{
			ClusterId: s.key, Member: member, ClusterType: envString(s.next.GetEnv().AsMap(), EnvClusterType),
		}},
	}})
}

// sendMemberFacts forwards a member host's env and the facts cluster
// checks use to its cluster.
func (s *step) sendMemberFacts() {
	var facts []*fleetv1.Fact
	for _, f := range s.next.GetFacts() {
		if s.r.clusterGatherers[f.GetGatherer()] {
			facts = append(facts, proto.CloneOf(f))
		}
	}
	s.sends = append(s.sends, send{key: s.next.GetClusterId(), msg: &fleetv1.ChecksLoopMessage{
		At: s.at, Cause: s.cause,
		Body: &fleetv1.ChecksLoopMessage_MemberFacts{MemberFacts: &fleetv1.MemberFactsUpdate{
			ClusterId: s.next.GetClusterId(),
			Member:    &fleetv1.MemberFacts{HostId: s.key, Env: proto.CloneOf(s.next.GetEnv()), Facts: facts},
		}},
	}})
}

// applyLoop follows the loop topic between clusters and their hosts.
func (r *Rules) applyLoop(state *fleetv1.ChecksTarget, key string, m *fleetv1.ChecksLoopMessage, traceID string) result {
	s := r.newStep(state, key, m.GetAt(), m.GetCause(), traceID)
	switch body := m.GetBody().(type) {
	case *fleetv1.ChecksLoopMessage_Membership:
		if !s.setTargetType(TargetHost) {
			return result{outcome: outcomeIgnored}
		}
		ms := body.Membership
		switch {
		case ms.GetMember():
			if s.next.ClusterId != ms.GetClusterId() || s.next.ClusterType != ms.GetClusterType() {
				s.next.ClusterId, s.next.ClusterType = ms.GetClusterId(), ms.GetClusterType()
				s.changed = true
			}
			s.setEnv(EnvClusterID, ms.GetClusterId())
			s.setEnv(EnvClusterType, ms.GetClusterType())
			// The cluster asks: answer even when nothing changed here.
			s.forward = true
		case s.next.GetClusterId() == ms.GetClusterId():
			s.next.ClusterId, s.next.ClusterType = "", ""
			s.changed = true
			s.setEnv(EnvClusterID, "")
			s.setEnv(EnvClusterType, "")
			s.forward = false
		default:
			return result{outcome: outcomeStale} // it has moved to another cluster since
		}
	case *fleetv1.ChecksLoopMessage_MemberFacts:
		if s.next.GetStatus().GetTargetType() != TargetCluster {
			return result{outcome: outcomeIgnored}
		}
		in := body.MemberFacts.GetMember()
		i := slices.IndexFunc(s.next.Members, func(m *fleetv1.MemberFacts) bool { return m.GetHostId() == in.GetHostId() })
		if i < 0 {
			return result{outcome: outcomeStale} // it left the cluster since
		}
		if proto.Equal(s.next.Members[i], in) {
			return result{outcome: outcomeUnchanged}
		}
		s.next.Members[i] = proto.CloneOf(in)
		s.changed, s.dirty = true, true
	default:
		return result{outcome: outcomeIgnored}
	}
	return s.finish()
}

// applyCommand follows the checks commands of a target: selection and
// value overrides. Executions are the executions group's.
func (r *Rules) applyCommand(state *fleetv1.ChecksTarget, cmd *fleetv1.Command) result {
	s := r.newStep(state, cmd.GetAggregateId(), cmd.GetIssuedAt(), cmd.GetCommandId(), cmd.GetTraceId())
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_SelectChecks:
		if reason := s.selectChecks(body.SelectChecks); reason != "" {
			return s.reject(cmd, reason)
		}
	case *fleetv1.Command_OverrideCheckValue:
		if reason := s.override(body.OverrideCheckValue); reason != "" {
			return s.reject(cmd, reason)
		}
	default:
		return result{outcome: outcomeIgnored}
	}
	return s.finish()
}

func (s *step) reject(cmd *fleetv1.Command, reason string) result {
	d := aggregate.Reject(AggregateType, slim(s.next.GetStatus()), cmd, reason)
	if s.next.GetStatus().GetVersion() == 0 {
		d.Events[0].State = nil
	}
	return result{events: d.Events, traceID: cmd.GetTraceId(), outcome: outcomeRejected}
}

// checkTypeReason is why a check cannot be selected on the target, or "".
func (s *step) checkTypeReason(id, targetType string) string {
	c, ok := s.r.cat.Check(id)
	if !ok {
		return fmt.Sprintf("check %q is not in the catalog; GET /api/v1/checks/catalog lists the checks", id)
	}
	if targetType != "" && c.TargetType() != targetType {
		return fmt.Sprintf("check %s applies to %ss, not to %ss", id, c.TargetType(), targetType)
	}
	return ""
}

func (s *step) commandTargetType(t string) string {
	if cur := s.next.GetStatus().GetTargetType(); cur != "" {
		if t != "" && t != cur {
			return fmt.Sprintf("%s is a %s, not a %s", s.key, cur, t)
		}
		return ""
	}
	if t != TargetHost && t != TargetCluster {
		return fmt.Sprintf("target_type %q must be %q or %q", t, TargetHost, TargetCluster)
	}
	s.setTargetType(t)
	return ""
}

func (s *step) selectChecks(c *fleetv1.SelectChecks) string {
	if reason := s.commandTargetType(c.GetTargetType()); reason != "" {
		return reason
	}
	ids := slices.Clone(c.GetCheckIds())
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if reason := s.checkTypeReason(id, s.next.Status.GetTargetType()); reason != "" {
			return reason
		}
	}
	st := s.next.Status
	if st.GetSelectionSet() && slices.Equal(st.GetSelected(), ids) {
		return ""
	}
	e := &fleetv1.ChecksSelected{CheckIds: ids, PreviousCheckIds: st.GetSelected(), PreviouslyDefault: !st.GetSelectionSet(), Actor: c.GetActor()}
	st.SelectionSet, st.Selected = true, ids
	s.record(&fleetv1.Event{Payload: &fleetv1.Event_ChecksSelected{ChecksSelected: e}})
	s.changed, s.dirty = true, true
	return ""
}

func (s *step) override(o *fleetv1.OverrideCheckValue) string {
	if reason := s.commandTargetType(o.GetTargetType()); reason != "" {
		return reason
	}
	if reason := s.checkTypeReason(o.GetCheckId(), s.next.Status.GetTargetType()); reason != "" {
		return reason
	}
	c, _ := s.r.cat.Check(o.GetCheckId())
	if !slices.ContainsFunc(c.Values, func(v catalog.Value) bool { return v.Name == o.GetName() }) {
		names := make([]string, 0, len(c.Values))
		for _, v := range c.Values {
			names = append(names, v.Name)
		}
		return fmt.Sprintf("check %s has no value %q (its values: %s)", c.ID, o.GetName(), strings.Join(names, ", "))
	}
	if !o.GetResetToDefault() && o.GetValue() == nil {
		return "a value override needs a value (or reset_to_default to go back to the default)"
	}
	st := s.next.Status
	i := slices.IndexFunc(st.Overrides, func(v *fleetv1.CheckValue) bool {
		return v.GetCheckId() == o.GetCheckId() && v.GetName() == o.GetName()
	})
	e := &fleetv1.CheckValueOverridden{CheckId: o.GetCheckId(), Name: o.GetName(), Actor: o.GetActor()}
	if i >= 0 {
		e.Before = st.Overrides[i].GetValue()
	}
	switch {
	case o.GetResetToDefault() && i < 0:
		return ""
	case o.GetResetToDefault():
		st.Overrides = slices.Delete(st.Overrides, i, i+1)
	case i >= 0 && proto.Equal(st.Overrides[i].GetValue(), o.GetValue()):
		return ""
	default:
		e.After = o.GetValue()
		v := &fleetv1.CheckValue{CheckId: o.GetCheckId(), Name: o.GetName(), Value: o.GetValue(), Actor: o.GetActor(), At: s.at}
		if i >= 0 {
			st.Overrides[i] = v
		} else {
			st.Overrides = append(st.Overrides, v)
			slices.SortFunc(st.Overrides, func(a, b *fleetv1.CheckValue) int {
				return cmp.Or(cmp.Compare(a.GetCheckId(), b.GetCheckId()), cmp.Compare(a.GetName(), b.GetName()))
			})
		}
	}
	s.record(&fleetv1.Event{Payload: &fleetv1.Event_CheckValueOverridden{CheckValueOverridden: proto.CloneOf(e)}})
	s.changed, s.dirty = true, true
	return ""
}

// record stamps e, whose payload is set, as the target's next checks
// version.
func (s *step) record(e *fleetv1.Event) {
	st := s.next.Status
	st.Version++
	st.UpdatedAt = s.at
	s.changed = true
	e.EventId = aggregate.EventID(AggregateType, s.key, st.GetVersion())
	e.AggregateType = AggregateType
	e.AggregateId = s.key
	e.Version = st.GetVersion()
	e.OccurredAt = s.at
	e.TraceId = s.traceID
	e.CommandId = s.cause
	e.State = &fleetv1.AggregateState{State: &fleetv1.AggregateState_Checks{Checks: slim(st)}}
	s.events = append(s.events, e)
}

// slim is a status as events carry it: without results.
func slim(st *fleetv1.ChecksStatus) *fleetv1.ChecksStatus {
	if st == nil {
		return nil
	}
	c := proto.CloneOf(st)
	c.Results = nil
	return c
}

// evaluate re-evaluates the target's selected, applicable checks and
// records the results that changed.
func (s *step) evaluate() {
	if s.next.Status.GetTargetType() == "" {
		return
	}
	s.evaluatePass(s.newPass())
}

// evaluatePass evaluates the target's checks on what p prepared.
func (s *step) evaluatePass(p *pass) {
	st := s.next.Status
	targetType := st.GetTargetType()
	env := p.env
	current := map[string]*fleetv1.CheckResult{}
	for _, r := range st.GetResults() {
		current[r.GetCheckId()] = r
	}
	next := map[string]*fleetv1.CheckResult{}
	for _, c := range s.r.cat.Checks() {
		if c.TargetType() != targetType || (st.GetSelectionSet() && !slices.Contains(st.GetSelected(), c.ID)) {
			continue
		}
		applies, err := c.Applies(env)
		if err != nil {
			next[c.ID] = &fleetv1.CheckResult{Result: catalog.Error, Error: fmt.Sprintf("applies: %v", err)}
			s.evaluated(catalog.Error)
			continue
		}
		if !applies {
			continue
		}
		targets, ready := p.targets(c)
		if !ready {
			// A fact still in transit (a host that just joined the
			// cluster, a fact not gathered yet) is no reason to drop a
			// result: the check keeps it until it can be evaluated
			// again, so its history and the health do not flap.
			if r := current[c.ID]; r != nil {
				next[c.ID] = r
			}
			continue
		}
		res := evaluateCheck(c, targets, overridesOf(st.GetOverrides(), c.ID))
		s.evaluated(res.Result)
		if r := current[c.ID]; r != nil && sameAsResult(r, res) {
			// Unchanged: the current result stays, as sameResult would
			// keep it; no need to convert this one.
			next[c.ID] = r
			continue
		}
		next[c.ID] = resultProto(res)
	}
	ids := slices.Sorted(maps.Keys(next))
	for id := range current {
		if _, ok := next[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var results []*fleetv1.CheckResult
	for _, id := range ids {
		before, after := current[id], next[id]
		if sameResult(before, after) {
			results = append(results, before)
			continue
		}
		e := &fleetv1.CheckResultChanged{CheckId: id, Before: before.GetResult(), After: after.GetResult()}
		s.record(&fleetv1.Event{Payload: &fleetv1.Event_CheckResultChanged{CheckResultChanged: e}})
		rec := after
		if rec == nil {
			rec = &fleetv1.CheckResult{}
		}
		c, _ := s.r.cat.Check(id)
		rec.CheckId, rec.EntityId, rec.EntityType = id, s.key, targetType
		if c != nil {
			rec.Group, rec.Severity = c.Group, c.Severity
		}
		rec.EvaluatedAt, rec.Version = s.at, st.GetVersion()
		if after != nil {
			e.Result = rec
			results = append(results, rec)
		}
		s.results = append(s.results, proto.CloneOf(rec))
	}
	st.Results = results
	if h := health(results); h != st.GetHealth() {
		st.Health = h
		s.changed = true
		s.healthCommand(h)
	}
}

// evaluated counts one check evaluation whose result is result.
func (s *step) evaluated(result string) {
	if s.evaluations == nil {
		s.evaluations = map[string]int{}
	}
	s.evaluations[result]++
}

// healthCommand sends the target's checks health to its aggregate.
func (s *step) healthCommand(h string) {
	st := s.next.Status
	cmd := &fleetv1.Command{
		CommandId:   uuid.NewSHA1(commandNamespace, fmt.Appendf(nil, "health/%s/%d", s.key, st.GetVersion())).String(),
		AggregateId: s.key,
		IssuedAt:    s.at,
		TraceId:     s.traceID,
	}
	body := &fleetv1.UpdateChecksHealth{Health: h}
	if st.GetTargetType() == TargetCluster {
		cmd.Body = &fleetv1.Command_UpdateClusterChecksHealth{UpdateClusterChecksHealth: body}
	} else {
		cmd.Body = &fleetv1.Command_UpdateHostChecksHealth{UpdateHostChecksHealth: body}
	}
	s.commands = append(s.commands, healthCommand{targetType: st.GetTargetType(), cmd: cmd})
}

// pass is what every check of one evaluation of a target shares, built
// once for the pass rather than once per check: the target's env, each
// cluster member's env, and the stored facts decoded from their JSON (a
// cluster's ha_cluster_discovery is read by most cluster checks).
//
// The decoded values are shared read-only by every check of the pass: the
// engine only reads facts (CEL has no operator that modifies a value, its
// native adapter wraps Go maps and slices without writing them, and the
// catalog's functions and result conversion build new values), which
// TestEvaluationDoesNotModifySharedFacts checks through a pass and
// benchmarks/checks' TestEngineLeavesFactsAsDecoded on the whole catalog
// with every fact it reads.
type pass struct {
	key     string
	env     map[string]any
	host    []*fleetv1.Fact // a host target's facts
	members []passMember    // a cluster target's members
	decoded decodedFacts
}

type passMember struct {
	id    string
	env   map[string]any
	facts []*fleetv1.Fact
}

// decodedFacts are stored facts decoded from their JSON, each once.
type decodedFacts map[*fleetv1.Fact]decodedFact

type decodedFact struct {
	value any
	err   error
}

// value is f decoded (factValue), decoding it on first use.
func (d decodedFacts) value(f *fleetv1.Fact) (any, error) {
	if v, ok := d[f]; ok {
		return v.value, v.err
	}
	v, err := factValue(f)
	d[f] = decodedFact{value: v, err: err}
	return v, err
}

func (s *step) newPass() *pass {
	targetType := s.next.Status.GetTargetType()
	env := envMap(s.next.GetEnv())
	env[EnvTargetType] = targetType
	p := &pass{key: s.key, env: env, decoded: decodedFacts{}}
	if targetType != TargetCluster {
		p.host = s.next.GetFacts()
		return p
	}
	for _, m := range s.next.GetMembers() {
		p.members = append(p.members, passMember{id: m.GetHostId(), env: memberEnv(env, m), facts: m.GetFacts()})
	}
	return p
}

// targets are the targets a check is evaluated on: the host, or every
// member of the cluster; not ready while a fact is unknown on one of them.
func (p *pass) targets(c *catalog.Check) ([]catalog.Target, bool) {
	if c.TargetType() == TargetHost {
		t, ok := p.target(c, p.key, p.env, p.host)
		return []catalog.Target{t}, ok
	}
	if len(p.members) == 0 {
		return nil, false
	}
	out := make([]catalog.Target, 0, len(p.members))
	for _, m := range p.members {
		t, ok := p.target(c, m.id, m.env, m.facts)
		if !ok {
			return nil, false
		}
		out = append(out, t)
	}
	return out, true
}

// target builds one engine target from stored facts; false when one of
// the check's facts was never gathered.
func (p *pass) target(c *catalog.Check, id string, env map[string]any, facts []*fleetv1.Fact) (catalog.Target, bool) {
	t := catalog.Target{ID: id, Env: env, Facts: make(map[string]any, len(c.Facts)), FactErrors: map[string]string{}}
	for _, cf := range c.Facts {
		arg, err := resolve(cf, env)
		if err != nil {
			t.FactErrors[cf.Name] = err.Error()
			continue
		}
		f := findFact(facts, cf.Gatherer, arg)
		if f == nil {
			return t, false
		}
		if f.GetError() != "" {
			t.FactErrors[cf.Name] = f.GetError()
			continue
		}
		v, err := p.decoded.value(f)
		if err != nil {
			t.FactErrors[cf.Name] = err.Error()
			continue
		}
		t.Facts[cf.Name] = v
	}
	return t, true
}

// resolve is cf's argument on a target whose env is env; an argument
// without placeholders (most) needs no regular expression.
func resolve(cf catalog.Fact, env map[string]any) (string, error) {
	if !strings.Contains(cf.Argument, "${") {
		return cf.Argument, nil
	}
	return cf.ResolveArgument(env)
}

// memberEnv is a cluster member's env as its target in a cluster check:
// the host's attributes, then the cluster's.
func memberEnv(cluster map[string]any, m *fleetv1.MemberFacts) map[string]any {
	env := envMap(m.GetEnv())
	maps.Copy(env, cluster)
	return env
}

func overridesOf(overrides []*fleetv1.CheckValue, checkID string) map[string]any {
	var out map[string]any
	for _, o := range overrides {
		if o.GetCheckId() == checkID {
			if out == nil {
				out = map[string]any{}
			}
			out[o.GetName()] = valueOf(o.GetValue())
		}
	}
	return out
}

// evaluateCheck runs the engine, which promises never to panic; a panic
// anyway is that check's error, not the processor's crash.
func evaluateCheck(c *catalog.Check, targets []catalog.Target, overrides map[string]any) (r *catalog.Result) {
	defer func() {
		if p := recover(); p != nil {
			r = &catalog.Result{CheckID: c.ID, Result: catalog.Error, Error: fmt.Sprintf("evaluation failed: %v", p)}
		}
	}()
	return c.Evaluate(targets, overrides)
}

func resultProto(r *catalog.Result) *fleetv1.CheckResult {
	out := &fleetv1.CheckResult{CheckId: r.CheckID, Result: r.Result, Error: r.Error, Messages: r.Messages}
	for _, t := range r.Targets {
		out.Targets = append(out.Targets, &fleetv1.CheckTargetResult{
			TargetId: t.ID, Result: t.Result, Values: toStruct(t.Values), Messages: t.Messages, Error: t.Error, TimedOut: t.TimedOut,
		})
	}
	return out
}

// sameAsResult is sameResult of a stored result and an engine result not
// yet converted.
func sameAsResult(a *fleetv1.CheckResult, r *catalog.Result) bool {
	if a.GetResult() != r.Result || a.GetError() != r.Error || !slices.Equal(a.GetMessages(), r.Messages) || len(a.GetTargets()) != len(r.Targets) {
		return false
	}
	for i, t := range a.GetTargets() {
		u := r.Targets[i]
		if t.GetTargetId() != u.ID || t.GetResult() != u.Result || t.GetError() != u.Error || !slices.Equal(t.GetMessages(), u.Messages) {
			return false
		}
	}
	return true
}

// sameResult compares what a reader of results sees change: the result,
// its error and messages, and the per-target results.
func sameResult(a, b *fleetv1.CheckResult) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if a.GetResult() != b.GetResult() || a.GetError() != b.GetError() || !slices.Equal(a.GetMessages(), b.GetMessages()) || len(a.GetTargets()) != len(b.GetTargets()) {
		return false
	}
	for i, t := range a.GetTargets() {
		u := b.GetTargets()[i]
		if t.GetTargetId() != u.GetTargetId() || t.GetResult() != u.GetResult() || t.GetError() != u.GetError() || !slices.Equal(t.GetMessages(), u.GetMessages()) {
			return false
		}
	}
	return true
}

// health is the worst of results, "error" counting as critical; unknown
// when there are none.
func health(results []*fleetv1.CheckResult) string {
	h := HealthUnknown
	for _, r := range results {
		switch r.GetResult() {
		case catalog.Error, catalog.Critical:
			return HealthCritical
		case catalog.Warning:
			h = HealthWarning
		case catalog.Passing:
			if h == HealthUnknown {
				h = HealthPassing
			}
		}
	}
	return h
}

// Worst is the execution result of results: the worst, "error" counting as
// critical; passing when there are none.
func Worst(results []*fleetv1.CheckResult) string {
	if h := health(results); h != HealthUnknown {
		return h
	}
	return HealthPassing
}

func envString(env map[string]any, key string) string {
	s, _ := env[key].(string)
	return s
}
