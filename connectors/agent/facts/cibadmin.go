package facts

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

func init() {
	Register("cibadmin@v1", func(env Env) Gatherer { return &cibadmin{tools: env.Tools} })
}

// cibadmin is cibadmin@v1: no argument, value the CIB that `cibadmin
// --query --local` prints, as a map (ParseCIB): {"cib": {"validate-with":
// "pacemaker-3.9", "configuration": {"crm_config": {"cluster_property_set":
// [{"id": "cib-bootstrap-options", "nvpair": [{"name": "stonith-enabled",
// "value": "true", ...}]}]}, "resources": {...}, ...}, "status": {...}}}.
type cibadmin struct{ tools *Tools }

func (g *cibadmin) Gather(ctx context.Context, _ string) (any, error) {
	out, err := g.tools.Run(ctx, "cibadmin", "--query", "--local")
	if exit := (*ExitError)(nil); errors.As(err, &exit) {
		return nil, missing("cibadmin could not read the CIB (is pacemaker running on this host?): %v", exit)
	}
	if err != nil {
		return nil, missingTo(err, "cibadmin is not installed on this host: it is not a pacemaker cluster node")
	}
	cib, err := ParseCIB(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("cibadmin --query --local: %w", err)
	}
	return cib, nil
}

// cibListElements are the CIB elements that may repeat under their parent:
// always lists, so a check indexes them the same on every cluster.
var cibListElements = map[string]bool{
	"nvpair": true, "cluster_property_set": true, "meta_attributes": true, "instance_attributes": true,
	"primitive": true, "clone": true, "group": true, "master": true, "node": true, "op": true,
	"rsc_location": true, "rsc_colocation": true, "rsc_order": true,
	"node_state": true, "lrm_resource": true, "lrm_rsc_op": true,
}

// ParseCIB turns a CIB XML document (cibadmin's output, or a cib.xml) into
// nested maps: an element is a map of its attributes and its children by
// element name (a child repeated under one parent, and the elements of
// cibListElements always, are lists), and its text, if any, under "#text".
// The root element is the one key of the result.
func ParseCIB(r io.Reader) (map[string]any, error) {
	dec := xml.NewDecoder(r)
	type elem struct {
		name string
		m    map[string]any
		text strings.Builder
	}
	var stack []*elem
	var root map[string]any
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse CIB XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("parse CIB XML: a second root element <%s>", t.Name.Local)
			}
			e := &elem{name: t.Name.Local, m: make(map[string]any, len(t.Attr))}
			for _, a := range t.Attr {
				e.m[a.Name.Local] = a.Value
			}
			stack = append(stack, e)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.EndElement:
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if text := strings.TrimSpace(e.text.String()); text != "" {
				e.m["#text"] = text
			}
			if len(stack) == 0 {
				root = map[string]any{e.name: e.m}
				continue
			}
			parent := stack[len(stack)-1].m
			switch prev := parent[e.name].(type) {
			case []any:
				parent[e.name] = append(prev, e.m)
			case map[string]any:
				parent[e.name] = []any{prev, e.m}
			default:
				if cibListElements[e.name] {
					parent[e.name] = []any{e.m}
				} else {
					parent[e.name] = e.m
				}
			}
		}
	}
	if root == nil {
		return nil, errors.New("parse CIB XML: no element")
	}
	return root, nil
}
