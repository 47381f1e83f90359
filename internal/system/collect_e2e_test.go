package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/collectors/aws"
	"github.com/fleetstream/fleetstream/connectors/collectors/aws/mototest"
	"github.com/fleetstream/fleetstream/connectors/collectors/install"
	"github.com/fleetstream/fleetstream/connectors/collectors/vsphere"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/internal/system"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const motoRegion = "us-east-1"

// submit posts a task through the REST API with the write key.
func (p *pipeline) submit(t *testing.T, id, typ string, taskPayload any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": id, "type": typ, "payload": taskPayload, "queue": "high"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/tasks", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.writeKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/v1/tasks %s: HTTP %d %s", typ, resp.StatusCode, raw)
	}
}

// awaitTasks waits until the task id and the fanOut tasks it enqueued
// completed, as the API shows them; a dead task fails at once.
func (p *pipeline) awaitTasks(t *testing.T, id string, fanOut int) {
	t.Helper()
	p.eventually(t, "task "+id+" and its "+fmt.Sprint(fanOut)+" tasks completed", func() error {
		code, parent := p.get(t, "/api/v1/tasks/"+id)
		if code != http.StatusOK || parent["state"] != "completed" {
			return fmt.Errorf("%s: HTTP %d %v", id, code, parent)
		}
		_, body := p.get(t, "/api/v1/tasks?page_size=1000&parent_id="+id)
		children, _ := body["tasks"].([]any)
		done := 0
		for _, c := range children {
			c := c.(map[string]any)
			switch c["state"] {
			case "completed":
				done++
			case "dead":
				t.Fatalf("task %s (%v) is dead: %v %v", c["id"], c["payload"], c["reason"], c["last_error"])
			}
		}
		if len(children) != fanOut || done != fanOut {
			return fmt.Errorf("%d of %d fanned-out tasks, %d completed", len(children), fanOut, done)
		}
		return nil
	})
}

// motoTruth lists what moto itself holds in a region, by kind: the exact
// ids the pipeline must list, defaults (VPC, subnets, groups) included.
func motoTruth(t *testing.T, ec *ec2.Client) map[string][]string {
	t.Helper()
	ctx := context.Background()
	truth := map[string][]string{}
	vpcs, err := ec.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vpcs.Vpcs {
		truth[aws.KindVPC] = append(truth[aws.KindVPC], awssdk.ToString(v.VpcId))
	}
	subnets, err := ec.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subnets.Subnets {
		truth[aws.KindSubnet] = append(truth[aws.KindSubnet], awssdk.ToString(s.SubnetId))
	}
	groups, err := ec.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.SecurityGroups {
		truth[aws.KindSecurityGroup] = append(truth[aws.KindSecurityGroup], awssdk.ToString(g.GroupId))
	}
	for kind, ids := range truth {
		slices.Sort(ids)
		truth[kind] = ids
	}
	return truth
}

func keysOf(provider, acct string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = payload.ResourceKey(provider, acct, id)
	}
	slices.Sort(out)
	return out
}

func sortedIDs(ids []string) []string {
	slices.Sort(ids)
	return ids
}

// vcsimIDs are the simulator's own objects of managed object types.
func vcsimIDs(m *simulator.Model, types ...string) []string {
	var ids []string
	for _, typ := range types {
		for _, e := range m.Map().All(typ) {
			ids = append(ids, e.Reference().Value)
		}
	}
	slices.Sort(ids)
	return ids
}

// Collection tasks submitted through the REST API run on a collect worker
// with the real AWS and vSphere collectors, against moto and vcsim; what
// they collect reaches the read models and the API, and an instance
// terminated in moto is deleted at the next collection.
func TestCollectorsThroughTheQueueEndToEnd(t *testing.T) {
	moto := mototest.Start(t) // skips when moto is missing and not required
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	estate, err := moto.Seed(ctx, mototest.Seed{Region: motoRegion, Instances: 4, BehindLoadBalancer: 2, Buckets: 2})
	if err != nil {
		t.Fatalf("seed moto: %v\n%s", err, moto.Log())
	}
	vc := simulator.VPX()
	if err := vc.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.Remove)
	vcsrv := vc.Service.NewServer()
	t.Cleanup(vcsrv.Close)
	vcURL := *vcsrv.URL
	vcUser := vcURL.User
	vcURL.User = nil
	vcPassword, _ := vcUser.Password()

	p := startPipeline(t)
	cc := install.Config{
		AWS:     aws.Config{Endpoint: moto.URL, Credentials: mototest.Credentials()},
		VSphere: vsphere.Config{URL: vcURL.String(), Username: vcUser.Username(), Password: vcPassword, Insecure: true},
	}
	reg := prometheus.NewRegistry()
	handlers, err := cc.Build(reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	startCollect(t, p, reg, handlers)

	// Six regional kinds in one region, two account-wide ones; five
	// regional vSphere kinds in vcsim's one datacenter, and datacenters.
	p.submit(t, "aws-1", collectors.CollectAllType(aws.Name), collectors.CollectAll{Regions: []string{motoRegion}})
	p.submit(t, "vsphere-1", collectors.CollectAllType(vsphere.Name), collectors.CollectAll{})
	p.awaitTasks(t, "aws-1", 6+2)
	p.awaitTasks(t, "vsphere-1", 5+1)
	p.quiesceCloud(t)

	// Every resource, by kind and region, exactly as the APIs hold them.
	awsKey := func(id string) string { return payload.ResourceKey(aws.Name, mototest.Account, id) }
	list := func(provider, kind, region string) []string {
		return sortedIDs(p.resourceIDs(t, "provider="+provider+"&kind="+kind+"&region="+url.QueryEscape(region)))
	}
	ec := ec2.NewFromConfig(moto.Config(motoRegion))
	for kind, ids := range motoTruth(t, ec) {
		equal(t, "aws "+kind, list(aws.Name, kind, motoRegion), keysOf(aws.Name, mototest.Account, ids))
	}
	for kind, seeded := range map[string][]string{aws.KindVPC: {estate.VPC}, aws.KindSubnet: estate.Subnets, aws.KindSecurityGroup: estate.SecurityGroups} {
		for _, id := range seeded {
			if !slices.Contains(list(aws.Name, kind, motoRegion), awsKey(id)) {
				t.Fatalf("seeded %s %s is not listed", kind, id)
			}
		}
	}
	equal(t, "aws instances", list(aws.Name, aws.KindInstance, motoRegion), keysOf(aws.Name, mototest.Account, estate.Instances))
	equal(t, "aws load balancers", list(aws.Name, aws.KindLoadBalancer, motoRegion), []string{awsKey(estate.LoadBalancer)})
	equal(t, "aws buckets", list(aws.Name, aws.KindBucket, collectors.GlobalRegion), keysOf(aws.Name, mototest.Account, estate.Buckets))
	eniIDs := make([]string, 0, len(estate.ENIs))
	for id := range estate.ENIs {
		eniIDs = append(eniIDs, id)
	}
	equal(t, "aws network interfaces", list(aws.Name, aws.KindNetworkInterface, motoRegion), keysOf(aws.Name, mototest.Account, eniIDs))

	uuid := vc.ServiceContent.About.InstanceUuid
	dc := vc.Map().All("Datacenter")[0].(mo.Entity).Entity().Name
	for kind, types := range map[string][]string{vsphere.KindVM: {"VirtualMachine"}, vsphere.KindHost: {"HostSystem"},
		vsphere.KindCluster: {"ClusterComputeResource"}, vsphere.KindDatastore: {"Datastore"},
		vsphere.KindNetwork: {"Network", "DistributedVirtualPortgroup"}} {
		equal(t, "vsphere "+kind, list(vsphere.Name, kind, dc), keysOf(vsphere.Name, uuid, vcsimIDs(vc, types...)))
	}
	equal(t, "vsphere datacenters", list(vsphere.Name, vsphere.KindDatacenter, collectors.GlobalRegion), keysOf(vsphere.Name, uuid, vcsimIDs(vc, "Datacenter")))

	// An instance behind the load balancer shows its links: placement,
	// groups, the load balancer, and the interfaces attached to it.
	gone := estate.BehindLB[0]
	wantLinks := []string{
		awsKey(gone) + " -" + aws.RelBehindLoadBalancer + "-> " + awsKey(estate.LoadBalancer),
		awsKey(gone) + " -" + aws.RelInSubnet + "-> " + awsKey(estate.InstanceSubnet[gone]),
		awsKey(gone) + " -" + aws.RelInVPC + "-> " + awsKey(estate.VPC),
	}
	for _, g := range estate.InstanceGroups[gone] {
		wantLinks = append(wantLinks, awsKey(gone)+" -"+aws.RelHasSecurityGroup+"-> "+awsKey(g))
	}
	for eni, instance := range estate.ENIs {
		if instance == gone {
			wantLinks = append(wantLinks, awsKey(eni)+" -"+aws.RelAttachedTo+"-> "+awsKey(gone))
		}
	}
	slices.Sort(wantLinks)
	p.eventually(t, "the instance's links", func() error {
		_, body := p.get(t, "/api/v1/cloud/resources/"+awsKey(gone))
		links, _ := body["links"].([]any)
		if got := linkSet(links); !slices.Equal(got, wantLinks) {
			return fmt.Errorf("links\n  got  %v\n  want %v", got, wantLinks)
		}
		return nil
	})

	// The VPC's graph reaches every instance.
	code, graph := p.get(t, "/api/v1/graph/"+awsKey(estate.VPC)+"?depth=1")
	if code != http.StatusOK {
		t.Fatalf("graph of the vpc: %d %v", code, graph)
	}
	nodes := fmt.Sprint(graph["nodes"])
	for _, id := range estate.Instances {
		if !strings.Contains(nodes, awsKey(id)) {
			t.Fatalf("the vpc's graph lacks instance %s: %s", id, nodes)
		}
	}

	// Terminated in moto, the instance is deleted at the next collection,
	// its links ended.
	if _, err := ec.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}
	p.submit(t, "aws-2", collectors.CollectAllType(aws.Name), collectors.CollectAll{Regions: []string{motoRegion}, Kinds: []string{aws.KindInstance}})
	p.awaitTasks(t, "aws-2", 1)
	p.quiesceCloud(t)
	remaining := slices.DeleteFunc(slices.Clone(estate.Instances), func(id string) bool { return id == gone })
	equal(t, "aws instances after the termination", list(aws.Name, aws.KindInstance, motoRegion), keysOf(aws.Name, mototest.Account, remaining))
	equal(t, "with tombstones", sortedIDs(p.resourceIDs(t, "provider=aws&kind=ec2_instance&include_deleted=true")), keysOf(aws.Name, mototest.Account, estate.Instances))
	body := p.resource(t, awsKey(gone), "2")
	if r := body["resource"].(map[string]any); r["deleted"] != true || r["deleted_at"] == nil {
		t.Fatalf("the terminated instance: %v", r)
	}
	equal(t, "its history", p.cloudEventTypes(t, awsKey(gone), false), []string{"ResourceDiscovered", "ResourceDeleted"})
	_, ls := p.get(t, "/api/v1/links/"+awsKey(gone)+"?include_inactive=true")
	var ended []string
	for _, l := range linkSet(ls["links"].([]any)) {
		if strings.HasPrefix(l, awsKey(gone)+" ") {
			ended = append(ended, l)
		}
	}
	var wantEnded []string
	for _, l := range wantLinks {
		if strings.HasPrefix(l, awsKey(gone)+" ") {
			wantEnded = append(wantEnded, l+" (source_deleted)")
		}
	}
	equal(t, "its links, ended", ended, wantEnded)
}

// startCollect runs a collect worker (RunCollect) with handlers on the
// pipeline's Kafka until the test ends.
func startCollect(t *testing.T, p *pipeline, reg *prometheus.Registry, handlers map[string]tasks.Handler) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := system.Config{Brokers: p.brokers, Topics: p.topics, Logger: slog.New(slog.DiscardHandler), Registry: reg}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- system.RunCollect(ctx, cfg, system.CollectOptions{Worker: tasks.WorkerOptions{Handlers: handlers}}, lis)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("collect stopped with %v", err)
		}
	})
}
