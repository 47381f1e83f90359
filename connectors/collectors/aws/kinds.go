package aws

import (
	"context"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Resource kinds, as published.
const (
	KindRegion           = "region"
	KindVPC              = "vpc"
	KindSubnet           = "subnet"
	KindInstance         = "ec2_instance"
	KindSecurityGroup    = "security_group"
	KindLoadBalancer     = "load_balancer"
	KindBucket           = "s3_bucket"
	KindNetworkInterface = "network_interface"
)

// Link relations, from the linking resource's side.
const (
	RelInVPC              = "in_vpc"
	RelInSubnet           = "in_subnet"
	RelHasSecurityGroup   = "has_security_group"
	RelBehindLoadBalancer = "behind_load_balancer"
	RelAttachedTo         = "attached_to"
)

// scope is what collecting one kind in one region works with.
type scope struct {
	*clients // of the region; of the home region for global kinds
	cfg      Config
	// in returns the clients of another region (an S3 bucket's).
	in func(ctx context.Context, region string) (*clients, error)
}

// collectFunc collects one kind.
type collectFunc func(ctx context.Context, s scope) ([]payload.Resource, error)

// kindSpec is a kind and how it is collected.
type kindSpec struct {
	collectors.Kind
	collect collectFunc
}

// kinds is the provider's feature list: one row per kind.
var kinds = []kindSpec{
	{collectors.Kind{Name: KindVPC}, collectVPCs},
	{collectors.Kind{Name: KindSubnet}, collectSubnets},
	{collectors.Kind{Name: KindSecurityGroup}, collectSecurityGroups},
	{collectors.Kind{Name: KindInstance}, collectInstances},
	{collectors.Kind{Name: KindNetworkInterface}, collectNetworkInterfaces},
	{collectors.Kind{Name: KindLoadBalancer}, collectLoadBalancers},
	{collectors.Kind{Name: KindRegion, Global: true}, collectRegions},
	{collectors.Kind{Name: KindBucket, Global: true}, collectBuckets},
}
