package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// ChecksReader reads the checks processors' tables (processors/checks
// Reader): a target's checks (nil when unknown) and a target group's
// executions (nil when it never had one).
type ChecksReader interface {
	Target(id string) (*fleetv1.ChecksStatus, []string, error)
	Executions(groupID string) (*fleetv1.ExecutionGroup, error)
}

// ExecutionFilter narrows the list of executions; empty fields do not
// filter.
type ExecutionFilter struct{ GroupID, Status, Result string }

// ResultFilter narrows the list of check results; see ListResultsRequest.
type ResultFilter struct {
	EntityID, CheckID, Result, ExecutionID, Source string
	Current                                        bool
	Since, Until                                   time.Time
}

// ComplianceFilter selects the compliance counts; see GetComplianceRequest.
type ComplianceFilter struct {
	Group, CheckID, EntityType string
	Since, Until               time.Time
	Bucket                     time.Duration
}

// ChecksStore is the ClickHouse read model of executions and results.
// Pagination and errors follow Store's rules; GetExecution returns nil, nil
// for an unknown id.
type ChecksStore interface {
	ListExecutions(ctx context.Context, f ExecutionFilter, pageSize int, after string) ([]*fleetv1.Execution, string, error)
	GetExecution(ctx context.Context, id string) (*fleetv1.Execution, error)
	ListResults(ctx context.Context, f ResultFilter, pageSize int, after string) ([]*fleetv1.CheckResult, string, error)
	Compliance(ctx context.Context, f ComplianceFilter) ([]*fleetv1.ComplianceBucket, error)
}

// ChecksOptions configure NewChecksService.
type ChecksOptions struct {
	Catalog *catalog.Catalog
	Reader  ChecksReader
	Store   ChecksStore
	// Send produces a checks command (fleet.commands.checks.v1, keyed by
	// its aggregate id) and returns once Kafka acknowledged it.
	Send HostCommandSender
	// Now stamps commands; default time.Now.
	Now func() time.Time
	// ExecutionWait is how long RequestExecution waits for the executions
	// table to show the execution started (or refused); default 5s. Past
	// it the answer is the execution as requested.
	ExecutionWait time.Duration
	Logger        *slog.Logger
}

// ChecksServer implements fleetv1.ChecksServiceServer.
type ChecksServer struct {
	fleetv1.UnimplementedChecksServiceServer
	o    ChecksOptions
	errs *Server
}

// NewChecksService is ChecksService as a Service of the API: reads need
// the read scope, commands the write scope.
func NewChecksService(o ChecksOptions) Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ExecutionWait <= 0 {
		o.ExecutionWait = 5 * time.Second
	}
	impl := &ChecksServer{o: o, errs: &Server{logger: o.Logger}}
	return Service{
		Name:     "ChecksService",
		Register: func(s *grpc.Server) { fleetv1.RegisterChecksServiceServer(s, impl) },
		Gateway:  fleetv1.RegisterChecksServiceHandler,
		Scopes: map[string]Scope{
			fleetv1.ChecksService_ListCatalog_FullMethodName:        ScopeRead,
			fleetv1.ChecksService_GetCatalogCheck_FullMethodName:    ScopeRead,
			fleetv1.ChecksService_RequestExecution_FullMethodName:   ScopeWrite,
			fleetv1.ChecksService_ListExecutions_FullMethodName:     ScopeRead,
			fleetv1.ChecksService_GetExecution_FullMethodName:       ScopeRead,
			fleetv1.ChecksService_GetLastExecution_FullMethodName:   ScopeRead,
			fleetv1.ChecksService_ListResults_FullMethodName:        ScopeRead,
			fleetv1.ChecksService_GetCompliance_FullMethodName:      ScopeRead,
			fleetv1.ChecksService_GetTargetChecks_FullMethodName:    ScopeRead,
			fleetv1.ChecksService_SelectChecks_FullMethodName:       ScopeWrite,
			fleetv1.ChecksService_OverrideCheckValue_FullMethodName: ScopeWrite,
		},
	}
}

var (
	targetTypes      = []string{catalog.TargetHost, catalog.TargetCluster}
	executionStatus  = []string{"running", "completed"}
	executionResults = []string{catalog.Passing, catalog.Warning, catalog.Critical}
	resultValues     = []string{catalog.Passing, catalog.Warning, catalog.Critical, catalog.Error}
	resultSources    = []string{"continuous", "execution"}
)

// oneOf checks an optional enumerated parameter.
func oneOf(param, value string, allowed []string) error {
	if value != "" && !slices.Contains(allowed, value) {
		return status.Errorf(codes.InvalidArgument, "%s must be one of %s; got %q", param, strings.Join(allowed, ", "), value)
	}
	return nil
}

// ListCatalog lists the catalog's checks that match every filter.
func (s *ChecksServer) ListCatalog(_ context.Context, req *fleetv1.ListCatalogRequest) (*fleetv1.ListCatalogResponse, error) {
	if err := oneOf("target_type", req.GetTargetType(), targetTypes); err != nil {
		return nil, err
	}
	if err := oneOf("provider", req.GetProvider(), providers); err != nil {
		return nil, err
	}
	if err := oneOf("cluster_type", req.GetClusterType(), clusterTypes); err != nil {
		return nil, err
	}
	selectors := map[string]string{}
	if req.GetProvider() != "" {
		selectors["provider"] = req.GetProvider()
	}
	if req.GetClusterType() != "" {
		selectors["cluster_type"] = req.GetClusterType()
	}
	for _, m := range req.GetMetadata() {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" || v == "" {
			return nil, status.Errorf(codes.InvalidArgument, "metadata must be key=value (e.g. metadata=arch=x86_64); got %q", m)
		}
		selectors[k] = v
	}
	out := &fleetv1.ListCatalogResponse{}
	for _, c := range s.o.Catalog.Checks() {
		if (req.GetGroup() != "" && c.Group != req.GetGroup()) || (req.GetTargetType() != "" && c.TargetType() != req.GetTargetType()) {
			continue
		}
		if !metadataMatches(c.Metadata, selectors) {
			continue
		}
		cc, err := catalogCheck(c)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "check %s: %v", c.ID, err)
		}
		out.Checks = append(out.Checks, cc)
	}
	return out, nil
}

// metadataMatches: a check whose metadata does not name a key applies
// whatever its value; one that names it must hold the value (or list it).
func metadataMatches(md map[string]any, selectors map[string]string) bool {
	for k, want := range selectors {
		v, ok := md[k]
		if !ok {
			continue
		}
		switch v := v.(type) {
		case []any:
			if !slices.ContainsFunc(v, func(e any) bool { return fmt.Sprint(e) == want }) {
				return false
			}
		default:
			if fmt.Sprint(v) != want {
				return false
			}
		}
	}
	return true
}

// GetCatalogCheck reads one check of the catalog.
func (s *ChecksServer) GetCatalogCheck(_ context.Context, req *fleetv1.GetCatalogCheckRequest) (*fleetv1.CatalogCheck, error) {
	c, ok := s.o.Catalog.Check(req.GetId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "check %q is not in the catalog; GET /api/v1/checks/catalog lists the checks", req.GetId())
	}
	cc, err := catalogCheck(c)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "check %s: %v", c.ID, err)
	}
	return cc, nil
}

func catalogCheck(c *catalog.Check) (*fleetv1.CatalogCheck, error) {
	md, err := structpb.NewStruct(c.Metadata)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := &fleetv1.CatalogCheck{Id: c.ID, Name: c.Name, Group: c.Group, Description: c.Description, Remediation: c.Remediation,
		Severity: c.Severity, TargetType: c.TargetType(), Metadata: md, When: c.When, Exclude: c.Exclude}
	for _, f := range c.Facts {
		out.Facts = append(out.Facts, &fleetv1.CatalogFact{Name: f.Name, Gatherer: f.Gatherer, Argument: f.Argument})
	}
	for _, v := range c.Values {
		def, err := structpb.NewValue(v.Default)
		if err != nil {
			return nil, fmt.Errorf("value %s: %w", v.Name, err)
		}
		cv := &fleetv1.CatalogValue{Name: v.Name, Default: def}
		for _, cond := range v.Conditions {
			val, err := structpb.NewValue(cond.Value)
			if err != nil {
				return nil, fmt.Errorf("value %s: %w", v.Name, err)
			}
			cv.Conditions = append(cv.Conditions, &fleetv1.CatalogCondition{Value: val, When: cond.When})
		}
		out.Values = append(out.Values, cv)
	}
	for _, e := range c.Expectations {
		out.Expectations = append(out.Expectations, &fleetv1.CatalogExpectation{Name: e.Name, Kind: e.Kind, Expression: e.Expression})
	}
	return out, nil
}

// maxExecutionTimeout bounds a request's timeout_ms.
const maxExecutionTimeout = time.Hour

// RequestExecution checks the request against the tables, sends
// RequestExecution and waits for the executions table to show the
// execution running (or completed), or refused because another one runs:
// 409.
func (s *ChecksServer) RequestExecution(ctx context.Context, req *fleetv1.RequestExecutionRequest) (*fleetv1.Execution, error) {
	group := req.GetGroupId()
	switch {
	case group == "":
		return nil, status.Error(codes.InvalidArgument, "group_id is required: the id of the cluster or host to run checks on")
	case req.GetTimeoutMs() < 0 || time.Duration(req.GetTimeoutMs())*time.Millisecond > maxExecutionTimeout:
		return nil, status.Errorf(codes.InvalidArgument, "timeout_ms must be between 0 and %d; got %d", maxExecutionTimeout.Milliseconds(), req.GetTimeoutMs())
	}
	id := req.GetExecutionId()
	if id == "" {
		id = uuid.NewString()
	} else if _, err := uuid.Parse(id); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "execution_id must be a UUID; got %q", id)
	}
	target, members, err := s.o.Reader.Target(group)
	if err != nil {
		return nil, s.errs.readError(ctx, "read the checks of "+group, err)
	}
	if target == nil {
		return nil, status.Errorf(codes.NotFound, "no host or cluster %q is known to the checks processor", group)
	}
	for _, c := range req.GetCheckIds() {
		ch, ok := s.o.Catalog.Check(c)
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "check_ids: %q is not in the catalog; GET /api/v1/checks/catalog lists the checks", c)
		}
		if ch.TargetType() != target.GetTargetType() {
			return nil, status.Errorf(codes.InvalidArgument, "check_ids: %s applies to %ss, and %s is a %s", c, ch.TargetType(), group, target.GetTargetType())
		}
	}
	hosts := members
	if target.GetTargetType() == catalog.TargetHost {
		hosts = []string{group}
	}
	for _, t := range req.GetTargets() {
		if !slices.Contains(hosts, t) {
			return nil, status.Errorf(codes.InvalidArgument, "targets: %s is not a host of %s %s (its hosts: %s)", t, target.GetTargetType(), group, strings.Join(hosts, ", "))
		}
	}
	g, err := s.o.Reader.Executions(group)
	if err != nil {
		return nil, s.errs.readError(ctx, "read the executions of "+group, err)
	}
	if e := started(g, id); e != nil {
		return e, nil // a retried request
	}
	if r := g.GetRunning(); r != nil {
		return nil, runningConflict(group, r.GetId())
	}
	now := timestamppb.New(s.o.Now())
	cmd := &fleetv1.Command{CommandId: uuid.NewString(), AggregateId: group, IssuedAt: now, TraceId: uuid.NewString(),
		Body: &fleetv1.Command_RequestExecution{RequestExecution: &fleetv1.RequestExecution{
			ExecutionId: id, Targets: req.GetTargets(), CheckIds: req.GetCheckIds(), Actor: actor, TimeoutMs: req.GetTimeoutMs()}}}
	if err := s.o.Send(ctx, cmd); err != nil {
		s.o.Logger.Error("request execution: send command", "group", group, "err", err)
		return nil, status.Errorf(codes.Unavailable, "RequestExecution for %s was not accepted by Kafka: %v; retry", group, err)
	}
	deadline := time.Now().Add(s.o.ExecutionWait)
	for time.Now().Before(deadline) {
		g, err := s.o.Reader.Executions(group)
		if err == nil {
			if e := started(g, id); e != nil {
				return e, nil
			}
			if g.GetRejectedExecutionId() == id {
				return nil, runningConflict(group, g.GetRejectedBecauseOf())
			}
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Accepted by Kafka, not applied yet: 202 with what was asked for.
	if err := grpc.SetHeader(ctx, metadata.Pairs(httpCodeHeader, strconv.Itoa(http.StatusAccepted))); err != nil {
		return nil, status.Errorf(codes.Internal, "set the HTTP status: %v", err)
	}
	return &fleetv1.Execution{Id: id, GroupId: group, TargetType: target.GetTargetType(), Status: "requested",
		Targets: req.GetTargets(), CheckIds: req.GetCheckIds(), RequestedAt: now, Actor: actor}, nil
}

// actor names the API in commands; API keys carry no user identity yet.
const actor = "api"

func runningConflict(group, running string) error {
	return status.Errorf(codes.Aborted, "execution %s is running on %s; wait for it to complete (GET /api/v1/checks/executions/last/%s)", running, group, group)
}

// started is the execution id of g, running or last, or nil.
func started(g *fleetv1.ExecutionGroup, id string) *fleetv1.Execution {
	switch id {
	case g.GetRunning().GetId():
		return proto.CloneOf(g.GetRunning())
	case g.GetLast().GetId():
		return proto.CloneOf(g.GetLast())
	}
	return nil
}

// ListExecutions lists executions from the read model, newest first.
func (s *ChecksServer) ListExecutions(ctx context.Context, req *fleetv1.ListExecutionsRequest) (*fleetv1.ListExecutionsResponse, error) {
	if err := oneOf("status", req.GetStatus(), executionStatus); err != nil {
		return nil, err
	}
	if err := oneOf("result", req.GetResult(), executionResults); err != nil {
		return nil, err
	}
	size, after, err := page("check_executions", req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	es, last, err := s.o.Store.ListExecutions(ctx, ExecutionFilter{GroupID: req.GetGroupId(), Status: req.GetStatus(), Result: req.GetResult()}, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list check executions", err)
	}
	return &fleetv1.ListExecutionsResponse{Executions: es, NextPageToken: encodePageToken("check_executions", last)}, nil
}

// GetExecution reads one execution: from the executions table when it is
// its group's running or last one (always current), else from the read
// model.
func (s *ChecksServer) GetExecution(ctx context.Context, req *fleetv1.GetExecutionRequest) (*fleetv1.Execution, error) {
	id := req.GetId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	group := req.GetGroupId()
	var stored *fleetv1.Execution
	if group == "" {
		var err error
		if stored, err = s.o.Store.GetExecution(ctx, id); err != nil {
			return nil, s.errs.readError(ctx, "read check execution "+id, err)
		}
		group = stored.GetGroupId()
	}
	if group != "" {
		g, err := s.o.Reader.Executions(group)
		if err != nil {
			return nil, s.errs.readError(ctx, "read the executions of "+group, err)
		}
		if e := started(g, id); e != nil {
			return e, nil
		}
	}
	if stored == nil {
		return nil, status.Errorf(codes.NotFound, "execution %s not found", id)
	}
	return stored, nil
}

// GetLastExecution reads a target group's running and last executions.
func (s *ChecksServer) GetLastExecution(ctx context.Context, req *fleetv1.GetLastExecutionRequest) (*fleetv1.ExecutionGroup, error) {
	group := req.GetGroupId()
	if group == "" {
		return nil, status.Error(codes.InvalidArgument, "group_id is required")
	}
	g, err := s.o.Reader.Executions(group)
	if err != nil {
		return nil, s.errs.readError(ctx, "read the executions of "+group, err)
	}
	if g.GetRunning() == nil && g.GetLast() == nil {
		return nil, status.Errorf(codes.NotFound, "%s has had no execution", group)
	}
	return &fleetv1.ExecutionGroup{GroupId: group, Running: g.GetRunning(), Last: g.GetLast(), Version: g.GetVersion()}, nil
}

// ListResults lists check results from the read model.
func (s *ChecksServer) ListResults(ctx context.Context, req *fleetv1.ListResultsRequest) (*fleetv1.ListResultsResponse, error) {
	if err := oneOf("result", req.GetResult(), resultValues); err != nil {
		return nil, err
	}
	if err := oneOf("source", req.GetSource(), resultSources); err != nil {
		return nil, err
	}
	if c := req.GetCheckId(); c != "" {
		if _, ok := s.o.Catalog.Check(c); !ok {
			return nil, status.Errorf(codes.InvalidArgument, "check_id %q is not in the catalog; GET /api/v1/checks/catalog lists the checks", c)
		}
	}
	f := ResultFilter{EntityID: req.GetEntityId(), CheckID: req.GetCheckId(), Result: req.GetResult(), ExecutionID: req.GetExecutionId(),
		Source: req.GetSource(), Current: req.GetCurrent()}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		f.Until = req.GetUntil().AsTime()
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, status.Error(codes.InvalidArgument, "since must be before until")
	}
	size, after, err := page("check_results", req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	rs, last, err := s.o.Store.ListResults(ctx, f, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list check results", err)
	}
	return &fleetv1.ListResultsResponse{Results: rs, NextPageToken: encodePageToken("check_results", last)}, nil
}

// maxComplianceBuckets mirrors the read model's bound.
const maxComplianceBuckets = 1000

// GetCompliance counts results per check and group over time.
func (s *ChecksServer) GetCompliance(ctx context.Context, req *fleetv1.GetComplianceRequest) (*fleetv1.ComplianceResponse, error) {
	if err := oneOf("entity_type", req.GetEntityType(), targetTypes); err != nil {
		return nil, err
	}
	bucket := time.Hour
	if b := req.GetBucket(); b != "" {
		d, err := time.ParseDuration(b)
		if err != nil || d < time.Minute {
			return nil, status.Errorf(codes.InvalidArgument, "bucket must be a duration of at least 1m (15m, 1h, 24h); got %q", b)
		}
		bucket = d
	}
	until := s.o.Now().Truncate(time.Second)
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}
	since := until.Add(-24 * time.Hour)
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	switch {
	case !since.Before(until):
		return nil, status.Errorf(codes.InvalidArgument, "since (%s) must be before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	case until.Sub(since)/bucket >= maxComplianceBuckets:
		return nil, status.Errorf(codes.InvalidArgument, "bucket %s splits since..until into more than %d buckets: widen the bucket or shorten the range", bucket, maxComplianceBuckets)
	}
	bs, err := s.o.Store.Compliance(ctx, ComplianceFilter{Group: req.GetGroup(), CheckID: req.GetCheckId(), EntityType: req.GetEntityType(),
		Since: since, Until: until, Bucket: bucket})
	if err != nil {
		return nil, s.errs.readError(ctx, "check compliance", err)
	}
	return &fleetv1.ComplianceResponse{Buckets: bs}, nil
}

// GetTargetChecks reads a target's checks from the checks table.
func (s *ChecksServer) GetTargetChecks(ctx context.Context, req *fleetv1.GetTargetChecksRequest) (*fleetv1.ChecksStatus, error) {
	st, _, err := s.o.Reader.Target(req.GetId())
	if err != nil {
		return nil, s.errs.readError(ctx, "read the checks of "+req.GetId(), err)
	}
	if st == nil {
		return nil, status.Errorf(codes.NotFound, "no host or cluster %q is known to the checks processor", req.GetId())
	}
	return st, nil
}

// SelectChecks sends SelectChecks; the processor applies it (202).
func (s *ChecksServer) SelectChecks(ctx context.Context, req *fleetv1.SelectChecksRequest) (*fleetv1.ChecksCommandResponse, error) {
	typ, err := s.commandTarget(ctx, req.GetTargetId(), req.GetTargetType())
	if err != nil {
		return nil, err
	}
	for _, c := range req.GetCheckIds() {
		ch, ok := s.o.Catalog.Check(c)
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "check_ids: %q is not in the catalog", c)
		}
		if ch.TargetType() != typ {
			return nil, status.Errorf(codes.InvalidArgument, "check_ids: %s applies to %ss, not to %ss", c, ch.TargetType(), typ)
		}
	}
	return s.send(ctx, req.GetTargetId(), &fleetv1.Command{Body: &fleetv1.Command_SelectChecks{SelectChecks: &fleetv1.SelectChecks{
		CheckIds: req.GetCheckIds(), TargetType: typ, Actor: actor}}})
}

// OverrideCheckValue sends OverrideCheckValue (202).
func (s *ChecksServer) OverrideCheckValue(ctx context.Context, req *fleetv1.OverrideCheckValueRequest) (*fleetv1.ChecksCommandResponse, error) {
	typ, err := s.commandTarget(ctx, req.GetTargetId(), req.GetTargetType())
	if err != nil {
		return nil, err
	}
	ch, ok := s.o.Catalog.Check(req.GetCheckId())
	switch {
	case !ok:
		return nil, status.Errorf(codes.InvalidArgument, "check_id %q is not in the catalog", req.GetCheckId())
	case ch.TargetType() != typ:
		return nil, status.Errorf(codes.InvalidArgument, "check_id: %s applies to %ss, not to %ss", ch.ID, ch.TargetType(), typ)
	case !slices.ContainsFunc(ch.Values, func(v catalog.Value) bool { return v.Name == req.GetName() }):
		var names []string
		for _, v := range ch.Values {
			names = append(names, v.Name)
		}
		return nil, status.Errorf(codes.InvalidArgument, "name: check %s has no value %q (its values: %s)", ch.ID, req.GetName(), strings.Join(names, ", "))
	case !req.GetResetToDefault() && req.GetValue() == nil:
		return nil, status.Error(codes.InvalidArgument, "value is required (or reset_to_default: true)")
	}
	return s.send(ctx, req.GetTargetId(), &fleetv1.Command{Body: &fleetv1.Command_OverrideCheckValue{OverrideCheckValue: &fleetv1.OverrideCheckValue{
		CheckId: ch.ID, Name: req.GetName(), Value: req.GetValue(), ResetToDefault: req.GetResetToDefault(), TargetType: typ, Actor: actor}}})
}

// commandTarget is the target type of a command's target: the table's, or
// the request's for a target not discovered yet.
func (s *ChecksServer) commandTarget(ctx context.Context, id, typ string) (string, error) {
	if id == "" {
		return "", status.Error(codes.InvalidArgument, "target_id is required")
	}
	if err := oneOf("target_type", typ, targetTypes); err != nil {
		return "", err
	}
	st, _, err := s.o.Reader.Target(id)
	if err != nil {
		return "", s.errs.readError(ctx, "read the checks of "+id, err)
	}
	cur := st.GetTargetType()
	switch {
	case cur != "" && typ != "" && cur != typ:
		return "", status.Errorf(codes.InvalidArgument, "target_type: %s is a %s, not a %s", id, cur, typ)
	case cur != "":
		return cur, nil
	case typ == "":
		return "", status.Errorf(codes.InvalidArgument, "target_type (host or cluster) is required: %s has not been discovered yet", id)
	}
	return typ, nil
}

func (s *ChecksServer) send(ctx context.Context, target string, cmd *fleetv1.Command) (*fleetv1.ChecksCommandResponse, error) {
	cmd.CommandId, cmd.AggregateId, cmd.IssuedAt, cmd.TraceId = uuid.NewString(), target, timestamppb.New(s.o.Now()), uuid.NewString()
	if err := s.o.Send(ctx, cmd); err != nil {
		s.o.Logger.Error("checks command: send", "target", target, "err", err)
		return nil, status.Errorf(codes.Unavailable, "the command for %s was not accepted by Kafka: %v; retry", target, err)
	}
	if err := grpc.SetHeader(ctx, metadata.Pairs(httpCodeHeader, strconv.Itoa(http.StatusAccepted))); err != nil {
		return nil, status.Errorf(codes.Internal, "set the HTTP status: %v", err)
	}
	return &fleetv1.ChecksCommandResponse{TargetId: target, CommandId: cmd.GetCommandId()}, nil
}
