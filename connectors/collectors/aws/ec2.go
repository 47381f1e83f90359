package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// EC2 list calls take 5 to 1000 results a page.
const ec2MinPage, ec2MaxPage = 5, 1000

func collectRegions(ctx context.Context, s scope) ([]payload.Resource, error) {
	out, err := s.ec2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, fmt.Errorf("describe regions: %w", err)
	}
	rs := make([]payload.Resource, 0, len(out.Regions))
	for _, r := range out.Regions {
		a := attrs{}
		a.str("endpoint", r.Endpoint)
		a.str("opt_in_status", r.OptInStatus)
		rs = append(rs, payload.Resource{ID: aws.ToString(r.RegionName), Name: aws.ToString(r.RegionName), Attributes: a})
	}
	return rs, nil
}

func collectVPCs(ctx context.Context, s scope) ([]payload.Resource, error) {
	var rs []payload.Resource
	pages := ec2.NewDescribeVpcsPaginator(s.ec2, &ec2.DescribeVpcsInput{MaxResults: aws.Int32(s.cfg.pageSize(ec2MinPage, ec2MaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe vpcs: %w", err)
		}
		for _, v := range page.Vpcs {
			a := attrs{}
			a.str("cidr_block", v.CidrBlock)
			a.str("state", string(v.State))
			a.boolean("is_default", v.IsDefault)
			a.str("instance_tenancy", string(v.InstanceTenancy))
			a.str("dhcp_options_id", v.DhcpOptionsId)
			a.str("owner_id", v.OwnerId)
			tags := ec2Tags(v.Tags)
			rs = append(rs, payload.Resource{ID: aws.ToString(v.VpcId), Name: tags["Name"], Tags: tags, Attributes: a})
		}
	}
	return rs, nil
}

func collectSubnets(ctx context.Context, s scope) ([]payload.Resource, error) {
	var rs []payload.Resource
	pages := ec2.NewDescribeSubnetsPaginator(s.ec2, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(s.cfg.pageSize(ec2MinPage, ec2MaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe subnets: %w", err)
		}
		for _, s := range page.Subnets {
			a := attrs{}
			a.str("cidr_block", s.CidrBlock)
			a.str("availability_zone", s.AvailabilityZone)
			a.str("availability_zone_id", s.AvailabilityZoneId)
			a.str("state", string(s.State))
			a.boolean("default_for_az", s.DefaultForAz)
			a.boolean("map_public_ip_on_launch", s.MapPublicIpOnLaunch)
			a.str("arn", s.SubnetArn)
			tags := ec2Tags(s.Tags)
			rs = append(rs, payload.Resource{
				ID: aws.ToString(s.SubnetId), Name: tags["Name"], Tags: tags, Attributes: a,
				Links: collectors.AppendLink(nil, RelInVPC, KindVPC, aws.ToString(s.VpcId)),
			})
		}
	}
	return rs, nil
}

func collectSecurityGroups(ctx context.Context, s scope) ([]payload.Resource, error) {
	var rs []payload.Resource
	pages := ec2.NewDescribeSecurityGroupsPaginator(s.ec2, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(s.cfg.pageSize(ec2MinPage, ec2MaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security groups: %w", err)
		}
		for _, g := range page.SecurityGroups {
			a := attrs{}
			a.str("group_name", g.GroupName)
			a.str("description", g.Description)
			a.str("owner_id", g.OwnerId)
			a["ingress"] = permissions(g.IpPermissions)
			a["egress"] = permissions(g.IpPermissionsEgress)
			tags := ec2Tags(g.Tags)
			rs = append(rs, payload.Resource{
				ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), Tags: tags, Attributes: a,
				Links: collectors.AppendLink(nil, RelInVPC, KindVPC, aws.ToString(g.VpcId)),
			})
		}
	}
	return rs, nil
}

// permissions flattens security group rules into plain values that keep
// their order, so an unchanged group encodes identically.
func permissions(ps []ec2types.IpPermission) []map[string]any {
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		r := attrs{}
		r.str("protocol", p.IpProtocol)
		r.int32("from_port", p.FromPort)
		r.int32("to_port", p.ToPort)
		var cidrs, groups []string
		for _, ip := range p.IpRanges {
			cidrs = append(cidrs, aws.ToString(ip.CidrIp))
		}
		for _, ip := range p.Ipv6Ranges {
			cidrs = append(cidrs, aws.ToString(ip.CidrIpv6))
		}
		for _, g := range p.UserIdGroupPairs {
			groups = append(groups, aws.ToString(g.GroupId))
		}
		if len(cidrs) > 0 {
			r["cidrs"] = cidrs
		}
		if len(groups) > 0 {
			r["security_groups"] = groups
		}
		out = append(out, r)
	}
	return out
}

func collectInstances(ctx context.Context, s scope) ([]payload.Resource, error) {
	// Which load balancers an instance is behind is the ELB's knowledge;
	// the link belongs to the instance, so ask first.
	behind, err := instanceLoadBalancers(ctx, s)
	if err != nil {
		return nil, err
	}
	var rs []payload.Resource
	// Terminated instances stay visible for about an hour; leaving them
	// out makes the collection report them deleted at once.
	live := []string{"pending", "running", "shutting-down", "stopping", "stopped"}
	pages := ec2.NewDescribeInstancesPaginator(s.ec2, &ec2.DescribeInstancesInput{
		MaxResults: aws.Int32(s.cfg.pageSize(ec2MinPage, ec2MaxPage)),
		Filters:    []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: live}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				rs = append(rs, instance(in, behind[aws.ToString(in.InstanceId)]))
			}
		}
	}
	return rs, nil
}

func instance(in ec2types.Instance, loadBalancers []string) payload.Resource {
	a := attrs{}
	a.str("instance_type", string(in.InstanceType))
	if in.State != nil {
		a.str("state", string(in.State.Name))
	}
	a.str("image_id", in.ImageId)
	a.time("launch_time", in.LaunchTime)
	a.str("private_ip_address", in.PrivateIpAddress)
	a.str("public_ip_address", in.PublicIpAddress)
	a.str("private_dns_name", in.PrivateDnsName)
	a.str("architecture", string(in.Architecture))
	a.str("platform_details", in.PlatformDetails)
	a.str("key_name", in.KeyName)
	if in.Placement != nil {
		a.str("availability_zone", in.Placement.AvailabilityZone)
	}
	if in.IamInstanceProfile != nil {
		a.str("iam_instance_profile", in.IamInstanceProfile.Arn)
	}
	tags := ec2Tags(in.Tags)
	var links []payload.ResourceLink
	links = collectors.AppendLink(links, RelInVPC, KindVPC, aws.ToString(in.VpcId))
	links = collectors.AppendLink(links, RelInSubnet, KindSubnet, aws.ToString(in.SubnetId))
	for _, g := range in.SecurityGroups {
		links = collectors.AppendLink(links, RelHasSecurityGroup, KindSecurityGroup, aws.ToString(g.GroupId))
	}
	for _, lb := range loadBalancers {
		links = collectors.AppendLink(links, RelBehindLoadBalancer, KindLoadBalancer, lb)
	}
	return payload.Resource{ID: aws.ToString(in.InstanceId), Name: tags["Name"], Tags: tags, Attributes: a, Links: links}
}

func collectNetworkInterfaces(ctx context.Context, s scope) ([]payload.Resource, error) {
	var rs []payload.Resource
	pages := ec2.NewDescribeNetworkInterfacesPaginator(s.ec2, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(s.cfg.pageSize(ec2MinPage, ec2MaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe network interfaces: %w", err)
		}
		for _, n := range page.NetworkInterfaces {
			a := attrs{}
			a.str("interface_type", string(n.InterfaceType))
			a.str("status", string(n.Status))
			a.str("private_ip_address", n.PrivateIpAddress)
			a.str("mac_address", n.MacAddress)
			a.str("description", n.Description)
			a.str("availability_zone", n.AvailabilityZone)
			a.boolean("requester_managed", n.RequesterManaged)
			if n.Association != nil {
				a.str("public_ip", n.Association.PublicIp)
			}
			var links []payload.ResourceLink
			if n.Attachment != nil {
				links = collectors.AppendLink(links, RelAttachedTo, KindInstance, aws.ToString(n.Attachment.InstanceId))
				a.int32("device_index", n.Attachment.DeviceIndex)
			}
			links = collectors.AppendLink(links, RelInSubnet, KindSubnet, aws.ToString(n.SubnetId))
			links = collectors.AppendLink(links, RelInVPC, KindVPC, aws.ToString(n.VpcId))
			for _, g := range n.Groups {
				links = collectors.AppendLink(links, RelHasSecurityGroup, KindSecurityGroup, aws.ToString(g.GroupId))
			}
			tags := ec2Tags(n.TagSet)
			rs = append(rs, payload.Resource{ID: aws.ToString(n.NetworkInterfaceId), Name: tags["Name"], Tags: tags, Attributes: a, Links: links})
		}
	}
	return rs, nil
}

func ec2Tags(ts []ec2types.Tag) map[string]string {
	if len(ts) == 0 {
		return nil
	}
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
