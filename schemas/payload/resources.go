package payload

// CloudResources is the discovery type of agentless collectors: one
// collection of one resource kind in one account and region.
const CloudResources = "cloud_resources"

// ResourceCollection is the payload of a cloud_resources discovery. Its
// Discovery envelope's agent_id is the collection key
// "<provider>:<account>:<region>:<kind>", so every report of one
// collection lands in one partition, in order.
//
// A full collection may be split into chunks (Chunk 0..Chunks-1 sharing a
// CollectionID). When Complete is set, the resources reported by all chunks
// of that collection are everything that exists: resources reported by an
// earlier complete collection and missing now were deleted (an explicit
// tombstone, not a TTL). A partial collection (Complete false) only adds or
// changes resources.
type ResourceCollection struct {
	Provider     string     `json:"provider"` // "aws", "vsphere"
	Account      string     `json:"account"`  // AWS account id, vCenter instance UUID
	Region       string     `json:"region"`   // AWS region, vSphere datacenter
	Kind         string     `json:"kind"`     // "ec2_instance", "vpc", "vm", "datastore", ...
	CollectionID string     `json:"collection_id"`
	Chunk        int        `json:"chunk"`
	Chunks       int        `json:"chunks"`
	Complete     bool       `json:"complete"`
	Resources    []Resource `json:"resources"`
}

// Resource is one collected resource.
type Resource struct {
	// ID is unique within provider and account (ARN or resource id, vSphere
	// managed object reference).
	ID   string            `json:"id"`
	Name string            `json:"name,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
	// Attributes are the kind's properties (state, type, cidr, ...), kept
	// as the provider reports them.
	Attributes map[string]any `json:"attributes,omitempty"`
	// Links are the resource's relations to other resources, by their ids.
	Links []ResourceLink `json:"links,omitempty"`
}

// ResourceLink relates a resource to another one.
type ResourceLink struct {
	// Relation names the link from this resource's side: "in_vpc",
	// "in_subnet", "has_security_group", "behind_load_balancer",
	// "runs_on_host", "uses_datastore", "on_network", ...
	Relation string `json:"relation"`
	Kind     string `json:"kind"`
	ID       string `json:"id"`
}
