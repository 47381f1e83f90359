package facts

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
)

func init() {
	Register("package_version@v1", func(env Env) Gatherer { return &packageVersion{root: env.Root, tools: env.Tools} })
}

// packageName is what rpm and dpkg accept as a package name; it keeps
// options and glob patterns out of the tools' arguments.
var packageName = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+~:-]*$`)

// packageVersion is package_version@v1: argument a package name, value
// the installed version as the package manager prints it, "2.1.5+20221208.a3f44794f-150500.6.5.3"
// (rpm: [epoch:]version-release; dpkg: the Version field), or nil when the
// package is not installed. With several versions installed (kernels) the
// one rpm lists last, the latest installed.
type packageVersion struct {
	root  string
	tools *Tools
}

func (g *packageVersion) Gather(ctx context.Context, name string) (any, error) {
	if !packageName.MatchString(name) {
		return nil, badArgument("%q is not a package name", name)
	}
	switch {
	case g.tools.Has("rpm") && (g.hasRPMDatabase() || !g.tools.Has("dpkg-query")):
		return g.rpm(ctx, name)
	case g.tools.Has("dpkg-query"):
		return g.dpkg(ctx, name)
	default:
		return nil, missing("neither rpm nor dpkg-query is installed on this host: no package database to ask")
	}
}

// hasRPMDatabase tells an rpm-based host from a Debian host that merely has
// the rpm tool installed.
func (g *packageVersion) hasRPMDatabase() bool {
	for _, dir := range []string{"var/lib/rpm", "usr/lib/sysimage/rpm"} {
		if fi, err := os.Stat(hostPath(g.root, dir)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

func (g *packageVersion) rpm(ctx context.Context, name string) (any, error) {
	args := []string{"-q", "--qf", `%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n`, name}
	if g.root != "/" {
		args = append([]string{"--root", g.root}, args...)
	}
	out, err := g.tools.Run(ctx, "rpm", args...)
	var exit *ExitError
	if errors.As(err, &exit) && strings.Contains(string(out)+exit.Stderr, "is not installed") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return nil, nil
	}
	return lines[len(lines)-1], nil
}

func (g *packageVersion) dpkg(ctx context.Context, name string) (any, error) {
	args := []string{"-W", "-f", `${db:Status-Status} ${Version}\n`, name}
	if g.root != "/" {
		args = append([]string{"--admindir", hostPath(g.root, "var/lib/dpkg")}, args...)
	}
	out, err := g.tools.Run(ctx, "dpkg-query", args...)
	var exit *ExitError
	if errors.As(err, &exit) && strings.Contains(exit.Stderr, "no packages found") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// One line per architecture of a multi-arch package; a removed
	// package whose configuration files remain is not installed.
	for line := range strings.Lines(string(out)) {
		if status, version, ok := strings.Cut(strings.TrimSpace(line), " "); ok && status == "installed" {
			return version, nil
		}
	}
	return nil, nil
}
