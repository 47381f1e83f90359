package tasks

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait before attempt n+1 after n failed attempts:
// base·2^(n-1) capped at limit, of which the upper half is random ("equal
// jitter"), so retries of tasks that failed together spread out while each
// still waits at least half its backoff.
func backoff(n uint32, base, limit time.Duration) time.Duration {
	d := base
	for i := uint32(1); i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + rand.N(d-half+1)
}
