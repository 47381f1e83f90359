package facts

import (
	"context"
	"errors"
	"regexp"
	"strings"
)

func init() {
	Register("systemd@v1", func(env Env) Gatherer { return &systemdUnit{tools: env.Tools} })
}

// unitName is a systemd unit name (systemd.unit(5)); without a suffix
// systemctl takes ".service".
var unitName = regexp.MustCompile(`^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$`)

// systemdUnit is systemd@v1: argument a unit ("pacemaker.service"), value
// {"active_state": "active", "unit_file_state": "enabled", "load_state":
// "loaded"} as `systemctl show` reports them. A unit that does not exist is
// load_state "not-found", not an error.
type systemdUnit struct{ tools *Tools }

var systemdProperties = map[string]string{
	"ActiveState":   "active_state",
	"UnitFileState": "unit_file_state",
	"LoadState":     "load_state",
}

func (g *systemdUnit) Gather(ctx context.Context, unit string) (any, error) {
	if !unitName.MatchString(unit) {
		return nil, badArgument("%q is not a systemd unit name", unit)
	}
	out, err := g.tools.Run(ctx, "systemctl", "show", "--no-pager", "-p", "ActiveState,UnitFileState,LoadState", unit)
	if exit := (*ExitError)(nil); errors.As(err, &exit) {
		// In a container, or on a host booted without systemd, systemctl
		// has no manager to ask.
		return nil, missing("systemctl could not ask systemd about %s (is systemd running as this host's init?): %v", unit, exit)
	}
	if err != nil {
		return nil, err
	}
	state := map[string]any{}
	for line := range strings.Lines(string(out)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if name, known := systemdProperties[k]; ok && known {
			state[name] = v
		}
	}
	if len(state) != len(systemdProperties) {
		return nil, errors.New("systemctl show did not report ActiveState, UnitFileState and LoadState: " + firstLines(string(out), 3))
	}
	return state, nil
}
