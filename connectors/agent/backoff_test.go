package agent

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	const interval = 10 * time.Second
	for _, tc := range []struct {
		failures int
		base     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{4, 8 * time.Second},
		{6, 32 * time.Second},
		{7, 60 * time.Second},
		{1000, 60 * time.Second},
	} {
		lo, hi := tc.base-tc.base/10, tc.base+tc.base/10
		// The jitter is random: every draw must stay within ±10%.
		for range 200 {
			if d := RetryDelay(interval, tc.failures); d < lo || d > hi {
				t.Fatalf("RetryDelay(%s, %d) = %s, want within [%s, %s]", interval, tc.failures, d, lo, hi)
			}
		}
	}
	if d := RetryDelay(interval, 0); d != interval {
		t.Errorf("RetryDelay without failure = %s, want the interval", d)
	}
}

// The loop must feed its consecutive failures to the delay, and reset them
// on success.
func TestRepeatCountsConsecutiveFailures(t *testing.T) {
	outcomes := []bool{false, false, true, false, true, true} // true: success
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var seen []int
	round := 0
	repeat(ctx, time.Hour, func(interval time.Duration, failures int) time.Duration {
		if interval != time.Hour {
			t.Errorf("delay got interval %s", interval)
		}
		seen = append(seen, failures)
		if len(seen) == len(outcomes) {
			cancel()
		}
		return 0
	}, func(context.Context) error {
		ok := outcomes[round]
		round++
		if ok {
			return nil
		}
		return errors.New("refused")
	})
	if want := []int{1, 2, 0, 1, 0, 0}; !slices.Equal(seen, want) {
		t.Errorf("failures passed to the delay %v, want %v", seen, want)
	}
}
