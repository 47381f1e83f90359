package payload

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/structpb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// MaxChunks bounds ResourceCollection.Chunks: scenario detection keeps the
// received chunk indexes of a collection under way in its state.
const MaxChunks = 10000

// Key is the collection key "<provider>:<account>:<region>:<kind>": the
// agent_id of the collection's discoveries.
func (c *ResourceCollection) Key() string {
	return CollectionKey(c.Provider, c.Account, c.Region, c.Kind)
}

// CollectionKey is "<provider>:<account>:<region>:<kind>".
func CollectionKey(provider, account, region, kind string) string {
	return provider + ":" + account + ":" + region + ":" + kind
}

// ResourceKey is the global key of a resource, "<provider>:<account>:<id>":
// the cloud_resource aggregate id. A resource's links name other resources
// of the same provider and account, so their keys derive the same way.
func ResourceKey(provider, account, id string) string {
	return provider + ":" + account + ":" + id
}

// DecodeResourceCollection decodes and validates a cloud_resources payload.
// Errors name the offending field ("resources[3].links[0].id").
func DecodeResourceCollection(raw []byte) (*ResourceCollection, error) {
	var c ResourceCollection
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, decodeError(err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func fieldError(name, format string, args ...any) error {
	return &FieldError{Name: name, Err: fmt.Errorf(format, args...)}
}

func (c *ResourceCollection) validate() error {
	for _, f := range []struct{ name, value string }{
		{"provider", c.Provider}, {"account", c.Account}, {"region", c.Region}, {"kind", c.Kind}, {"collection_id", c.CollectionID},
	} {
		if f.value == "" {
			return fieldError(f.name, "%s is required (the collection key is provider:account:region:kind; use region \"global\" for account-wide kinds)", f.name)
		}
	}
	switch {
	case c.Chunks < 1 || c.Chunks > MaxChunks:
		return fieldError("chunks", "chunks must be between 1 and %d (a collection sent in one piece has chunks 1); got %d", MaxChunks, c.Chunks)
	case c.Chunk < 0 || c.Chunk >= c.Chunks:
		return fieldError("chunk", "chunk must be between 0 and chunks-1 (%d); got %d", c.Chunks-1, c.Chunk)
	}
	seen := make(map[string]int, len(c.Resources))
	for i, r := range c.Resources {
		at := fmt.Sprintf("resources[%d]", i)
		if r.ID == "" {
			return fieldError(at+".id", "%s.id is required", at)
		}
		if j, dup := seen[r.ID]; dup {
			return fieldError(at+".id", "%s.id %q repeats resources[%d]: report each resource once per chunk", at, r.ID, j)
		}
		seen[r.ID] = i
		for j, l := range r.Links {
			for _, f := range []struct{ name, value string }{{"relation", l.Relation}, {"kind", l.Kind}, {"id", l.ID}} {
				if f.value == "" {
					name := fmt.Sprintf("%s.links[%d].%s", at, j, f.name)
					return fieldError(name, "%s is required", name)
				}
			}
		}
		if _, err := structpb.NewStruct(r.Attributes); err != nil {
			return fieldError(at+".attributes", "%s.attributes: %v", at, err)
		}
	}
	return nil
}

// Specs returns the collection's resources as the specs the cloud_resource
// aggregate keeps: links sorted and deduplicated, so the same facts always
// give the same spec (and fingerprint) whatever order the provider
// reported them in.
func (c *ResourceCollection) Specs() ([]*fleetv1.ResourceSpec, error) {
	out := make([]*fleetv1.ResourceSpec, len(c.Resources))
	for i, r := range c.Resources {
		attrs, err := structpb.NewStruct(r.Attributes)
		if err != nil {
			return nil, fieldError(fmt.Sprintf("resources[%d].attributes", i), "resources[%d].attributes: %v", i, err)
		}
		if len(r.Attributes) == 0 {
			attrs = nil // absent and empty are the same facts
		}
		out[i] = &fleetv1.ResourceSpec{
			Provider:   c.Provider,
			Account:    c.Account,
			Region:     c.Region,
			Kind:       c.Kind,
			ResourceId: r.ID,
			Name:       r.Name,
			Tags:       r.Tags,
			Attributes: attrs,
			Links:      normalLinks(r.Links),
		}
	}
	return out, nil
}

func normalLinks(links []ResourceLink) []*fleetv1.ResourceLink {
	if len(links) == 0 {
		return nil
	}
	ls := slices.Clone(links)
	slices.SortFunc(ls, func(a, b ResourceLink) int {
		return cmp.Or(cmp.Compare(a.Relation, b.Relation), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	ls = slices.Compact(ls)
	out := make([]*fleetv1.ResourceLink, len(ls))
	for i, l := range ls {
		out[i] = &fleetv1.ResourceLink{Relation: l.Relation, Kind: l.Kind, Id: l.ID}
	}
	return out
}
