package aws

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// collector reads one account through one endpoint.
type collector struct {
	p        *Provider
	endpoint string
	account  string
}

func (c *collector) Account() string { return c.account }

// Regions lists the regions enabled for the account.
func (c *collector) Regions(ctx context.Context) ([]string, error) {
	cl, err := c.p.clientsFor(ctx, c.endpoint, c.p.cfg.HomeRegion)
	if err != nil {
		return nil, err
	}
	out, err := cl.ec2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, classify(fmt.Errorf("describe regions: %w", err))
	}
	rs := make([]string, 0, len(out.Regions))
	for _, r := range out.Regions {
		rs = append(rs, aws.ToString(r.RegionName))
	}
	slices.Sort(rs)
	return rs, nil
}

func (c *collector) Collect(ctx context.Context, region, kind string) ([]payload.Resource, error) {
	i := slices.IndexFunc(kinds, func(k kindSpec) bool { return k.Name == kind })
	if i < 0 {
		return nil, tasks.Permanent(fmt.Errorf("aws collects no kind %q", kind))
	}
	if kinds[i].Global {
		region = c.p.cfg.HomeRegion
	}
	cl, err := c.p.clientsFor(ctx, c.endpoint, region)
	if err != nil {
		return nil, err
	}
	in := func(ctx context.Context, region string) (*clients, error) {
		return c.p.clientsFor(ctx, c.endpoint, region)
	}
	rs, err := kinds[i].collect(ctx, scope{clients: cl, cfg: c.p.cfg, in: in})
	return rs, classify(err)
}

// Close keeps the clients: they are shared by the provider's tasks.
func (c *collector) Close(context.Context) error { return nil }
