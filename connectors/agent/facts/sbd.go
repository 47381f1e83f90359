package facts

import "context"

func init() {
	Register("sbd_config@v1", func(env Env) Gatherer { return &sbdConfig{root: env.Root} })
}

// sbdConfigPath is where SUSE (and the sbd package) keep SBD's settings.
const sbdConfigPath = "/etc/sysconfig/sbd"

// sbdConfig is sbd_config@v1: no argument, value the variables of
// /etc/sysconfig/sbd, unquoted: {"SBD_DEVICE": "/dev/a;/dev/b",
// "SBD_WATCHDOG_DEV": "/dev/watchdog", ...}.
type sbdConfig struct{ root string }

func (g *sbdConfig) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, sbdConfigPath, "SBD is not configured: the sbd package writes it")
	if err != nil {
		return nil, err
	}
	return shellVars(b), nil
}
