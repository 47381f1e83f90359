package collectors

import (
	"context"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// GlobalRegion is the region of account-wide kinds (AWS regions and S3
// buckets, vSphere datacenters): they are collected once per account, not
// once per region.
const GlobalRegion = "global"

// Kind is one resource kind a provider collects.
type Kind struct {
	// Name is the kind as published, e.g. "ec2_instance", "vm".
	Name string
	// Global kinds exist once per account and are collected under
	// GlobalRegion.
	Global bool
}

// Target is what one task points a provider at.
type Target struct {
	// Account is the AWS account id or vCenter instance UUID the task
	// expects; empty means whatever the credentials reach. A collector whose
	// credentials reach another account fails permanently.
	Account string
	// Endpoint overrides the provider's configured API endpoint (a test
	// server, a vCenter URL); empty keeps the configured one.
	Endpoint string
}

// Provider is one kind of API that collectors read (AWS, vSphere). It is
// safe for concurrent use: tasks open collectors on it in parallel.
type Provider interface {
	// Name prefixes the task types and collection keys: "aws", "vsphere".
	Name() string
	// Kinds lists the resource kinds the provider collects.
	Kinds() []Kind
	// Open connects to the target for one task. Errors that retrying cannot
	// fix (rejected credentials, wrong account) are tasks.Permanent.
	Open(ctx context.Context, t Target) (Collector, error)
}

// Collector reads one account through one connection.
type Collector interface {
	// Account is the account the connection reaches (AWS account id,
	// vCenter instance UUID).
	Account() string
	// Regions lists the account's regions (AWS regions, vSphere datacenter
	// names).
	Regions(ctx context.Context) ([]string, error)
	// Collect returns every resource of one kind in one region (GlobalRegion
	// for global kinds), with their links to other resources.
	Collect(ctx context.Context, region, kind string) ([]payload.Resource, error)
	// Close releases the connection.
	Close(ctx context.Context) error
}

// AppendLink appends a link to the resource id of a kind, unless id is
// empty: providers report optional relations (a stopped instance has no
// subnet) without a branch at every call.
func AppendLink(ls []payload.ResourceLink, relation, kind, id string) []payload.ResourceLink {
	if id == "" {
		return ls
	}
	return append(ls, payload.ResourceLink{Relation: relation, Kind: kind, ID: id})
}
