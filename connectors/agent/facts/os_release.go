package facts

import (
	"context"
	"errors"
)

func init() {
	Register("os-release@v1", func(env Env) Gatherer { return &osRelease{root: env.Root} })
}

// osRelease is os-release@v1: no argument, value the variables of
// os-release(5), unquoted: {"ID": "sles", "VERSION_ID": "15.5", ...}.
// /etc/os-release, or /usr/lib/os-release where only that one exists.
type osRelease struct{ root string }

func (g *osRelease) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, "/etc/os-release", "")
	if errors.Is(err, ErrMissing) {
		b, err = readFile(g.root, "/usr/lib/os-release", "")
	}
	if err != nil {
		return nil, missingTo(err, "neither /etc/os-release nor /usr/lib/os-release exists on this host")
	}
	return shellVars(b), nil
}
