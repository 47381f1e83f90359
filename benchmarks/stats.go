package benchmarks

import (
	"math"
	"slices"
	"time"
)

// Percentile is the p-th percentile (0 < p ≤ 100) of xs by the
// nearest-rank method: a value that was observed, never an interpolation.
// It is NaN for no values.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Median is the median of xs (the mean of the middle two for an even
// count), ignoring NaNs; NaN when nothing is left.
func Median(xs []float64) float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// Latencies are observed durations in milliseconds.
type Latencies []float64

func (l *Latencies) add(d time.Duration) { *l = append(*l, float64(d)/float64(time.Millisecond)) }

// Summary is the count and the percentiles the report shows.
func (l Latencies) Summary() LatencySummary {
	return LatencySummary{N: len(l), P50: Percentile(l, 50), P99: Percentile(l, 99), Max: Percentile(l, 100)}
}

// LatencySummary is a distribution in milliseconds.
type LatencySummary struct {
	N             int
	P50, P99, Max float64
}

// rate is count per second over d; NaN over no time.
func rate(count float64, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return count / d.Seconds()
}

var nan = math.NaN()
