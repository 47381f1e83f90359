package mototest

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Seed says what to create in one region.
type Seed struct {
	Region string
	// Instances to run, half in each subnet (those in subnet 0 also get
	// the app security group); the first BehindLoadBalancer of them are
	// registered with the load balancer's target group.
	Instances          int
	BehindLoadBalancer int
	// PerReservation is how many instances one RunInstances call launches
	// (one reservation). Default 100. EC2 pages DescribeInstances by
	// reservation, so 1 makes the most pages.
	PerReservation int
	// Buckets to create, alternately in Region and in BucketRegion, every
	// other one tagged.
	Buckets      int
	BucketRegion string
}

// Estate is what Seed created, by id.
type Estate struct {
	Region         string
	VPC            string
	Subnets        []string // two, in two availability zones
	SecurityGroups []string // web (every instance), app (subnet 0's instances)
	Instances      []string
	// InstanceSubnet and InstanceGroups give each instance's placement.
	InstanceSubnet map[string]string
	InstanceGroups map[string][]string
	BehindLB       []string // instances registered with the target group
	LoadBalancer   string   // ARN
	TargetGroup    string   // ARN
	// ENIs maps every network interface Seed caused to the instance it is
	// attached to: each instance's primary one, plus one extra interface
	// attached to the first instance.
	ENIs       map[string]string
	ExtraENI   string
	Buckets    []string
	BucketTags map[string]map[string]string
	BucketLoc  map[string]string
}

// Seed creates a VPC with two subnets, two security groups, instances, an
// application load balancer with a target group and registered instances,
// an extra network interface and buckets, all through the AWS SDK.
func (s *Server) Seed(ctx context.Context, seed Seed) (*Estate, error) {
	cfg := s.Config(seed.Region)
	ec := ec2.NewFromConfig(cfg)
	e := &Estate{Region: seed.Region, InstanceSubnet: map[string]string{}, InstanceGroups: map[string][]string{},
		ENIs: map[string]string{}, BucketTags: map[string]map[string]string{}, BucketLoc: map[string]string{}}

	vpc, err := ec.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16"), TagSpecifications: tagSpec(ec2types.ResourceTypeVpc, "seed-vpc")})
	if err != nil {
		return nil, fmt.Errorf("create vpc: %w", err)
	}
	e.VPC = aws.ToString(vpc.Vpc.VpcId)

	azs, err := ec.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil || len(azs.AvailabilityZones) < 2 {
		return nil, fmt.Errorf("describe availability zones: %v (%d zones)", err, len(azs.AvailabilityZones))
	}
	for i := range 2 {
		sn, err := ec.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.20.%d.0/20", 16*i)),
			AvailabilityZone:  azs.AvailabilityZones[i].ZoneName,
			TagSpecifications: tagSpec(ec2types.ResourceTypeSubnet, "seed-subnet-"+strconv.Itoa(i)),
		})
		if err != nil {
			return nil, fmt.Errorf("create subnet: %w", err)
		}
		e.Subnets = append(e.Subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	for _, name := range []string{"web", "app"} {
		g, err := ec.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name + " tier"), VpcId: vpc.Vpc.VpcId})
		if err != nil {
			return nil, fmt.Errorf("create security group %s: %w", name, err)
		}
		e.SecurityGroups = append(e.SecurityGroups, aws.ToString(g.GroupId))
	}
	if _, err := ec.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(e.SecurityGroups[0]), IpProtocol: aws.String("tcp"),
		FromPort: aws.Int32(443), ToPort: aws.Int32(443), CidrIp: aws.String("0.0.0.0/0"),
	}); err != nil {
		return nil, fmt.Errorf("authorize ingress: %w", err)
	}

	images, err := ec.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil || len(images.Images) == 0 {
		return nil, fmt.Errorf("describe images: %v", err)
	}
	image := images.Images[0].ImageId
	// Instances alternate between two placements: subnet 0 with the web
	// and app groups, subnet 1 with the web group only. Each placement is
	// launched in batches, so a large seed takes few calls.
	perReservation := seed.PerReservation
	if perReservation <= 0 {
		perReservation = 100
	}
	for p := range 2 {
		groups := e.SecurityGroups[:2-p]
		subnet := e.Subnets[p]
		want := (seed.Instances + 1 - p) / 2
		for launched := 0; launched < want; {
			n := min(want-launched, perReservation)
			out, err := ec.RunInstances(ctx, &ec2.RunInstancesInput{
				ImageId: image, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
				SubnetId: aws.String(subnet), SecurityGroupIds: groups,
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
					{Key: aws.String("Name"), Value: aws.String(fmt.Sprintf("web-%d", p))}, {Key: aws.String("env"), Value: aws.String("test")},
				}}},
			})
			if err != nil {
				return nil, fmt.Errorf("run %d instances: %w", n, err)
			}
			for _, in := range out.Instances {
				id := aws.ToString(in.InstanceId)
				e.Instances = append(e.Instances, id)
				e.InstanceSubnet[id] = subnet
				e.InstanceGroups[id] = groups
				for _, ni := range in.NetworkInterfaces {
					e.ENIs[aws.ToString(ni.NetworkInterfaceId)] = id
				}
			}
			launched += n
		}
	}

	if len(e.Instances) > 0 {
		eni, err := ec.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.Subnets[0]), Groups: e.SecurityGroups[:1], Description: aws.String("extra")})
		if err != nil {
			return nil, fmt.Errorf("create network interface: %w", err)
		}
		e.ExtraENI = aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
		if _, err := ec.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(e.ExtraENI), InstanceId: aws.String(e.Instances[0]), DeviceIndex: aws.Int32(1),
		}); err != nil {
			return nil, fmt.Errorf("attach network interface: %w", err)
		}
		e.ENIs[e.ExtraENI] = e.Instances[0]
	}

	if err := s.seedLoadBalancer(ctx, cfg, e, seed.BehindLoadBalancer); err != nil {
		return nil, err
	}
	if err := s.seedBuckets(ctx, seed, e); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Server) seedLoadBalancer(ctx context.Context, cfg aws.Config, e *Estate, behind int) error {
	lbc := elb.NewFromConfig(cfg)
	lb, err := lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name: aws.String("web"), Subnets: e.Subnets, SecurityGroups: e.SecurityGroups[:1],
		Type: elbtypes.LoadBalancerTypeEnumApplication, Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing,
		Tags: []elbtypes.Tag{{Key: aws.String("env"), Value: aws.String("test")}},
	})
	if err != nil {
		return fmt.Errorf("create load balancer: %w", err)
	}
	e.LoadBalancer = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn)
	tg, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		VpcId: aws.String(e.VPC), TargetType: elbtypes.TargetTypeEnumInstance,
	})
	if err != nil {
		return fmt.Errorf("create target group: %w", err)
	}
	e.TargetGroup = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	// A target group belongs to a load balancer through a listener.
	if _, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(e.LoadBalancer), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(e.TargetGroup)}},
	}); err != nil {
		return fmt.Errorf("create listener: %w", err)
	}
	e.BehindLB = slices.Clone(e.Instances[:min(behind, len(e.Instances))])
	if len(e.BehindLB) == 0 {
		return nil
	}
	targets := make([]elbtypes.TargetDescription, len(e.BehindLB))
	for i, id := range e.BehindLB {
		targets[i] = elbtypes.TargetDescription{Id: aws.String(id), Port: aws.Int32(80)}
	}
	if _, err := lbc.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(e.TargetGroup), Targets: targets}); err != nil {
		return fmt.Errorf("register targets: %w", err)
	}
	return nil
}

func (s *Server) seedBuckets(ctx context.Context, seed Seed, e *Estate) error {
	for i := range seed.Buckets {
		name := fmt.Sprintf("seed-bucket-%03d", i)
		region := seed.Region
		if i%2 == 1 && seed.BucketRegion != "" {
			region = seed.BucketRegion
		}
		c := s3.NewFromConfig(s.Config(region), func(o *s3.Options) { o.UsePathStyle = true })
		in := &s3.CreateBucketInput{Bucket: aws.String(name)}
		if region != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
		}
		if _, err := c.CreateBucket(ctx, in); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
		e.Buckets = append(e.Buckets, name)
		e.BucketLoc[name] = region
		if i%2 == 0 {
			tags := map[string]string{"team": "data", "index": strconv.Itoa(i)}
			var set []s3types.Tag
			for k, v := range tags {
				set = append(set, s3types.Tag{Key: aws.String(k), Value: aws.String(v)})
			}
			if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(name), Tagging: &s3types.Tagging{TagSet: set}}); err != nil {
				return fmt.Errorf("tag bucket %s: %w", name, err)
			}
			e.BucketTags[name] = tags
		}
	}
	return nil
}

func tagSpec(t ec2types.ResourceType, name string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: t, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}}}
}
