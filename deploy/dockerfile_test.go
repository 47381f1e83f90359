package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// instructions returns the Dockerfile's instructions, continuation lines
// joined, comments dropped.
func instructions(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || (strings.TrimSpace(l) == "" && cur.Len() == 0) {
			continue
		}
		cur.WriteString(strings.TrimSuffix(strings.TrimSpace(l), "\\") + " ")
		if !strings.HasSuffix(strings.TrimSpace(l), "\\") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	return out
}

// The image builds the binary the manifests run, statically, and runs it
// as a non-root user: what can be checked without a Docker engine.
func TestDockerfile(t *testing.T) {
	ins := instructions(t)
	var froms []string
	var build, entrypoint, user string
	for _, in := range ins {
		switch strings.Fields(in)[0] {
		case "FROM":
			froms = append(froms, in)
		case "RUN":
			if strings.Contains(in, "go build") {
				build = in
			}
		case "ENTRYPOINT":
			entrypoint = in
		case "USER":
			user = in
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[0], " AS build") || !strings.HasPrefix(froms[1], "FROM gcr.io/distroless/static") {
		t.Errorf("want a build stage and a distroless/static runtime stage, got %v", froms)
	}
	m := regexp.MustCompile(`go build .* -o (\S+) (\./\S+)`).FindStringSubmatch(build)
	if m == nil || !strings.Contains(build, "CGO_ENABLED=0") {
		t.Fatalf("no static go build of a package: %q", build)
	}
	if _, err := os.Stat(".." + strings.TrimPrefix(m[2], ".")); err != nil {
		t.Errorf("go build %s: %v", m[2], err)
	}
	if !strings.Contains(strings.Join(ins, "\n"), "COPY --from=build "+m[1]+" /usr/local/bin/fleetstream") || entrypoint != `ENTRYPOINT ["/usr/local/bin/fleetstream"]` {
		t.Errorf("the entrypoint is not the binary built: %q", entrypoint)
	}
	if user == "" || strings.HasPrefix(user, "USER 0") || strings.HasPrefix(user, "USER root") {
		t.Errorf("the image runs as root: %q", user)
	}
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ignore), "\n") {
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "schemas"} {
			if strings.TrimSpace(l) == needed {
				t.Errorf("Dockerfile.dockerignore excludes %s, which the build needs", needed)
			}
		}
	}
}
