package facts

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	Register("corosync.conf@v1", func(env Env) Gatherer { return &corosyncConf{root: env.Root} })
}

const corosyncConfPath = "/etc/corosync/corosync.conf"

// corosyncConf is corosync.conf@v1: no argument, value the parsed
// /etc/corosync/corosync.conf: section name -> map, "key: value" -> string,
// e.g. {"totem": {"token": "30000", "interface": [{"ringnumber": "0"}]},
// "nodelist": {"node": [{"ring0_addr": "10.0.0.1", "nodeid": "1"}]}}.
type corosyncConf struct{ root string }

func (g *corosyncConf) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, corosyncConfPath, "this host is not a corosync cluster node")
	if err != nil {
		return nil, err
	}
	conf, err := ParseCorosyncConf(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corosyncConfPath, err)
	}
	return conf, nil
}

// corosyncListSections are the sections a configuration may repeat; they
// are always lists, so a check reads totem.interface[0] whether the
// cluster has one ring or two.
var corosyncListSections = map[string]bool{"interface": true, "node": true, "logger_subsys": true}

// ParseCorosyncConf parses the syntax of corosync.conf(5) as corosync's own
// parser reads it: one item per line, "name {" opens a section, "}" closes
// it, "key: value" sets a key (the value is the rest of the line, so IPv6
// addresses keep their colons), lines starting with '#' are comments. A
// key set twice keeps its last value; a section given twice becomes a list.
func ParseCorosyncConf(text string) (map[string]any, error) {
	type open struct {
		name string
		line int
		m    map[string]any
	}
	root := map[string]any{}
	stack := []open{{m: root}}
	n := 0
	for raw := range strings.Lines(text) {
		n++
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		top := stack[len(stack)-1].m
		switch {
		case strings.HasSuffix(line, "{"):
			name := strings.TrimSpace(strings.TrimSuffix(line, "{"))
			if name == "" || strings.ContainsAny(name, " \t:{}") {
				return nil, fmt.Errorf("line %d: %q is not a section name", n, name)
			}
			section := map[string]any{}
			addSection(top, name, section)
			stack = append(stack, open{name: name, line: n, m: section})
		case line == "}":
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: '}' closes no section", n)
			}
			stack = stack[:len(stack)-1]
		case strings.Contains(line, ":"):
			k, v, _ := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			if k == "" || strings.ContainsAny(k, " \t{}") {
				return nil, fmt.Errorf("line %d: %q is not a key", n, k)
			}
			top[k] = strings.TrimSpace(v)
		default:
			return nil, fmt.Errorf("line %d: %q is neither \"key: value\", \"section {\" nor \"}\"", n, line)
		}
	}
	if len(stack) > 1 {
		o := stack[len(stack)-1]
		return nil, fmt.Errorf("section %s opened on line %d is not closed", o.name, o.line)
	}
	return root, nil
}

func addSection(parent map[string]any, name string, section map[string]any) {
	switch prev := parent[name].(type) {
	case []any:
		parent[name] = append(prev, section)
	case map[string]any:
		parent[name] = []any{prev, section}
	default:
		if corosyncListSections[name] {
			parent[name] = []any{section}
		} else {
			parent[name] = section
		}
	}
}
