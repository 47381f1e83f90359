package system

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// readyzTimeout bounds one readiness check, below the probe timeouts of
// deploy/ (5s), so a hung dependency reads as "not ready", not as a probe
// that never answered.
const readyzTimeout = 3 * time.Second

// readyz answers GET /readyz for the roles served without the API: 200
// when check passes (nil: as soon as the server is up), 503 with the reason
// otherwise. The ingest role checks that a broker answers, so an instance
// cut off from Kafka stops receiving agents' requests; the process role
// that its processors recovered their tables.
func readyz(check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
			defer cancel()
			if err := check(ctx); err != nil {
				http.Error(w, fmt.Sprintf("not ready: %v", err), http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
}
