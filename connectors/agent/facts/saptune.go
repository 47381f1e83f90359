package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

func init() {
	Register("saptune@v1", func(env Env) Gatherer { return &saptune{tools: env.Tools} })
}

// saptune is saptune@v1: no argument, value the JSON document of `saptune
// --format json status` (saptune 3.1 or newer) as a map: {"$schema": ...,
// "result": {"services": {...}, "Solution enabled": [...], ...}}.
type saptune struct{ tools *Tools }

func (g *saptune) Gather(ctx context.Context, _ string) (any, error) {
	out, err := g.tools.Run(ctx, "saptune", "--format", "json", "status")
	// saptune exits non-zero when the system is not tuned as configured,
	// and still prints its status: the JSON is the answer either way.
	var exit *ExitError
	if err != nil && !(errors.As(err, &exit) && len(bytes.TrimSpace(out)) > 0) {
		return nil, missingTo(err, "saptune is not installed on this host")
	}
	status, perr := ParseSaptuneStatus(out)
	if perr != nil && exit != nil {
		return nil, fmt.Errorf("%w (%v)", exit, perr)
	}
	return status, perr
}

// ParseSaptuneStatus decodes saptune's JSON status.
func ParseSaptuneStatus(b []byte) (map[string]any, error) {
	var status map[string]any
	if err := json.Unmarshal(b, &status); err != nil {
		return nil, fmt.Errorf("saptune did not answer a JSON object (saptune 3.1 or newer is needed for --format json): %v: %s", err, firstLines(string(b), 1))
	}
	return status, nil
}
