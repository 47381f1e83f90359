package collectors

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// benchInstances is the estate's size: FLEETSTREAM_BENCH_INSTANCES, or
// 500. moto answers more slowly per instance the more it holds, so rates
// are comparable only at one size.
func benchInstances(b *testing.B) int {
	if v := os.Getenv("FLEETSTREAM_BENCH_INSTANCES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("FLEETSTREAM_BENCH_INSTANCES=%q: want a positive number", v)
		}
		return n
	}
	return 500
}

// mototestEstate starts moto and seeds one region with benchInstances
// instances (with as many network interfaces), a load balancer with 100
// of them registered, and 20 buckets.
func mototestEstate(b *testing.B) (*mototest.Server, map[string]tasks.Handler, *apiTimes) {
	b.Helper()
	srv := mototest.Start(b)
	ctx := context.Background()
	start := time.Now()
	n := benchInstances(b)
	if _, err := srv.Seed(ctx, mototest.Seed{Region: "us-east-1", Instances: n, BehindLoadBalancer: 100, Buckets: 20}); err != nil {
		b.Fatalf("seed: %v", err)
	}
	b.Logf("seeded %d instances in %v", n, time.Since(start).Round(time.Millisecond))
	times := &apiTimes{byAction: map[string]time.Duration{}}
	p, err := awscollector.New(awscollector.Config{Endpoint: srv.URL, Credentials: mototest.Credentials(), HTTPClient: &http.Client{Transport: times}})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := collectors.NewRegistry(p)
	if err != nil {
		b.Fatal(err)
	}
	return srv, reg.Handlers(collectors.Options{Logger: slog.New(slog.DiscardHandler)}), times
}

func kindTask(kind string) *fleetv1.Task {
	body, _ := json.Marshal(collectors.CollectKind{Region: "us-east-1", Kind: kind})
	return &fleetv1.Task{Id: "bench", Type: "aws.collect_kind", Payload: body, Attempt: 1}
}

// BenchmarkAWSMoto collects from moto, seeded once: one kind in one
// region through the aws.collect_kind handler (API calls, pagination,
// mapping, sorting, chunking, encoding), and a whole region as a worker
// would run it (collect_all, then every collect_kind task it fans out, one
// after the other). The bare SDK call is the baseline that tells moto's
// and the SDK's time from the collector's.
func BenchmarkAWSMoto(b *testing.B) {
	srv, hs, times := mototestEstate(b)
	ctx := context.Background()
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
		b.Run("collect_kind/"+kind, func(b *testing.B) {
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
			b.Logf("time in API calls (moto and the SDK): %s", times.take())
		})
	}

	b.Run("collect_all", func(b *testing.B) {
		body, _ := json.Marshal(collectors.CollectAll{Regions: []string{"us-east-1"}})
		var out resourcesIn
		for range b.N {
			var fanned []*fleetv1.Task
			root := &fleetv1.Task{Id: "all", Type: "aws.collect_all", Payload: body, Attempt: 1}
			if err := hs["aws.collect_all"].Run(ctx, root, captureTasks{discard: &discard{}, tasks: &fanned}); err != nil {
				b.Fatal(err)
			}
			for _, t := range fanned {
				if err := hs[t.Type].Run(ctx, t, &out); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(out.resources)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64(out.resources)/float64(b.N), "resources/collection")
		b.Logf("time in API calls (moto and the SDK): %s", times.take())
	})
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

// apiTimes adds up the time of API calls by action (query-protocol
// Action; S3 calls by method, on the service or on a bucket).
type apiTimes struct {
	mu       sync.Mutex
	byAction map[string]time.Duration
}

func (a *apiTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	action := "S3 " + r.Method + " /"
	if strings.Trim(r.URL.Path, "/") != "" {
		action += "{bucket}"
	}
	if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			action = form.Get("Action")
		}
	}
	start := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		// The SDK reads the body after RoundTrip returns: count it too.
		resp.Body = &timedBody{ReadCloser: resp.Body, done: func() { a.add(action, time.Since(start)) }}
	}
	return resp, err
}

func (a *apiTimes) add(action string, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byAction[action] += d
}

// take reports and resets the times of the six slowest actions.
func (a *apiTimes) take() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	actions := slices.SortedFunc(maps.Keys(a.byAction), func(x, y string) int { return cmp.Compare(a.byAction[y], a.byAction[x]) })
	var parts []string
	for _, act := range actions[:min(6, len(actions))] {
		parts = append(parts, fmt.Sprintf("%s %v", act, a.byAction[act].Round(time.Millisecond)))
	}
	clear(a.byAction)
	return strings.Join(parts, ", ")
}

type timedBody struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (t *timedBody) Close() error {
	t.once.Do(t.done)
	return t.ReadCloser.Close()
}
