package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Readers of the kernel's and the distribution's files, each taking the
// file system root so that a fake tree can stand in for the machine.

// readLine returns the first line of root/path, trimmed.
func readLine(root, path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return "", err
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	s := strings.TrimSpace(string(line))
	if s == "" {
		return "", fmt.Errorf("%s is empty", filepath.Join(root, path))
	}
	return s, nil
}

// osRelease reads os-release(5): /etc/os-release, or /usr/lib/os-release
// where the distribution only ships that one.
func osRelease(root string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if os.IsNotExist(err) {
		b, err = os.ReadFile(filepath.Join(root, "usr/lib/os-release"))
	}
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vars[k] = unquoteShell(v)
	}
	return vars, nil
}

// unquoteShell undoes the shell quoting os-release values may use.
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
	return v
}

// cpuCounts counts logical CPUs and sockets in /proc/cpuinfo. Sockets are the
// distinct "physical id"s; architectures whose cpuinfo has none (arm64,
// s390x) are counted as one socket.
func cpuCounts(root string) (logical, sockets int, err error) {
	f, err := os.Open(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		// x86 and arm64 write "processor\t: 3"; s390x writes "processor 3: ...".
		switch k = strings.TrimSpace(k); {
		case k == "processor" || strings.HasPrefix(k, "processor "):
			logical++
		case k == "physical id":
			ids[strings.TrimSpace(v)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if logical == 0 {
		return 0, 0, fmt.Errorf("no processor in %s", f.Name())
	}
	return logical, max(len(ids), 1), nil
}

// memTotalMB reads MemTotal from /proc/meminfo, in MiB.
func memTotalMB(root string) (int64, error) {
	v, err := procField(root, "proc/meminfo", "MemTotal:")
	if err != nil {
		return 0, err
	}
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("MemTotal %q: %w", v, err)
	}
	return kb / 1024, nil
}

// bootTime reads btime from /proc/stat.
func bootTime(root string) (time.Time, error) {
	v, err := procField(root, "proc/stat", "btime")
	if err != nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, fmt.Errorf("btime %q is not a boot time", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// procField returns the value after key in a "key value" file.
func procField(root, path, key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s in %s", strings.TrimSuffix(key, ":"), filepath.Join(root, path))
}

// hostsCanonicalName returns the canonical name /etc/hosts gives hostname:
// the first name on the first line that lists it, as the C library's
// resolver (and hostname -f) answers.
func hostsCanonicalName(root, hostname string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "etc/hosts"))
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		for _, name := range fields[1:] {
			if strings.EqualFold(name, hostname) {
				return fields[1], nil
			}
		}
	}
	return "", nil
}

// unameMachine is uname -m, for kernels that lack /proc/sys/kernel/arch.
func unameMachine() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Machine[:]), nil
}
