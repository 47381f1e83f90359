package facts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// maxOutput bounds what a tool may print: a CIB of a large cluster is a
// few MiB; anything beyond this is not a fact worth sending.
const maxOutput = 32 << 20

// Tools finds and runs the machine's command-line tools.
type Tools struct {
	dirs []string
}

// NewTools looks tools up in dirs, or in the default path when dirs is
// empty (see Config.Path).
func NewTools(dirs []string) *Tools {
	if len(dirs) == 0 {
		dirs = append(filepath.SplitList(os.Getenv("PATH")), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	}
	var clean []string
	for _, d := range dirs {
		if d != "" && filepath.IsAbs(d) && !slices.Contains(clean, d) {
			clean = append(clean, d)
		}
	}
	return &Tools{dirs: clean}
}

// Find returns the path of tool, or an ErrMissing error.
func (t *Tools) Find(tool string) (string, error) {
	for _, d := range t.dirs {
		p := filepath.Join(d, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", missing("%s is not installed on this host (not found in %s)", tool, strings.Join(t.dirs, ":"))
}

// Has reports whether tool is installed.
func (t *Tools) Has(tool string) bool {
	_, err := t.Find(tool)
	return err == nil
}

// ExitError is a tool that ran and exited with a non-zero status.
type ExitError struct {
	Tool   string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s exited with status %d", e.Tool, e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Run runs tool with args and returns what it printed on stdout. A tool
// that is not installed is an ErrMissing error; a non-zero exit is an
// *ExitError, returned with the stdout the tool printed (some tools print
// their answer and still exit non-zero).
func (t *Tools) Run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	path, err := t.Find(tool)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	// Messages and formats in English and without locale quirks, so they
	// parse the same on every host.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxOutput, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if stdout.truncated {
		return nil, fmt.Errorf("%s printed more than %d MiB", tool, maxOutput>>20)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", tool, ctx.Err())
	case errors.As(err, &exit):
		return stdout.Bytes(), &ExitError{Tool: tool, Code: exit.ExitCode(), Stderr: firstLines(stderr.String(), 3)}
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("run %s: %w (the agent's user may not run it)", path, err)
	default:
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
}

// limitedBuffer keeps the first limit bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	limit     int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p) // all of it is taken, so the tool is never blocked on a full pipe
	if room := b.limit - b.Len(); len(p) > room {
		b.truncated = true
		p = p[:max(room, 0)]
	}
	b.Buffer.Write(p)
	return n, nil
}

// firstLines returns at most n non-empty lines of s, joined by "; ".
func firstLines(s string, n int) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" && len(lines) < n {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
