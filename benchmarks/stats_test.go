package benchmarks

import (
	"math"
	"testing"
)

func TestPercentileIsNearestRank(t *testing.T) {
	// The textbook example, 15 20 35 40 50, shuffled.
	shuffled := []float64{40, 15, 50, 20, 35}
	for _, tc := range []struct{ p, want float64 }{{5, 15}, {30, 20}, {40, 20}, {50, 35}, {99, 50}, {100, 50}} {
		if got := Percentile(shuffled, tc.p); got != tc.want {
			t.Errorf("P%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if shuffled[0] != 40 {
		t.Error("Percentile sorted its argument in place")
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("P50 of nothing is not NaN")
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	if got := Percentile(hundred, 99); got != 99 {
		t.Errorf("P99 of 1..100 = %v, want 99", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{math.NaN(), 7, 1}, 4},
		{[]float64{5}, 5},
	} {
		if got := Median(tc.xs); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(Median([]float64{math.NaN()})) || !math.IsNaN(Median(nil)) {
		t.Error("the median of no numbers is not NaN")
	}
}
