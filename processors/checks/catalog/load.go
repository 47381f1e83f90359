package catalog

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// embedded is the catalog shipped in the binary. Test cases live in
// checks/testdata and are not part of it.
//
//go:embed checks/*.yaml
var embedded embed.FS

var defaultCatalog = sync.OnceValues(func() (*Catalog, error) { return Load() })

// Default returns the embedded catalog. It is loaded and compiled once; the
// same immutable catalog is returned on every call.
func Default() (*Catalog, error) { return defaultCatalog() }

// Load returns the embedded catalog plus every *.yaml file in paths (a path
// may also name one file). It validates everything and returns all problems
// at once, one per line, each as "file:line: what".
func Load(paths ...string) (*Catalog, error) {
	return load(loadOptions{embedded: true, costLimit: DefaultCostLimit}, paths...)
}

type loadOptions struct {
	embedded  bool
	costLimit uint64
	extraEnv  []cel.EnvOption // tests add functions that misbehave
}

type loader struct {
	comp   *compiler
	checks []*Check
	seen   map[string]string // id -> "file:line" of its first definition
	errs   []error
}

func load(opts loadOptions, paths ...string) (*Catalog, error) {
	comp, err := newCompiler(opts.costLimit, opts.extraEnv...)
	if err != nil {
		return nil, err
	}
	l := &loader{comp: comp, seen: map[string]string{}}
	if opts.embedded {
		names, err := fs.Glob(embedded, "checks/*.yaml")
		if err != nil {
			return nil, fmt.Errorf("list embedded catalog: %w", err)
		}
		for _, name := range names {
			data, err := embedded.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("read embedded %s: %w", name, err)
			}
			l.file(name, data)
		}
	}
	for _, p := range paths {
		files, err := yamlFiles(p)
		if err != nil {
			l.errs = append(l.errs, err)
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				l.errs = append(l.errs, fmt.Errorf("read check file: %w", err))
				continue
			}
			l.file(f, data)
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	sort.Slice(l.checks, func(i, j int) bool { return l.checks[i].ID < l.checks[j].ID })
	c := &Catalog{checks: l.checks, byID: map[string]*Check{}}
	for _, ch := range l.checks {
		c.byID[ch.ID] = ch
	}
	return c, nil
}

// yamlFiles lists the *.yaml files of a directory, or the file itself.
func yamlFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("check directory %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", path, err)
	}
	sort.Strings(files)
	return files, nil
}

func (l *loader) errorf(file string, line int, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// file parses, validates and compiles one check file.
func (l *loader) file(name string, data []byte) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			l.errorf(name, n, "invalid YAML: %s", strings.TrimPrefix(err.Error(), m[0]))
		} else {
			l.errorf(name, 1, "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	if len(root.Content) == 0 {
		l.errorf(name, 1, "empty file: a check file holds one check (id, name, group, ...)")
		return
	}
	doc := root.Content[0]
	var generic any
	if err := doc.Decode(&generic); err != nil {
		l.errorf(name, doc.Line, "%v", err)
		return
	}
	violations, err := validateSchema(generic)
	if err != nil {
		l.errorf(name, doc.Line, "%v", err)
		return
	}
	for _, v := range violations {
		where := ""
		if len(v.path) > 0 {
			where = strings.Join(v.path, ".") + ": "
		}
		l.errorf(name, nodeLine(doc, v.path, v.property), "%s%s", where, v.msg)
	}
	if len(violations) > 0 {
		return
	}
	var raw rawCheck
	if err := doc.Decode(&raw); err != nil {
		l.errorf(name, doc.Line, "%v", err)
		return
	}
	if ch := l.compileCheck(name, doc, &raw); ch != nil {
		l.checks = append(l.checks, ch)
	}
}

// nodeLine finds the line of the value at a JSON pointer path (or of the
// key named property inside it).
func nodeLine(n *yaml.Node, path []string, property string) int {
	for _, tok := range path {
		switch n.Kind {
		case yaml.MappingNode:
			next := (*yaml.Node)(nil)
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return n.Line
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(n.Content) {
				return n.Line
			}
			n = n.Content[i]
		default:
			return n.Line
		}
	}
	if property != "" && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == property {
				return n.Content[i].Line
			}
		}
	}
	return n.Line
}
