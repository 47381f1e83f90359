package scenario

import (
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// resourcesPolicy turns cloud_resources discoveries (one collection key per
// agent id) into cloud_resource commands.
//
// Each resource is fingerprinted; DiscoverResource goes out only for a
// resource whose fingerprint differs from the one last sent, so an
// unchanged estate costs one hash per resource and no command.
//
// Chunks of a complete collection are accumulated until all of them
// arrived: only then is it known which resources the collection no longer
// has, and each of those gets a DeleteResource. What accumulates is the
// chunk indexes and hashes of the ids they reported, not the resources:
// chunks exist to keep records under Kafka's message size, and holding
// their resources in one table value would put the whole collection back
// into one record. (About 35 bytes per resource of a collection key stay in
// its state, so a kind of some 25,000 resources in one region still fits in
// Kafka's default 1 MiB record.) So a chunk's new or changed resources are
// sent as the chunk arrives (they exist whether or not the rest of the
// collection follows); a collection whose chunks never all arrive deletes
// nothing, and the next collection replaces it.
//
// A chunk older than the newest one accepted, of another collection than
// the one under way, is stale (a collector retried late) and ignored, as is
// a chunk of a collection that already completed (redelivery): either
// would otherwise undo newer facts.
func resourcesPolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	c, err := payload.DecodeResourceCollection(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "cloud_resources of %s: %w", d.GetAgentId(), err)
	}
	if c.Key() != d.GetAgentId() {
		return nil, "", reject(reasonInvalidEnvelope, "cloud_resources of collection %s sent as agent %s: a collection's agent_id is its key provider:account:region:kind", c.Key(), d.GetAgentId())
	}
	specs, err := c.Specs()
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "cloud_resources of %s: %w", d.GetAgentId(), err)
	}
	if next.Resources == nil {
		next.Resources = new(fleetv1.ResourceCollectionState)
	}
	st := next.Resources
	if stale(st, c, d) {
		return nil, outcomeStale, nil
	}
	if last := st.GetLastCollectedAt(); last == nil || d.GetCollectedAt().AsTime().After(last.AsTime()) {
		st.LastCollectedAt = d.GetCollectedAt()
	}
	if st.Fingerprints == nil {
		st.Fingerprints = map[string]uint64{}
	}

	var commands []*fleetv1.Command
	for _, spec := range specs {
		fp, err := fingerprint(spec)
		if err != nil {
			return nil, "", fmt.Errorf("cloud_resources of %s: resource %s: %w", d.GetAgentId(), spec.GetResourceId(), err)
		}
		if old, ok := st.Fingerprints[spec.GetResourceId()]; ok && old == fp {
			continue
		}
		st.Fingerprints[spec.GetResourceId()] = fp
		commands = append(commands, &fleetv1.Command{
			AggregateId: payload.ResourceKey(c.Provider, c.Account, spec.GetResourceId()),
			Body: &fleetv1.Command_DiscoverResource{DiscoverResource: &fleetv1.DiscoverResource{
				Spec: spec, CollectionId: c.CollectionID,
			}},
		})
	}
	if c.Complete {
		deletes, err := completeChunk(st, c, specs)
		if err != nil {
			return nil, "", err
		}
		commands = append(commands, deletes...)
	}
	if len(commands) == 0 {
		return nil, outcomeNoDifference, nil
	}
	return commands, outcomeCommands, nil
}

// stale reports whether chunk c must be ignored (see resourcesPolicy).
func stale(st *fleetv1.ResourceCollectionState, c *payload.ResourceCollection, d *fleetv1.Discovery) bool {
	if c.Complete && c.CollectionID == st.GetLastCollectionId() {
		return true
	}
	if st.GetPending().GetCollectionId() == c.CollectionID {
		return false
	}
	last := st.GetLastCollectedAt()
	return last != nil && d.GetCollectedAt().AsTime().Before(last.AsTime())
}

// completeChunk records a chunk of a complete collection and, once every
// chunk arrived, returns the deletions of the resources it did not report.
func completeChunk(st *fleetv1.ResourceCollectionState, c *payload.ResourceCollection, specs []*fleetv1.ResourceSpec) ([]*fleetv1.Command, error) {
	p := st.GetPending()
	if p.GetCollectionId() != c.CollectionID {
		// A new collection supersedes one whose chunks never all arrived.
		p = &fleetv1.PendingCollection{CollectionId: c.CollectionID, Chunks: int32(c.Chunks)}
		st.Pending = p
	}
	if p.GetChunks() != int32(c.Chunks) {
		return nil, reject(reasonMalformedPayload, "cloud_resources of %s: chunk %d of collection %s says %d chunks, an earlier chunk said %d",
			c.Key(), c.Chunk, c.CollectionID, c.Chunks, p.GetChunks())
	}
	if i, found := slices.BinarySearch(p.Received, int32(c.Chunk)); !found {
		p.Received = slices.Insert(p.Received, i, int32(c.Chunk))
	}
	for _, s := range specs {
		h := xxhash.Sum64String(s.GetResourceId())
		if i, found := slices.BinarySearch(p.Seen, h); !found {
			p.Seen = slices.Insert(p.Seen, i, h)
		}
	}
	if len(p.Received) < int(p.Chunks) {
		return nil, nil
	}

	var gone []string
	for id := range st.Fingerprints {
		if _, found := slices.BinarySearch(p.Seen, xxhash.Sum64String(id)); !found {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone) // map order is random; commands must be reproducible
	commands := make([]*fleetv1.Command, len(gone))
	for i, id := range gone {
		delete(st.Fingerprints, id)
		commands[i] = &fleetv1.Command{
			AggregateId: payload.ResourceKey(c.Provider, c.Account, id),
			Body: &fleetv1.Command_DeleteResource{DeleteResource: &fleetv1.DeleteResource{
				Collection: c.Key(), CollectionId: c.CollectionID,
			}},
		}
	}
	st.LastCollectionId, st.Pending = c.CollectionID, nil
	return commands, nil
}

// fingerprint hashes the canonical form of a spec: deterministic protobuf,
// with links already sorted (payload.ResourceCollection.Specs).
func fingerprint(spec *fleetv1.ResourceSpec) (uint64, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(spec)
	if err != nil {
		return 0, err
	}
	return xxhash.Sum64(b), nil
}
