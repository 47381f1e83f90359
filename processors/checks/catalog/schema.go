package catalog

import (
	"bytes"
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaJSON is the JSON Schema of a check file; the loader validates every
// file against it before anything else, so the schema is the one definition
// of the format (and `fleetstream check schema` publishes it).
//
//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of a check file.
func Schema() []byte { return bytes.Clone(schemaJSON) }

var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("parse embedded schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("check.json", doc); err != nil {
		return nil, fmt.Errorf("add embedded schema.json: %w", err)
	}
	return c.Compile("check.json")
})

// schemaViolation is one leaf error of a schema validation: where in the
// document (JSON pointer tokens), an offending property if the error names
// one, and the message.
type schemaViolation struct {
	path     []string
	property string
	msg      string
}

// validateSchema validates a decoded check document (JSON-like values) and
// returns the leaf violations, sorted by location.
func validateSchema(doc any) ([]schemaViolation, error) {
	sch, err := compiledSchema()
	if err != nil {
		return nil, err
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil, nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return nil, err
	}
	p := message.NewPrinter(language.English)
	var out []schemaViolation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		v := schemaViolation{path: e.InstanceLocation, msg: e.ErrorKind.LocalizedString(p)}
		if ap, ok := e.ErrorKind.(*kind.AdditionalProperties); ok && len(ap.Properties) > 0 {
			v.property = ap.Properties[0]
			v.msg = fmt.Sprintf("unknown key %q", ap.Properties[0])
		}
		out = append(out, v)
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Join(out[i].path, "/") < strings.Join(out[j].path, "/")
	})
	return out, nil
}
