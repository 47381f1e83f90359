package facts

import (
	"context"
	"regexp"
	"strings"
)

func init() {
	Register("sysctl@v1", func(env Env) Gatherer { return &sysctl{root: env.Root} })
}

// sysctlKey is a kernel parameter as sysctl(8) names it, "vm.swappiness"
// or "net/ipv4/tcp_keepalive_time".
var sysctlKey = regexp.MustCompile(`^[A-Za-z0-9_-]+([./][A-Za-z0-9_:@-]+)*$`)

// sysctl is sysctl@v1: argument a kernel parameter, value its
// /proc/sys file as a string, whitespace collapsed ("4096\t16384\t4194304"
// is "4096 16384 4194304"), as `sysctl -n` shows it.
type sysctl struct{ root string }

func (g *sysctl) Gather(_ context.Context, key string) (any, error) {
	if !sysctlKey.MatchString(key) {
		return nil, badArgument("%q is not a kernel parameter name (e.g. vm.swappiness)", key)
	}
	path := "/proc/sys/" + key
	if !strings.Contains(key, "/") {
		path = "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	}
	b, err := readFile(g.root, path, "")
	if err != nil {
		return nil, missingTo(err, "no kernel parameter %s on this host (%s does not exist)", key, path)
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}
