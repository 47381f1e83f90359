// Package checks benchmarks the CEL checks engine on a realistic fleet:
// hosts whose discoveries come from the simulated fleet
// (connectors/agent/sim) and the Trento fixtures, whose gathered facts come
// from the agent's real gatherers run against connectors/agent/facts'
// testdata machine, paired into two-node Pacemaker clusters.
//
//   - BenchmarkCatalog: evaluations per second per core of the embedded
//     catalog (Check.Applies, then Check.Evaluate) on the targets the
//     processor builds, without the processor.
//   - BenchmarkReevaluation: continuous evaluation's group
//     (processors/checks) on goka's tester re-evaluating every host and
//     cluster of a fleet, up to 10,000 hosts.
//
// TestInputsAreRealistic guards the inputs: the checks that apply per
// target, passing and failing results. Results: benchmarks/results/checks.md.
package checks
