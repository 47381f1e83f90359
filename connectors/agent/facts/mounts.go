package facts

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func init() {
	Register("mount_info@v1", func(env Env) Gatherer { return &mountInfo{root: env.Root} })
	Register("fstab@v1", func(env Env) Gatherer { return &fstab{root: env.Root} })
}

// mountInfo is mount_info@v1: argument a mount point ("/hana/data"), value
// {"source": "/dev/mapper/vg-data", "fstype": "xfs", "options":
// "rw,relatime", "size_bytes": 107321753600, "used_bytes": 5368709120,
// "used_percent": 5.0} from /proc/self/mountinfo and statfs(2), used_percent
// as df computes it (of the space an unprivileged user may use); nil when
// nothing is mounted there.
type mountInfo struct{ root string }

func (g *mountInfo) Gather(_ context.Context, mountPoint string) (any, error) {
	if !filepath.IsAbs(mountPoint) {
		return nil, badArgument("%q is not an absolute mount point", mountPoint)
	}
	mountPoint = filepath.Clean(mountPoint)
	b, err := readFile(g.root, "/proc/self/mountinfo", "")
	if err != nil {
		return nil, missingTo(err, "/proc/self/mountinfo does not exist: is /proc mounted?")
	}
	m, err := findMount(string(b), mountPoint)
	if err != nil || m == nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(hostPath(g.root, mountPoint), &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", mountPoint, err)
	}
	bsize := uint64(st.Frsize)
	if bsize == 0 {
		bsize = uint64(st.Bsize)
	}
	size, used, avail := st.Blocks*bsize, (st.Blocks-st.Bfree)*bsize, st.Bavail*bsize
	percent := 0.0
	if used+avail > 0 {
		percent = math.Round(float64(used)/float64(used+avail)*10000) / 100
	}
	m["size_bytes"], m["used_bytes"], m["used_percent"] = int64(size), int64(used), percent
	return m, nil
}

// findMount returns source, fstype and options of what is mounted on
// mountPoint in a proc_pid_mountinfo(5) table: the last such line, since a
// later mount hides an earlier one on the same point. Nil if none.
func findMount(table, mountPoint string) (map[string]any, error) {
	var found map[string]any
	n := 0
	for line := range strings.Lines(table) {
		n++
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 6 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("/proc/self/mountinfo line %d is not in the format of proc_pid_mountinfo(5): %q", n, strings.TrimSpace(line))
		}
		if unescapeOctal(f[4]) == mountPoint {
			found = map[string]any{"source": unescapeOctal(f[sep+2]), "fstype": f[sep+1], "options": f[5]}
		}
	}
	return found, nil
}

// fstab is fstab@v1: no argument, value the entries of /etc/fstab as a
// list of {"device", "mount_point", "fstype", "options", "dump", "pass"},
// dump and pass numbers (defaulting to "defaults", 0 and 0 as mount(8)
// does).
type fstab struct{ root string }

func (g *fstab) Gather(context.Context, string) (any, error) {
	b, err := readFile(g.root, "/etc/fstab", "")
	if err != nil {
		return nil, err
	}
	return ParseFstab(string(b))
}

// ParseFstab parses fstab(5).
func ParseFstab(text string) ([]any, error) {
	entries := []any{}
	n := 0
	for line := range strings.Lines(text) {
		n++
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 3 || len(f) > 6 {
			return nil, fmt.Errorf("/etc/fstab line %d: %d fields, want device, mount point, type and up to three more: %q", n, len(f), strings.TrimSpace(line))
		}
		f = append(f, make([]string, 6-len(f))...)
		e := map[string]any{"device": unescapeOctal(f[0]), "mount_point": unescapeOctal(f[1]), "fstype": f[2], "options": f[3]}
		if f[3] == "" {
			e["options"] = "defaults"
		}
		for i, k := range []string{"dump", "pass"} {
			v := int64(0)
			if s := f[4+i]; s != "" {
				var err error
				if v, err = strconv.ParseInt(s, 10, 64); err != nil {
					return nil, fmt.Errorf("/etc/fstab line %d: %s %q is not a number", n, k, s)
				}
			}
			e[k] = v
		}
		entries = append(entries, e)
	}
	return entries, nil
}
