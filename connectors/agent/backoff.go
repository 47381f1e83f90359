package agent

import (
	"math/rand/v2"
	"time"
)

// RetryDelay is how long to wait before retrying a call made every interval
// after it failed failures times in a row: a tenth of the interval after the
// first failure, so a glitch costs little, doubling with each further
// failure up to six intervals, so an outage is not hammered. A ±10% jitter
// keeps a fleet that failed together from retrying together. With
// failures < 1 it is the interval itself.
func RetryDelay(interval time.Duration, failures int) time.Duration {
	if failures < 1 {
		return interval
	}
	limit := 6 * interval
	d := max(interval/10, 1)
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d - d/10 + rand.N(d/5+1)
}
