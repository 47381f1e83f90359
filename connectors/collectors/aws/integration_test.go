package aws_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	awscollector "github.com/fleetstream/fleetstream/connectors/collectors/aws"
	"github.com/fleetstream/fleetstream/connectors/collectors/aws/mototest"
	"github.com/fleetstream/fleetstream/connectors/collectors/collectorstest"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// actionCounter counts the API actions (EC2 and ELB query protocol) sent
// through it.
type actionCounter struct {
	mu      sync.Mutex
	actions map[string]int
	next    http.RoundTripper
}

func newActionCounter() *actionCounter {
	return &actionCounter{actions: map[string]int{}, next: http.DefaultTransport}
}

func (c *actionCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if action := queryAction(r); action != "" {
		c.mu.Lock()
		c.actions[action]++
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (c *actionCounter) count(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.actions[action]
}

// queryAction reads the Action of a query-protocol request and leaves the
// body readable.
func queryAction(r *http.Request) string {
	if r.Body == nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	return form.Get("Action")
}

func byID(rs []payload.Resource) map[string]payload.Resource {
	m := make(map[string]payload.Resource, len(rs))
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

func link(rel, kind, id string) payload.ResourceLink {
	return payload.ResourceLink{Relation: rel, Kind: kind, ID: id}
}

func sortedLinks(ls []payload.ResourceLink) []payload.ResourceLink {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b payload.ResourceLink) int {
		return strings.Compare(a.Relation+"/"+a.Kind+"/"+a.ID, b.Relation+"/"+b.Kind+"/"+b.ID)
	})
	return ls
}

func TestCollectAllAgainstMoto(t *testing.T) {
	srv := mototest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const region, other = "us-east-1", "eu-west-1"
	estate, err := srv.Seed(ctx, mototest.Seed{Region: region, Instances: 12, PerReservation: 1, BehindLoadBalancer: 4, Buckets: 4, BucketRegion: other})
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, srv.Log())
	}

	// A terminated instance is gone from the collection, though EC2 still
	// describes it for a while.
	ec := ec2.NewFromConfig(srv.Config(region))
	images, err := ec.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := ec.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: images.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(estate.Subnets[0])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*gone.Instances[0].InstanceId}}); err != nil {
		t.Fatal(err)
	}

	counter := newActionCounter()
	p, err := awscollector.New(awscollector.Config{
		Endpoint: srv.URL, Credentials: mototest.Credentials(),
		PageSize:   5, // 12 instances: three pages
		HTTPClient: &http.Client{Transport: counter},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := collectors.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	handlers := reg.Handlers(collectors.Options{ChunkSize: 5})
	out, err := collectorstest.Run(ctx, handlers, awscollector.Name, collectors.CollectAll{Regions: []string{region, other}})
	if err != nil {
		t.Fatal(err)
	}

	// Six regional kinds in two regions, two global kinds once.
	if got := len(out.Tasks); got != 6*2+2 {
		t.Errorf("collect_all fanned out %d tasks, want 14", got)
	}
	colls, err := out.Collections()
	if err != nil {
		t.Fatal(err)
	}
	if len(colls) != 14 {
		t.Errorf("got %d collections, want 14: %v", len(colls), slices.Sorted(maps.Keys(colls)))
	}
	get := func(region, kind string) []payload.Resource {
		t.Helper()
		key := "aws:" + mototest.Account + ":" + region + ":" + kind
		c, ok := colls[key]
		if !ok {
			t.Fatalf("no collection %s", key)
		}
		if !c.Complete {
			t.Errorf("collection %s is not complete", key)
		}
		return c.All
	}

	// Instances: exactly the seeded ones, with their placement and the
	// load balancer the first four are behind; three pages, three chunks.
	instances := byID(get(region, awscollector.KindInstance))
	if !slices.Equal(slices.Sorted(maps.Keys(instances)), slices.Sorted(slices.Values(estate.Instances))) {
		t.Errorf("instances %v, want %v", slices.Sorted(maps.Keys(instances)), estate.Instances)
	}
	for _, id := range estate.Instances {
		in := instances[id]
		want := []payload.ResourceLink{
			link("in_subnet", "subnet", estate.InstanceSubnet[id]),
			link("in_vpc", "vpc", estate.VPC),
		}
		for _, g := range estate.InstanceGroups[id] {
			want = append(want, link("has_security_group", "security_group", g))
		}
		if slices.Contains(estate.BehindLB, id) {
			want = append(want, link("behind_load_balancer", "load_balancer", estate.LoadBalancer))
		}
		if got, want := sortedLinks(in.Links), sortedLinks(want); !slices.Equal(got, want) {
			t.Errorf("instance %s links\n got %v\nwant %v", id, got, want)
		}
		if in.Tags["env"] != "test" || !strings.HasPrefix(in.Name, "web-") {
			t.Errorf("instance %s name %q tags %v", id, in.Name, in.Tags)
		}
		if in.Attributes["instance_type"] != "t3.micro" || in.Attributes["state"] != "running" {
			t.Errorf("instance %s attributes %v", id, in.Attributes)
		}
	}
	if got := counter.count("DescribeInstances"); got != 3+1 {
		t.Errorf("DescribeInstances called %d times, want 4 (three pages in %s, one in %s)", got, region, other)
	}
	if c := colls["aws:"+mototest.Account+":"+region+":ec2_instance"]; c.Chunks != 3 {
		t.Errorf("12 instances in %d chunks, want 3 of at most 5", c.Chunks)
	}

	// VPCs: the seeded one and the region's default one.
	var defaultVPC string
	for _, v := range get(region, awscollector.KindVPC) {
		switch {
		case v.ID == estate.VPC:
			if v.Name != "seed-vpc" || v.Attributes["cidr_block"] != "10.20.0.0/16" {
				t.Errorf("seeded vpc %+v", v)
			}
		case v.Attributes["is_default"] == true && defaultVPC == "":
			defaultVPC = v.ID
		default:
			t.Errorf("unexpected vpc %+v", v)
		}
	}
	if defaultVPC == "" {
		t.Error("no default vpc collected")
	}

	// Subnets: the two seeded ones in the seeded VPC; the rest are the
	// default VPC's.
	seeded := 0
	for _, s := range get(region, awscollector.KindSubnet) {
		wantVPC := defaultVPC
		if slices.Contains(estate.Subnets, s.ID) {
			wantVPC = estate.VPC
			seeded++
		} else if s.Attributes["default_for_az"] != true {
			t.Errorf("unexpected subnet %+v", s)
		}
		if !slices.Equal(s.Links, []payload.ResourceLink{link("in_vpc", "vpc", wantVPC)}) {
			t.Errorf("subnet %s links %v, want in_vpc %s", s.ID, s.Links, wantVPC)
		}
	}
	if seeded != 2 {
		t.Errorf("%d seeded subnets collected, want 2", seeded)
	}

	// Security groups: web and app, plus one "default" group per VPC.
	defaults := map[string]int{}
	for _, g := range get(region, awscollector.KindSecurityGroup) {
		if g.Name == "default" {
			defaults[g.Links[0].ID]++
			continue
		}
		if !slices.Contains(estate.SecurityGroups, g.ID) {
			t.Errorf("unexpected security group %+v", g)
		}
		if !slices.Equal(g.Links, []payload.ResourceLink{link("in_vpc", "vpc", estate.VPC)}) {
			t.Errorf("security group %s links %v", g.ID, g.Links)
		}
		if g.Name == "web" {
			ingress, _ := g.Attributes["ingress"].([]any)
			if len(ingress) != 1 || ingress[0].(map[string]any)["from_port"] != float64(443) {
				t.Errorf("web ingress %v, want one rule for port 443", g.Attributes["ingress"])
			}
		}
	}
	if defaults[estate.VPC] != 1 || defaults[defaultVPC] != 1 || len(defaults) != 2 {
		t.Errorf("default security groups by vpc %v, want one in each of %s and %s", defaults, estate.VPC, defaultVPC)
	}

	// Network interfaces: each instance's primary one and the extra one,
	// attached to their instances.
	// moto keeps the terminated instance's interface, which EC2 deletes
	// with the instance.
	enis := byID(get(region, awscollector.KindNetworkInterface))
	wantENIs := slices.Collect(maps.Keys(estate.ENIs))
	for _, n := range gone.Instances[0].NetworkInterfaces {
		wantENIs = append(wantENIs, *n.NetworkInterfaceId)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(enis)), slices.Sorted(slices.Values(wantENIs))) {
		t.Errorf("network interfaces %v, want %v", slices.Sorted(maps.Keys(enis)), slices.Sorted(slices.Values(wantENIs)))
	}
	for id, instance := range estate.ENIs {
		if !slices.Contains(enis[id].Links, link("attached_to", "ec2_instance", instance)) {
			t.Errorf("network interface %s links %v, want attached_to %s", id, enis[id].Links, instance)
		}
	}
	if extra := enis[estate.ExtraENI]; !slices.Contains(extra.Links, link("has_security_group", "security_group", estate.SecurityGroups[0])) ||
		!slices.Contains(extra.Links, link("in_subnet", "subnet", estate.Subnets[0])) {
		t.Errorf("extra network interface links %v", extra.Links)
	}

	// The load balancer: in the VPC, both subnets, the web group, with its
	// target group.
	lbs := get(region, awscollector.KindLoadBalancer)
	if len(lbs) != 1 || lbs[0].ID != estate.LoadBalancer {
		t.Fatalf("load balancers %+v, want %s", lbs, estate.LoadBalancer)
	}
	wantLB := sortedLinks([]payload.ResourceLink{
		link("has_security_group", "security_group", estate.SecurityGroups[0]),
		link("in_subnet", "subnet", estate.Subnets[0]), link("in_subnet", "subnet", estate.Subnets[1]),
		link("in_vpc", "vpc", estate.VPC),
	})
	if !slices.Equal(sortedLinks(lbs[0].Links), wantLB) {
		t.Errorf("load balancer links %v, want %v", lbs[0].Links, wantLB)
	}
	tgs, _ := lbs[0].Attributes["target_groups"].([]any)
	if len(tgs) != 1 || tgs[0].(map[string]any)["arn"] != estate.TargetGroup {
		t.Errorf("load balancer target groups %v, want %s", lbs[0].Attributes["target_groups"], estate.TargetGroup)
	}
	if lbs[0].Name != "web" || lbs[0].Tags["env"] != "test" || lbs[0].Attributes["type"] != "application" {
		t.Errorf("load balancer %+v", lbs[0])
	}

	// Buckets: all of them, with their regions and tags, once per account.
	buckets := byID(get(collectors.GlobalRegion, awscollector.KindBucket))
	if !slices.Equal(slices.Sorted(maps.Keys(buckets)), estate.Buckets) {
		t.Errorf("buckets %v, want %v", slices.Sorted(maps.Keys(buckets)), estate.Buckets)
	}
	for _, name := range estate.Buckets {
		b := buckets[name]
		if b.Attributes["region"] != estate.BucketLoc[name] {
			t.Errorf("bucket %s region %v, want %s", name, b.Attributes["region"], estate.BucketLoc[name])
		}
		if !maps.Equal(b.Tags, estate.BucketTags[name]) {
			t.Errorf("bucket %s tags %v, want %v", name, b.Tags, estate.BucketTags[name])
		}
	}

	// Regions: an account-wide kind that includes both collected regions.
	regions := byID(get(collectors.GlobalRegion, awscollector.KindRegion))
	if _, ok := regions[region]; !ok {
		t.Errorf("regions %v lack %s", slices.Sorted(maps.Keys(regions)), region)
	}
	if _, ok := regions[other]; !ok {
		t.Errorf("regions %v lack %s", slices.Sorted(maps.Keys(regions)), other)
	}

	// The other region has nothing but its defaults: its collections are
	// still published, complete, so deletions there would be seen.
	if got := get(other, awscollector.KindInstance); len(got) != 0 {
		t.Errorf("%s instances %v, want none", other, got)
	}
	if c := colls["aws:"+mototest.Account+":"+other+":ec2_instance"]; c.Chunks != 1 || c.ChunkCount != 1 {
		t.Errorf("empty collection in %d chunks, want 1", c.Chunks)
	}
	if got := get(other, awscollector.KindLoadBalancer); len(got) != 0 {
		t.Errorf("%s load balancers %v, want none", other, got)
	}
}
