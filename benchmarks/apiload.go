package benchmarks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// apiLoad is a reader of the REST API at a fixed request rate (open loop:
// a slow answer does not slow the requests down, as with many users), half
// lists of hosts from ClickHouse, half single hosts from the processors'
// table.
type apiLoad struct {
	api   *apiClient
	rate  float64
	ids   []string // hosts that exist
	limit int      // requests in flight; beyond it a request is skipped and counted
}

// apiResult is one phase's API latencies.
type apiResult struct {
	List, Get Latencies
	// Errors are answers other than 200 and failed requests; Skipped are
	// requests not sent because limit were in flight.
	Errors, Skipped int
}

func (l *apiLoad) run(ctx context.Context) apiResult {
	var (
		mu  sync.Mutex
		res apiResult
		wg  sync.WaitGroup
	)
	inFlight := make(chan struct{}, l.limit)
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return res
		case <-tick.C:
		}
		list := n%2 == 0
		var path string
		if list {
			// A page of a hostname range, as a dashboard's table would ask.
			path = fmt.Sprintf("/api/v1/hosts?page_size=50&hostname_prefix=sim-0%d", rng.IntN(10))
		} else {
			path = "/api/v1/hosts/" + l.ids[rng.IntN(len(l.ids))]
		}
		select {
		case inFlight <- struct{}{}:
		default:
			mu.Lock()
			res.Skipped++
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			// Not ctx: a request sent in the phase is measured to its end.
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			code, _, err := l.api.get(rctx, path)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil || code != http.StatusOK:
				res.Errors++
			case list:
				res.List.add(took)
			default:
				res.Get.add(took)
			}
		})
	}
}
