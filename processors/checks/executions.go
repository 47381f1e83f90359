package checks

// # On-demand executions (group fleet.checks.executions)
//
// An execution runs chosen checks once, on facts gathered for it, across a
// target group: a cluster (its member hosts) or a single host. The group is
// keyed by target group id, which is also the key of the group's target in
// the continuous evaluation table; that table is joined, so an execution
// takes its defaults (targets: the cluster's hosts; checks: the
// selection), env, value overrides and derived facts from there.
//
//  1. RequestExecution (fleet.commands.checks.v1, keyed by group id) →
//     ExecutionRequested, and a FactsGatheringRequested per target agent on
//     fleet.agent.requests.v1 (keyed by agent id) naming the facts of the
//     checks that an agent gathers (derived "discovery.*" facts are not
//     asked for: they come from the joined table). A request while
//     another execution of the group runs is rejected (CommandRejected
//     naming the running execution; the API answers 409).
//  2. Agents answer FactsGathered on fleet.facts.v1 (keyed by agent id, with
//     the execution id); this group forwards each answer over its loop
//     topic to the group id key.
//  3. When every target answered, or at the deadline (a ticker visits the
//     table; the completion time is the deadline, never the clock, so the
//     records do not depend on when the ticker ran), the checks are
//     evaluated: an agent that did not answer is a timed-out target
//     (critical), and ExecutionCompleted carries the per-check results and
//     the execution's result, its worst check ("error" counting as
//     critical).

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// ExecutionAggregateType is the aggregate_type of execution events; their
// aggregate id is the target group id.
const ExecutionAggregateType = "checks_execution"

// Execution statuses.
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
)

// DefaultExecutionTimeout is how long agents have to answer when neither
// the request nor the processor's configuration says.
const DefaultExecutionTimeout = 30 * time.Second

// execResult is what one input does to one target group's executions.
type execResult struct {
	// state is the table value after the input, nil when unchanged.
	state    *fleetv1.ExecutionsTable
	events   []*fleetv1.Event
	requests []*fleetv1.FactsGatheringRequested
	traceID  string
	outcome  outcome
	// completed is the result of the execution completed, if any.
	completed string
}

// execStep accumulates the effects of one input on one target group.
type execStep struct {
	r       *Rules
	key     string
	next    *fleetv1.ExecutionsTable
	target  *fleetv1.ChecksTarget
	traceID string
	res     execResult
}

func (r *Rules) newExecStep(table *fleetv1.ExecutionsTable, target *fleetv1.ChecksTarget, key, traceID string) *execStep {
	next := &fleetv1.ExecutionsTable{Group: &fleetv1.ExecutionGroup{GroupId: key}}
	if table != nil {
		next = proto.CloneOf(table)
		if next.Group == nil {
			next.Group = &fleetv1.ExecutionGroup{GroupId: key}
		}
	}
	return &execStep{r: r, key: key, next: next, target: target, traceID: traceID, res: execResult{traceID: traceID, outcome: outcomeUnchanged}}
}

func (s *execStep) result() execResult {
	if s.res.state == nil && s.res.outcome == outcomeApplied {
		s.res.state = s.next
	}
	return s.res
}

// requestExecution starts an execution, or rejects the request.
func (r *Rules) requestExecution(table *fleetv1.ExecutionsTable, target *fleetv1.ChecksTarget, cmd *fleetv1.Command, defaultTimeout time.Duration) execResult {
	req := cmd.GetRequestExecution()
	s := r.newExecStep(table, target, cmd.GetAggregateId(), cmd.GetTraceId())
	g := s.next.Group
	switch {
	case req.GetExecutionId() == "":
		return s.reject(cmd, "a request needs an execution_id")
	case g.GetRunning().GetId() == req.GetExecutionId() || g.GetLast().GetId() == req.GetExecutionId():
		return s.result() // redelivered
	case g.GetRunning() != nil:
		g.RejectedExecutionId, g.RejectedBecauseOf = req.GetExecutionId(), g.GetRunning().GetId()
		res := s.reject(cmd, fmt.Sprintf("execution %s is running on %s; wait for it to complete", g.GetRunning().GetId(), s.key))
		res.state = s.next
		return res
	}
	targetType := target.GetStatus().GetTargetType()
	if targetType == "" {
		return s.reject(cmd, fmt.Sprintf("no host or cluster %s has been discovered", s.key))
	}
	targets, reason := s.executionTargets(targetType, req.GetTargets())
	if reason != "" {
		return s.reject(cmd, reason)
	}
	checkIDs, reason := s.executionChecks(targetType, req.GetCheckIds())
	if reason != "" {
		return s.reject(cmd, reason)
	}
	timeout := defaultTimeout
	if req.GetTimeoutMs() > 0 {
		timeout = time.Duration(req.GetTimeoutMs()) * time.Millisecond
	}
	at := cmd.GetIssuedAt()
	exec := &fleetv1.Execution{
		Id: req.GetExecutionId(), GroupId: s.key, TargetType: targetType, Status: StatusRunning,
		Targets: targets, CheckIds: checkIDs, RequestedAt: at,
		Deadline: timestamppb.New(at.AsTime().Add(timeout)), Actor: req.GetActor(),
	}
	env := s.groupEnv(targetType)
	for _, agent := range targets {
		facts := s.agentFacts(checkIDs, s.agentEnv(agent, env))
		if len(facts) == 0 {
			exec.Answered = append(exec.Answered, agent) // nothing to gather there
			continue
		}
		s.res.requests = append(s.res.requests, &fleetv1.FactsGatheringRequested{
			ExecutionId: exec.GetId(), GroupId: s.key, AgentId: agent, Facts: facts, RequestedAt: at,
		})
	}
	g.Running = exec
	s.next.Answers = nil
	s.record(cmd.GetCommandId(), at, &fleetv1.Event{Payload: &fleetv1.Event_ExecutionRequested{ExecutionRequested: &fleetv1.ExecutionRequested{Execution: proto.CloneOf(exec)}}})
	if len(exec.GetAnswered()) == len(exec.GetTargets()) {
		s.complete(at)
	}
	return s.result()
}

func (s *execStep) reject(cmd *fleetv1.Command, reason string) execResult {
	d := aggregate.Reject(ExecutionAggregateType, s.next.GetGroup(), cmd, reason)
	if s.next.GetGroup().GetVersion() == 0 {
		d.Events[0].State = nil
	}
	s.res.events = append(s.res.events, d.Events...)
	s.res.outcome = outcomeRejected
	return s.res
}

// executionTargets are the requested agents, by default every member of
// the cluster or the host itself.
func (s *execStep) executionTargets(targetType string, requested []string) ([]string, string) {
	var members []string
	if targetType == TargetHost {
		members = []string{s.key}
	} else {
		for _, m := range s.target.GetMembers() {
			members = append(members, m.GetHostId())
		}
	}
	if len(requested) == 0 {
		if len(members) == 0 {
			return nil, fmt.Sprintf("cluster %s has no hosts to run checks on", s.key)
		}
		return members, ""
	}
	targets := slices.Clone(requested)
	slices.Sort(targets)
	targets = slices.Compact(targets)
	for _, t := range targets {
		if !slices.Contains(members, t) {
			return nil, fmt.Sprintf("%s is not a host of %s %s (its hosts: %s)", t, targetType, s.key, strings.Join(members, ", "))
		}
	}
	return targets, ""
}

// executionChecks are the requested checks, by default the group's
// selection (every applicable check when it has none).
func (s *execStep) executionChecks(targetType string, requested []string) ([]string, string) {
	st := s.target.GetStatus()
	var ids []string
	switch {
	case len(requested) > 0:
		ids = slices.Clone(requested)
	case st.GetSelectionSet():
		ids = slices.Clone(st.GetSelected())
	default:
		env := envMap(s.target.GetEnv())
		env[EnvTargetType] = targetType
		for _, c := range s.r.cat.Checks() {
			if c.TargetType() != targetType {
				continue
			}
			if ok, err := c.Applies(env); err == nil && ok {
				ids = append(ids, c.ID)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil, fmt.Sprintf("no checks are selected for %s: select checks or name them in the request", s.key)
	}
	for _, id := range ids {
		c, ok := s.r.cat.Check(id)
		if !ok {
			return nil, fmt.Sprintf("check %q is not in the catalog; GET /api/v1/checks/catalog lists the checks", id)
		}
		if c.TargetType() != targetType {
			return nil, fmt.Sprintf("check %s applies to %ss, not to %ss", id, c.TargetType(), targetType)
		}
	}
	return ids, ""
}

// agentFacts are the facts an agent whose env is env must gather for
// checkIDs: all but the derived ones, arguments resolved. A fact whose
// argument cannot be resolved is not asked for: the evaluation reports it.
func (s *execStep) agentFacts(checkIDs []string, env map[string]any) []*fleetv1.FactRequest {
	var out []*fleetv1.FactRequest
	for _, id := range checkIDs {
		c, _ := s.r.cat.Check(id)
		for _, f := range c.Facts {
			if IsDerived(f.Gatherer) {
				continue
			}
			if arg, err := f.ResolveArgument(env); err == nil {
				out = append(out, &fleetv1.FactRequest{CheckId: id, Name: f.Name, Gatherer: f.Gatherer, Argument: arg})
			}
		}
	}
	return out
}

// groupEnv is the target group's env.
func (s *execStep) groupEnv(targetType string) map[string]any {
	env := envMap(s.target.GetEnv())
	env[EnvTargetType] = targetType
	return env
}

// agentEnv is the env of one target agent of the group: a cluster
// member's attributes, then the cluster's.
func (s *execStep) agentEnv(agent string, group map[string]any) map[string]any {
	if s.target.GetStatus().GetTargetType() == TargetCluster {
		if m := s.member(agent); m != nil {
			return memberEnv(group, m)
		}
	}
	return group
}

func (s *execStep) member(hostID string) *fleetv1.MemberFacts {
	for _, m := range s.target.GetMembers() {
		if m.GetHostId() == hostID {
			return m
		}
	}
	return nil
}

// executionAnswer records an agent's answer to the running execution.
func (r *Rules) executionAnswer(table *fleetv1.ExecutionsTable, target *fleetv1.ChecksTarget, key string, fg *fleetv1.FactsGathered, traceID string) execResult {
	s := r.newExecStep(table, target, key, traceID)
	exec := s.next.GetGroup().GetRunning()
	if exec == nil || exec.GetId() != fg.GetExecutionId() {
		s.res.outcome = outcomeStale // late: completed, or another execution
		return s.res
	}
	if !slices.Contains(exec.GetTargets(), fg.GetAgentId()) || slices.Contains(exec.GetAnswered(), fg.GetAgentId()) {
		return s.res
	}
	exec.Answered = append(exec.Answered, fg.GetAgentId())
	s.next.Answers = append(s.next.Answers, proto.CloneOf(fg))
	s.res.outcome = outcomeApplied
	if len(exec.GetAnswered()) == len(exec.GetTargets()) {
		at := fg.GetGatheredAt()
		if at == nil || at.AsTime().Before(exec.GetRequestedAt().AsTime()) {
			at = exec.GetRequestedAt()
		}
		s.complete(at)
	}
	return s.result()
}

// expireExecution completes the running execution once now is past its
// deadline.
func (r *Rules) expireExecution(table *fleetv1.ExecutionsTable, target *fleetv1.ChecksTarget, key string, now time.Time) execResult {
	s := r.newExecStep(table, target, key, "")
	exec := s.next.GetGroup().GetRunning()
	if exec == nil || now.Before(exec.GetDeadline().AsTime()) {
		s.res.outcome = outcomeIgnored
		return s.res
	}
	s.complete(exec.GetDeadline())
	return s.result()
}

// complete evaluates the running execution's checks at at.
func (s *execStep) complete(at *timestamppb.Timestamp) {
	g := s.next.Group
	exec := g.Running
	answers := map[string]map[string]*fleetv1.GatheredFact{}
	for _, a := range s.next.GetAnswers() {
		m := map[string]*fleetv1.GatheredFact{}
		for _, f := range a.GetFacts() {
			m[f.GetGatherer()+"\x00"+f.GetArgument()] = f
		}
		answers[a.GetAgentId()] = m
	}
	for _, t := range exec.GetTargets() {
		if !slices.Contains(exec.GetAnswered(), t) {
			exec.TimedOut = append(exec.TimedOut, t)
		}
	}
	env := s.groupEnv(exec.GetTargetType())
	// Checks share the derived facts they read, decoded once (see pass).
	decoded := decodedFacts{}
	for _, id := range exec.GetCheckIds() {
		c, ok := s.r.cat.Check(id)
		if !ok {
			exec.CheckResults = append(exec.CheckResults, &fleetv1.CheckResult{
				CheckId: id, Result: catalog.Error, Error: "the check is no longer in the catalog",
			})
			continue
		}
		var targets []catalog.Target
		for _, agent := range exec.GetTargets() {
			targets = append(targets, s.executionTarget(c, agent, s.agentEnv(agent, env), answers[agent], slices.Contains(exec.GetTimedOut(), agent), decoded))
		}
		res := resultProto(evaluateCheck(c, targets, overridesOf(s.target.GetStatus().GetOverrides(), id)))
		res.Group, res.Severity = c.Group, c.Severity
		exec.CheckResults = append(exec.CheckResults, res)
	}
	for _, res := range exec.CheckResults {
		res.EntityId, res.EntityType, res.EvaluatedAt, res.ExecutionId = s.key, exec.GetTargetType(), at, exec.GetId()
	}
	exec.Status, exec.CompletedAt, exec.Result = StatusCompleted, at, Worst(exec.GetCheckResults())
	g.Last, g.Running = exec, nil
	s.next.Answers = nil
	s.record("execution/"+exec.GetId()+"/completed", at, &fleetv1.Event{Payload: &fleetv1.Event_ExecutionCompleted{ExecutionCompleted: &fleetv1.ExecutionCompleted{Execution: proto.CloneOf(exec)}}})
	s.res.completed = exec.GetResult()
}

// executionTarget builds one agent's target of check c, whose env is env:
// agent-gathered facts from its answer, derived facts from the continuous
// evaluation table.
func (s *execStep) executionTarget(c *catalog.Check, agent string, env map[string]any, answer map[string]*fleetv1.GatheredFact, timedOut bool, decoded decodedFacts) catalog.Target {
	derived := s.target.GetFacts()
	if s.target.GetStatus().GetTargetType() == TargetCluster {
		derived = s.member(agent).GetFacts()
	}
	t := catalog.Target{ID: agent, Env: env, Facts: map[string]any{}, FactErrors: map[string]string{}, TimedOut: timedOut}
	if timedOut {
		return t
	}
	for _, cf := range c.Facts {
		arg, err := cf.ResolveArgument(env)
		if err != nil {
			t.FactErrors[cf.Name] = err.Error()
			continue
		}
		if IsDerived(cf.Gatherer) {
			f := findFact(derived, cf.Gatherer, arg)
			switch {
			case f == nil:
				t.FactErrors[cf.Name] = fmt.Sprintf("no %s has been received from this host yet", strings.TrimSuffix(strings.TrimPrefix(cf.Gatherer, derivedPrefix), "@v1"))
			case f.GetError() != "":
				t.FactErrors[cf.Name] = f.GetError()
			default:
				v, err := decoded.value(f)
				if err != nil {
					t.FactErrors[cf.Name] = err.Error()
				} else {
					t.Facts[cf.Name] = v
				}
			}
			continue
		}
		g, ok := answer[cf.Gatherer+"\x00"+arg]
		switch {
		case !ok:
			t.FactErrors[cf.Name] = "the agent answered without this fact"
		case g.GetError() != "":
			t.FactErrors[cf.Name] = g.GetError()
		default:
			t.Facts[cf.Name] = valueOf(g.GetValue())
		}
	}
	return t
}

// record stamps e as the group's next executions version.
func (s *execStep) record(cause string, at *timestamppb.Timestamp, e *fleetv1.Event) {
	g := s.next.Group
	g.Version++
	e.EventId = aggregate.EventID(ExecutionAggregateType, s.key, g.GetVersion())
	e.AggregateType = ExecutionAggregateType
	e.AggregateId = s.key
	e.Version = g.GetVersion()
	e.OccurredAt = at
	e.TraceId = s.traceID
	e.CommandId = cause
	e.State = &fleetv1.AggregateState{State: &fleetv1.AggregateState_CheckExecutions{CheckExecutions: proto.CloneOf(g)}}
	s.res.events = append(s.res.events, e)
	s.res.outcome = outcomeApplied
}
