package catalog

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// functions are the CEL functions the engine adds to the standard library
// and the strings, lists, math and sets extensions. Each is documented in
// README.md and in the schema's description; keep the three in step.
func functions() []cel.EnvOption {
	str := func(f func(string) ref.Val) cel.OverloadOpt {
		return cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return f(string(s))
		})
	}
	return []cel.EnvOption{
		cel.Function("version_cmp",
			cel.Overload("version_cmp_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.IntType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					x, ok1 := a.(types.String)
					y, ok2 := b.(types.String)
					if !ok1 || !ok2 {
						return types.NewErr("version_cmp: both arguments must be strings")
					}
					return types.Int(VersionCompare(string(x), string(y)))
				}))),
		cel.Function("coalesce",
			cel.Overload("coalesce_dyn_dyn", []*cel.Type{cel.DynType, cel.DynType}, cel.DynType,
				cel.BinaryBinding(func(v, d ref.Val) ref.Val {
					if v == types.NullValue {
						return d
					}
					return v
				}))),
		cel.Function("nvpairs",
			cel.Overload("nvpairs_list", []*cel.Type{cel.ListType(cel.DynType)}, cel.MapType(cel.StringType, cel.StringType),
				cel.UnaryBinding(nvpairs))),
		cel.Function("pcmk_bool",
			cel.Overload("pcmk_bool_string", []*cel.Type{cel.StringType}, cel.BoolType,
				str(func(s string) ref.Val {
					b, err := PacemakerBool(s)
					if err != nil {
						return types.NewErr("pcmk_bool: %v", err)
					}
					return types.Bool(b)
				}))),
		cel.Function("pcmk_ms",
			cel.Overload("pcmk_ms_string", []*cel.Type{cel.StringType}, cel.IntType,
				str(func(s string) ref.Val {
					ms, err := PacemakerMillis(s)
					if err != nil {
						return types.NewErr("pcmk_ms: %v", err)
					}
					return types.Int(ms)
				}))),
		cel.Function("config_lines",
			cel.Overload("config_lines_string", []*cel.Type{cel.StringType}, cel.ListType(cel.StringType),
				str(func(s string) ref.Val { return types.DefaultTypeAdapter.NativeToValue(configLines(s)) }))),
		cel.Function("sshd_config",
			cel.Overload("sshd_config_string", []*cel.Type{cel.StringType}, cel.MapType(cel.StringType, cel.StringType),
				str(func(s string) ref.Val { return types.DefaultTypeAdapter.NativeToValue(sshdConfig(s)) }))),
		cel.Function("parse_ini",
			cel.Overload("parse_ini_string", []*cel.Type{cel.StringType},
				cel.MapType(cel.StringType, cel.MapType(cel.StringType, cel.StringType)),
				str(func(s string) ref.Val { return types.DefaultTypeAdapter.NativeToValue(parseINI(s)) }))),
	}
}

// nvpairs turns a list of name/value objects, as the CIB has them (discovery
// payloads spell the keys Name/Value, cibadmin@v1 name/value), into a map.
func nvpairs(v ref.Val) ref.Val {
	l, ok := v.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	out := map[string]string{}
	for it := l.Iterator(); it.HasNext() == types.True; {
		m, ok := it.Next().(traits.Mapper)
		if !ok {
			return types.NewErr("nvpairs: list elements must be maps with a name and a value")
		}
		name, okName := lookupAny(m, "Name", "name")
		value, _ := lookupAny(m, "Value", "value")
		if !okName {
			return types.NewErr("nvpairs: element without name")
		}
		if _, dup := out[name]; !dup {
			out[name] = value
		}
	}
	return types.DefaultTypeAdapter.NativeToValue(out)
}

func lookupAny(m traits.Mapper, keys ...string) (string, bool) {
	for _, k := range keys {
		if v, found := m.Find(types.String(k)); found {
			if s, ok := v.(types.String); ok {
				return string(s), true
			}
			if v == types.NullValue {
				return "", true
			}
			return fmt.Sprint(v.Value()), true
		}
	}
	return "", false
}

// PacemakerBool parses a Pacemaker boolean ("true", "yes", "on", "y", "1"
// and their negations, any case).
func PacemakerBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "y", "1":
		return true, nil
	case "false", "no", "off", "n", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", s)
}

// PacemakerMillis parses a Pacemaker interval ("30s", "500ms", "2min",
// "1h"; a bare number is seconds) into milliseconds.
func PacemakerMillis(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || i == 0 {
		return 0, fmt.Errorf("%q is not an interval", s)
	}
	mult := map[string]float64{"": 1000, "s": 1000, "sec": 1000, "ms": 1, "msec": 1, "us": 0.001, "usec": 0.001,
		"m": 60000, "min": 60000, "h": 3600000, "hr": 3600000}[strings.TrimSpace(t[i:])]
	if mult == 0 {
		return 0, fmt.Errorf("%q has an unknown unit", s)
	}
	return int64(n * mult), nil
}

// configLines returns the non-empty lines of a configuration file without
// comments (from # to the end of the line) and surrounding blanks.
func configLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// sshdConfig reads sshd_config the way sshd does: keywords are
// case-insensitive (returned lower case), the first occurrence wins, and a
// Match block ends the global section.
func sshdConfig(s string) map[string]string {
	out := map[string]string{}
	for _, line := range configLines(s) {
		key, value, _ := strings.Cut(strings.Replace(line, "=", " ", 1), " ")
		key = strings.ToLower(key)
		if key == "match" {
			break
		}
		if _, seen := out[key]; !seen {
			out[key] = strings.TrimSpace(value)
		}
	}
	return out
}

// parseINI reads an INI file (SAP HANA global.ini, ...): section -> key ->
// value with section names and keys lower case; keys before any section are
// in section "".
func parseINI(s string) map[string]map[string]string {
	out := map[string]map[string]string{}
	section := ""
	for _, line := range configLines(s) {
		if strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			if out[section] == nil {
				out[section] = map[string]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if out[section] == nil {
			out[section] = map[string]string{}
		}
		out[section][strings.ToLower(strings.TrimSpace(key))] = strings.TrimSpace(value)
	}
	return out
}

// VersionCompare compares two package versions the way rpm does
// (rpmvercmp: digit and letter segments, digits newer than letters, "~"
// older than anything) with an optional "epoch:" prefix and "-release"
// suffix; when only one side has a release, releases are not compared, so
// "2.0.4-150200.3.24.2" equals "2.0.4". It returns -1, 0 or 1.
func VersionCompare(a, b string) int {
	ea, va := splitEpoch(a)
	eb, vb := splitEpoch(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	verA, relA, hasRelA := cutLast(va, "-")
	verB, relB, hasRelB := cutLast(vb, "-")
	if c := rpmvercmp(verA, verB); c != 0 || !hasRelA || !hasRelB {
		return c
	}
	return rpmvercmp(relA, relB)
}

func splitEpoch(v string) (int64, string) {
	if before, after, ok := strings.Cut(v, ":"); ok {
		if e, err := strconv.ParseInt(before, 10, 64); err == nil {
			return e, after
		}
	}
	return 0, v
}

func cutLast(s, sep string) (string, string, bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	for len(a) > 0 || len(b) > 0 {
		for len(a) > 0 && !isDigit(a[0]) && !isAlpha(a[0]) && a[0] != '~' {
			a = a[1:]
		}
		for len(b) > 0 && !isDigit(b[0]) && !isAlpha(b[0]) && b[0] != '~' {
			b = b[1:]
		}
		tildeA, tildeB := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~")
		if tildeA || tildeB {
			if !tildeA {
				return 1
			}
			if !tildeB {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			break
		}
		numeric := isDigit(a[0])
		class := isAlpha
		if numeric {
			class = isDigit
		}
		i, j := 0, 0
		for i < len(a) && class(a[i]) {
			i++
		}
		for j < len(b) && class(b[j]) {
			j++
		}
		segA, segB := a[:i], b[:j]
		if segB == "" {
			// Different kinds of segment: a number is newer than letters.
			if numeric {
				return 1
			}
			return -1
		}
		if numeric {
			segA, segB = strings.TrimLeft(segA, "0"), strings.TrimLeft(segB, "0")
			if len(segA) != len(segB) {
				if len(segA) < len(segB) {
					return -1
				}
				return 1
			}
		}
		if c := strings.Compare(segA, segB); c != 0 {
			return c
		}
		a, b = a[i:], b[j:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}
