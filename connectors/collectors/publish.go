package collectors

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Collection names one collection: one kind in one region of one account.
type Collection struct {
	Provider, Account, Region, Kind string
}

// Key is the collection key, the discoveries' agent id:
// "<provider>:<account>:<region>:<kind>".
func (c Collection) Key() string {
	return c.Provider + ":" + c.Account + ":" + c.Region + ":" + c.Kind
}

// Discoveries turns a complete collection into cloud_resources discoveries,
// one per chunk. Resources and their links are sorted, so an unchanged
// estate yields byte-identical chunks that downstream fingerprints
// recognise. An empty collection is one empty chunk: it still says that
// nothing of the kind exists any more.
func (c Collection) Discoveries(resources []payload.Resource, opts Options) ([]*fleetv1.Discovery, error) {
	opts = opts.withDefaults()
	resources = slices.Clone(resources)
	for i := range resources {
		resources[i].Links = sortLinks(resources[i].Links)
	}
	slices.SortFunc(resources, func(a, b payload.Resource) int { return cmp.Compare(a.ID, b.ID) })
	if i := duplicateID(resources); i >= 0 {
		return nil, fmt.Errorf("collection %s reports resource %s twice", c.Key(), resources[i].ID)
	}

	chunks, err := chunk(resources, opts.ChunkSize, opts.MaxChunkBytes)
	if err != nil {
		return nil, fmt.Errorf("collection %s: %w", c.Key(), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("collection id: %w", err)
	}
	at := timestamppb.New(opts.Now())
	ds := make([]*fleetv1.Discovery, len(chunks))
	for i, rs := range chunks {
		body, err := json.Marshal(encodedCollection{
			ResourceCollection: payload.ResourceCollection{
				Provider: c.Provider, Account: c.Account, Region: c.Region, Kind: c.Kind,
				CollectionID: id.String(), Chunk: i, Chunks: len(chunks), Complete: true,
			},
			Resources: rs,
		})
		if err != nil {
			return nil, fmt.Errorf("encode collection %s chunk %d: %w", c.Key(), i, err)
		}
		ds[i] = &fleetv1.Discovery{
			AgentId:       c.Key(),
			DiscoveryType: payload.CloudResources,
			CollectedAt:   at,
			Payload:       body,
			Source:        "collector:" + c.Provider,
		}
	}
	return ds, nil
}

// encodedCollection is a ResourceCollection whose resources are already
// encoded: chunking needs each resource's size, so each is encoded once.
// Its Resources field shadows the embedded one in JSON.
type encodedCollection struct {
	payload.ResourceCollection
	Resources []json.RawMessage `json:"resources"`
}

// chunk encodes sorted resources and splits them into chunks of at most
// size resources and about maxBytes each.
func chunk(resources []payload.Resource, size, maxBytes int) ([][]json.RawMessage, error) {
	var chunks [][]json.RawMessage
	var cur []json.RawMessage
	curBytes := 0
	for _, r := range resources {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode resource %s: %w", r.ID, err)
		}
		if len(cur) > 0 && (len(cur) == size || curBytes+len(b) > maxBytes) {
			chunks = append(chunks, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, b)
		curBytes += len(b)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	if len(chunks) == 0 {
		chunks = append(chunks, []json.RawMessage{})
	}
	return chunks, nil
}

func sortLinks(ls []payload.ResourceLink) []payload.ResourceLink {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b payload.ResourceLink) int {
		return cmp.Or(cmp.Compare(a.Relation, b.Relation), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	return slices.Compact(ls)
}

func duplicateID(sorted []payload.Resource) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i].ID == sorted[i-1].ID {
			return i
		}
	}
	return -1
}
