package facts

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxFile bounds what a file gatherer reads.
const maxFile = 16 << 20

// hostPath is path (absolute, as on the host) under root.
func hostPath(root, path string) string { return filepath.Join(root, filepath.Clean("/"+path)) }

// readFile reads the host's path under root. A file that does not exist is
// an ErrMissing error naming what is missing, and what usually installs it.
func readFile(root, path, installedBy string) ([]byte, error) {
	full := hostPath(root, path)
	f, err := os.Open(full)
	if errors.Is(err, fs.ErrNotExist) {
		if installedBy != "" {
			return nil, missing("%s does not exist on this host (%s)", path, installedBy)
		}
		return nil, missing("%s does not exist on this host", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, badArgument("%s is a directory, not a file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s is larger than %d MiB: not a configuration file", path, maxFile>>20)
	}
	return b, nil
}

// shellVars parses KEY=value lines as sysconfig files and os-release(5)
// write them: '#' comments, optional "export", quoted values.
func shellVars(b []byte) map[string]any {
	vars := map[string]any{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(k, " \t") {
			continue
		}
		vars[k] = unquoteShell(strings.TrimSpace(v))
	}
	return vars
}

// unquoteShell undoes the quoting of a shell value: "..." (with escapes),
// '...', or an unquoted word followed by a comment.
func unquoteShell(v string) string {
	if len(v) >= 2 {
		switch {
		case v[0] == '"' && v[len(v)-1] == '"':
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return v[1 : len(v)-1]
		case v[0] == '\'' && v[len(v)-1] == '\'':
			return v[1 : len(v)-1]
		}
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// unescapeOctal decodes the \ooo escapes of fstab and mountinfo fields
// (a space is \040).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
