// Package facts gathers the facts configuration checks need, on the machine
// the agent runs on, and answers the control plane's requests for them.
//
// A gatherer is named "name@vN" (the gatherer of a check's fact) and turns
// an argument into a JSON-like value: nil, bool, int64, float64, string,
// []any or map[string]any, what structpb.NewValue converts. Each gatherer
// is its own file, registered from that file's init; the value shapes are
// a contract with the checks catalog (processors/checks/catalog), listed on
// each gatherer. A Registry builds every registered gatherer for one
// machine and gathers with a timeout per fact: a missing tool or file, a
// bad argument or a timeout is an error of that fact only (ErrMissing,
// ErrArgument, context.DeadlineExceeded), never of the whole request.
//
// File gatherers read under a root ("/" by default) so the agent can run in
// a container with the host's root mounted elsewhere and tests can point
// them at testdata. Tools (rpm, dpkg-query, systemctl, cibadmin, saptune)
// are looked up in PATH and the sbin directories, and run with LC_ALL=C so
// their output parses the same everywhere.
//
// Service connects the gatherers to Kafka: it answers FactsGatheringRequested
// records of fleet.agent.requests.v1 addressed to its agent with
// FactsGathered on fleet.facts.v1, and every Interval gathers the facts of
// the checks that apply to the host, publishing them only when they changed.
//
// Not done here, deliberately: an HTTP long-poll path for agents that may
// not reach Kafka (the ingest would relay requests), and gatherers that need
// D-Bus or root-only tools beyond what their command-line tools show.
package facts
