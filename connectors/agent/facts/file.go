package facts

import (
	"context"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

func init() {
	Register("file@v1", func(env Env) Gatherer { return &file{root: env.Root} })
	Register("ini@v1", func(env Env) Gatherer { return &ini{root: env.Root} })
}

// file is file@v1: argument an absolute path, value the file's content as
// a string (text files only).
type file struct{ root string }

func (g *file) Gather(_ context.Context, path string) (any, error) {
	if !filepath.IsAbs(path) {
		return nil, badArgument("%q is not an absolute path", path)
	}
	b, err := readFile(g.root, path, "")
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, badArgument("%s is not a text file (not UTF-8)", path)
	}
	return string(b), nil
}

// ini is ini@v1: argument "path:section.key" ("/hana/shared/HA1/global/hdb/custom/config/global.ini:ha_dr_provider_saphanasr.provider"),
// or "path:key" for a key before the first section; value the key's value
// as a string, or nil when the file has no such key. The section is what
// precedes the key's last '.'.
type ini struct{ root string }

func (g *ini) Gather(_ context.Context, arg string) (any, error) {
	i := strings.LastIndexByte(arg, ':')
	if i < 0 {
		return nil, badArgument("%q is not path:section.key", arg)
	}
	path, selector := arg[:i], arg[i+1:]
	section, key := "", selector
	if j := strings.LastIndexByte(selector, '.'); j >= 0 {
		section, key = selector[:j], selector[j+1:]
	}
	if !filepath.IsAbs(path) || key == "" {
		return nil, badArgument("%q is not path:section.key with an absolute path", arg)
	}
	b, err := readFile(g.root, path, "")
	if err != nil {
		return nil, err
	}
	v, ok := IniValue(string(b), section, key)
	if !ok {
		return nil, nil
	}
	return v, nil
}

// IniValue returns the value of key in section ("" before the first
// section header) of an INI text: "key = value" lines under "[section]"
// headers, ';' and '#' comment lines, the last of repeated keys. Section
// and key names match regardless of case, as in SAP's and Python's INI
// readers.
func IniValue(text, section, key string) (string, bool) {
	current := ""
	value, found := "", false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			current = strings.TrimSpace(line[1 : len(line)-1])
		default:
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(current, section) && strings.EqualFold(strings.TrimSpace(k), key) {
				value, found = strings.TrimSpace(v), true
			}
		}
	}
	return value, found
}
