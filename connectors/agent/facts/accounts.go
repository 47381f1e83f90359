package facts

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

func init() {
	Register("passwd@v1", func(env Env) Gatherer { return &passwd{root: env.Root} })
	Register("groups@v1", func(env Env) Gatherer { return &groups{root: env.Root} })
}

// passwd is passwd@v1: no argument, value the local users of /etc/passwd
// as a list of {"user", "uid", "gid", "home", "shell"}, uid and gid numbers.
type passwd struct{ root string }

func (g *passwd) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, "/etc/passwd", "")
	if err != nil {
		return nil, err
	}
	return colonTable(string(b), "/etc/passwd", 7, func(f []string) (map[string]any, error) {
		uid, err1 := strconv.ParseInt(f[2], 10, 64)
		gid, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("uid %q or gid %q is not a number", f[2], f[3])
		}
		return map[string]any{"user": f[0], "uid": uid, "gid": gid, "home": f[5], "shell": f[6]}, nil
	})
}

// groups is groups@v1: no argument, value the local groups of /etc/group
// as a list of {"name", "gid", "users": [...]}, gid a number.
type groups struct{ root string }

func (g *groups) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, "/etc/group", "")
	if err != nil {
		return nil, err
	}
	return colonTable(string(b), "/etc/group", 4, func(f []string) (map[string]any, error) {
		gid, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("gid %q is not a number", f[2])
		}
		users := []any{}
		for u := range strings.SplitSeq(f[3], ",") {
			if u = strings.TrimSpace(u); u != "" {
				users = append(users, u)
			}
		}
		return map[string]any{"name": f[0], "gid": gid, "users": users}, nil
	})
}

// colonTable parses a colon-separated database (passwd(5), group(5)). NIS
// compat lines ("+", "-name") name no local entry and are skipped.
func colonTable(text, path string, fields int, row func([]string) (map[string]any, error)) ([]any, error) {
	out := []any{}
	n := 0
	for line := range strings.Lines(text) {
		n++
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != fields {
			return nil, fmt.Errorf("%s line %d: %d fields, want %d", path, n, len(f), fields)
		}
		r, err := row(f)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		out = append(out, r)
	}
	return out, nil
}
