package facts

import (
	"context"
	"net/netip"
	"slices"
	"strings"
)

func init() {
	Register("hosts@v1", func(env Env) Gatherer { return &hosts{root: env.Root} })
}

// hosts is hosts@v1: no argument, value /etc/hosts as a map of every name
// (canonical and aliases) to the list of its addresses in file order:
// {"hana01": ["10.0.0.1"], "localhost": ["127.0.0.1", "::1"]}.
type hosts struct{ root string }

func (g *hosts) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, "/etc/hosts", "")
	if err != nil {
		return nil, err
	}
	return ParseHosts(string(b)), nil
}

// ParseHosts parses hosts(5); a line whose first field is not an IP
// address is ignored, as the resolver ignores it.
func ParseHosts(text string) map[string]any {
	names := map[string]any{}
	for line := range strings.Lines(text) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if _, err := netip.ParseAddr(f[0]); err != nil {
			continue
		}
		for _, name := range f[1:] {
			ips, _ := names[name].([]any)
			if !slices.Contains(ips, any(f[0])) {
				names[name] = append(ips, f[0])
			}
		}
	}
	return names
}
