// Package collectors benchmarks the agentless collectors: resources/s of
// an AWS collection against moto (see aws_bench_test.go), and the cost of
// turning resources into chunked discoveries. Results:
// benchmarks/results/collectors.md.
package collectors
