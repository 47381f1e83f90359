package collectors

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	awscollector "github.com/fleetstream/fleetstream/connectors/collectors/aws"
	"github.com/fleetstream/fleetstream/connectors/collectors/aws/mototest"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// discard counts what a task publishes and keeps nothing.
type discard struct{ tasks, discoveries, bytes int }

func (d *discard) Enqueue(_ context.Context, ts ...*fleetv1.Task) error {
	d.tasks += len(ts)
	return nil
}

func (d *discard) Discover(_ context.Context, ds ...*fleetv1.Discovery) error {
	d.discoveries += len(ds)
	for _, x := range ds {
		d.bytes += len(x.Payload)
	}
	return nil
}

// resourcesIn counts the resources in published discoveries.
type resourcesIn struct {
	discard
	resources int
}

func (r *resourcesIn) Discover(ctx context.Context, ds ...*fleetv1.Discovery) error {
	for _, d := range ds {
		var rc payload.ResourceCollection
		if err := json.Unmarshal(d.Payload, &rc); err != nil {
			return err
		}
		r.resources += len(rc.Resources)
	}
	return r.discard.Discover(ctx, ds...)
}

const benchInstances = 1000

// mototestEstate starts moto and seeds one region with benchInstances
// instances (with as many network interfaces), a load balancer with 100
// of them registered, and 20 buckets.
func mototestEstate(b *testing.B) (*mototest.Server, map[string]tasks.Handler) {
	b.Helper()
	srv := mototest.Start(b)
	ctx := context.Background()
	start := time.Now()
	if _, err := srv.Seed(ctx, mototest.Seed{Region: "us-east-1", Instances: benchInstances, BehindLoadBalancer: 100, Buckets: 20}); err != nil {
		b.Fatalf("seed: %v", err)
	}
	b.Logf("seeded %d instances in %v", benchInstances, time.Since(start).Round(time.Millisecond))
	p, err := awscollector.New(awscollector.Config{Endpoint: srv.URL, Credentials: mototest.Credentials()})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := collectors.NewRegistry(p)
	if err != nil {
		b.Fatal(err)
	}
	return srv, reg.Handlers(collectors.Options{})
}

func kindTask(kind string) *fleetv1.Task {
	body, _ := json.Marshal(collectors.CollectKind{Region: "us-east-1", Kind: kind})
	return &fleetv1.Task{Id: "bench", Type: "aws.collect_kind", Payload: body, Attempt: 1}
}

// BenchmarkAWSCollectKindMoto collects one kind in one region from moto
// through the aws.collect_kind handler: API calls, pagination, mapping,
// sorting, chunking and encoding.
func BenchmarkAWSCollectKindMoto(b *testing.B) {
	srv, hs := mototestEstate(b)
	ctx := context.Background()
	// The baseline: the same instances through one bare SDK call, to tell
	// moto's and the SDK's time from the collector's.
	b.Run("sdk_describe_instances", func(b *testing.B) {
		client := ec2.NewFromConfig(srv.Config("us-east-1"))
		n := 0
		for range b.N {
			pages := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)})
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range page.Reservations {
					n += len(r.Instances)
				}
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
	})
	for _, kind := range []string{awscollector.KindInstance, awscollector.KindNetworkInterface} {
		b.Run(kind, func(b *testing.B) {
			var out resourcesIn
			b.ResetTimer()
			for range b.N {
				if err := hs["aws.collect_kind"].Run(ctx, kindTask(kind), &out); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(out.resources)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64(out.bytes)/float64(out.resources), "bytes/resource")
		})
	}
}

// BenchmarkAWSCollectAllMoto runs a whole collection of one region as a
// worker would: collect_all, then every collect_kind task it fans out, one
// after the other.
func BenchmarkAWSCollectAllMoto(b *testing.B) {
	_, hs := mototestEstate(b)
	ctx := context.Background()
	body, _ := json.Marshal(collectors.CollectAll{Regions: []string{"us-east-1"}})
	var out resourcesIn
	b.ResetTimer()
	for range b.N {
		fan := &discard{}
		var fanned []*fleetv1.Task
		capture := captureTasks{discard: fan, tasks: &fanned}
		if err := hs["aws.collect_all"].Run(ctx, &fleetv1.Task{Id: "all", Type: "aws.collect_all", Payload: body, Attempt: 1}, capture); err != nil {
			b.Fatal(err)
		}
		for _, t := range fanned {
			if err := hs[t.Type].Run(ctx, t, &out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(out.resources)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(out.resources)/float64(b.N), "resources/collection")
}

type captureTasks struct {
	*discard
	tasks *[]*fleetv1.Task
}

func (c captureTasks) Enqueue(_ context.Context, ts ...*fleetv1.Task) error {
	*c.tasks = append(*c.tasks, ts...)
	return nil
}

// BenchmarkDiscoveries measures the collectors' own cost per resource:
// sorting, chunking and JSON-encoding an instance-sized resource.
func BenchmarkDiscoveries(b *testing.B) {
	rs := make([]payload.Resource, 10_000)
	for i := range rs {
		rs[i] = payload.Resource{
			ID: fmt.Sprintf("i-%017x", i), Name: fmt.Sprintf("web-%d", i),
			Tags: map[string]string{"env": "prod", "team": "web"},
			Attributes: map[string]any{
				"instance_type": "m5.large", "state": "running", "image_id": "ami-0123456789abcdef0",
				"launch_time": "2026-11-25T12:00:00Z", "private_ip_address": "10.0.1.23", "availability_zone": "us-east-1a",
			},
			Links: []payload.ResourceLink{
				{Relation: "in_vpc", Kind: "vpc", ID: "vpc-0123"}, {Relation: "in_subnet", Kind: "subnet", ID: "subnet-0123"},
				{Relation: "has_security_group", Kind: "security_group", ID: "sg-0123"},
			},
		}
	}
	coll := collectors.Collection{Provider: "aws", Account: "123456789012", Region: "us-east-1", Kind: "ec2_instance"}
	b.ResetTimer()
	for range b.N {
		if _, err := coll.Discoveries(rs, collectors.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rs)*b.N)/b.Elapsed().Seconds(), "resources/s")
}
