package aws

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// ELBv2 list calls take 1 to 400 results a page; DescribeTags takes 20
// resources a call.
const (
	elbMinPage, elbMaxPage = 1, 400
	elbTagBatch            = 20
)

func collectLoadBalancers(ctx context.Context, s scope) ([]payload.Resource, error) {
	groups, err := targetGroups(ctx, s)
	if err != nil {
		return nil, err
	}
	byLB := map[string][]map[string]any{}
	for _, g := range groups {
		a := attrs{}
		a.str("arn", g.TargetGroupArn)
		a.str("name", g.TargetGroupName)
		a.str("protocol", string(g.Protocol))
		a.int32("port", g.Port)
		a.str("target_type", string(g.TargetType))
		for _, lb := range g.LoadBalancerArns {
			byLB[lb] = append(byLB[lb], a)
		}
	}

	var lbs []elbtypes.LoadBalancer
	pages := elb.NewDescribeLoadBalancersPaginator(s.elb, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(s.cfg.pageSize(elbMinPage, elbMaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe load balancers: %w", err)
		}
		lbs = append(lbs, page.LoadBalancers...)
	}
	arns := make([]string, len(lbs))
	for i, lb := range lbs {
		arns[i] = aws.ToString(lb.LoadBalancerArn)
	}
	tags, err := elbTags(ctx, s, arns)
	if err != nil {
		return nil, err
	}

	rs := make([]payload.Resource, 0, len(lbs))
	for _, lb := range lbs {
		arn := aws.ToString(lb.LoadBalancerArn)
		a := attrs{}
		a.str("type", string(lb.Type))
		a.str("scheme", string(lb.Scheme))
		a.str("dns_name", lb.DNSName)
		a.str("ip_address_type", string(lb.IpAddressType))
		a.str("canonical_hosted_zone_id", lb.CanonicalHostedZoneId)
		a.time("created_time", lb.CreatedTime)
		if lb.State != nil {
			a.str("state", string(lb.State.Code))
		}
		if tgs := byLB[arn]; len(tgs) > 0 {
			a["target_groups"] = tgs
		}
		var links []payload.ResourceLink
		links = collectors.AppendLink(links, RelInVPC, KindVPC, aws.ToString(lb.VpcId))
		for _, az := range lb.AvailabilityZones {
			links = collectors.AppendLink(links, RelInSubnet, KindSubnet, aws.ToString(az.SubnetId))
		}
		for _, g := range lb.SecurityGroups {
			links = collectors.AppendLink(links, RelHasSecurityGroup, KindSecurityGroup, g)
		}
		rs = append(rs, payload.Resource{ID: arn, Name: aws.ToString(lb.LoadBalancerName), Tags: tags[arn], Attributes: a, Links: links})
	}
	return rs, nil
}

func targetGroups(ctx context.Context, s scope) ([]elbtypes.TargetGroup, error) {
	var groups []elbtypes.TargetGroup
	pages := elb.NewDescribeTargetGroupsPaginator(s.elb, &elb.DescribeTargetGroupsInput{PageSize: aws.Int32(s.cfg.pageSize(elbMinPage, elbMaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe target groups: %w", err)
		}
		groups = append(groups, page.TargetGroups...)
	}
	return groups, nil
}

// instanceLoadBalancers maps instance ids to the ARNs of the load
// balancers they are registered behind, through the target groups of
// target type instance.
func instanceLoadBalancers(ctx context.Context, s scope) (map[string][]string, error) {
	groups, err := targetGroups(ctx, s)
	if err != nil {
		return nil, err
	}
	behind := map[string][]string{}
	for _, g := range groups {
		if g.TargetType != elbtypes.TargetTypeEnumInstance || len(g.LoadBalancerArns) == 0 {
			continue
		}
		out, err := s.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: g.TargetGroupArn})
		if err != nil {
			return nil, fmt.Errorf("describe target health of %s: %w", aws.ToString(g.TargetGroupArn), err)
		}
		for _, d := range out.TargetHealthDescriptions {
			if d.Target == nil {
				continue
			}
			id := aws.ToString(d.Target.Id)
			for _, lb := range g.LoadBalancerArns {
				if !slices.Contains(behind[id], lb) {
					behind[id] = append(behind[id], lb)
				}
			}
		}
	}
	return behind, nil
}

func elbTags(ctx context.Context, s scope, arns []string) (map[string]map[string]string, error) {
	tags := map[string]map[string]string{}
	for batch := range slices.Chunk(arns, elbTagBatch) {
		out, err := s.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			return nil, fmt.Errorf("describe load balancer tags: %w", err)
		}
		for _, d := range out.TagDescriptions {
			if len(d.Tags) == 0 {
				continue
			}
			m := make(map[string]string, len(d.Tags))
			for _, t := range d.Tags {
				m[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			tags[aws.ToString(d.ResourceArn)] = m
		}
	}
	return tags, nil
}
