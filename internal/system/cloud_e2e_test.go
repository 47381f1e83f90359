package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const (
	account = "123456789012"
	region  = "eu-west-1"
	// An ELBv2 load balancer is known by its ARN: ':' and '/' in its key.
	lbARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
	// The Trento fixture cloud_discovery_aws.json: its agent, and the EC2
	// instance its metadata names.
	trentoAgent    = "0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4"
	trentoInstance = "aws:12345:i-12345"
)

func key(id string) string { return payload.ResourceKey("aws", account, id) }

// collector publishes ResourceCollection discoveries straight to Kafka, as
// the collectors do: franz-go, partitioned like goka.
type collector struct {
	client *kgo.Client
	topic  string
	at     time.Time
}

func newCollector(t *testing.T, p *pipeline) *collector {
	t.Helper()
	cl, err := kafka.NewClient(p.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &collector{client: cl, topic: p.topics.Discoveries, at: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// publish sends one complete collection in len(chunks) chunks, and returns
// its records so a test can send them again.
func (c *collector) publish(t *testing.T, provider, acct, region, kind, collectionID string, chunks ...[]payload.Resource) []*kgo.Record {
	t.Helper()
	c.at = c.at.Add(time.Minute)
	var recs []*kgo.Record
	for i, rs := range chunks {
		body, err := json.Marshal(payload.ResourceCollection{Provider: provider, Account: acct, Region: region, Kind: kind,
			CollectionID: collectionID, Chunk: i, Chunks: len(chunks), Complete: true, Resources: rs})
		if err != nil {
			t.Fatal(err)
		}
		d := &fleetv1.Discovery{AgentId: payload.CollectionKey(provider, acct, region, kind), DiscoveryType: payload.CloudResources,
			CollectedAt: timestamppb.New(c.at), Payload: body, Source: "collector:" + provider}
		value, err := proto.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: c.topic, Key: []byte(d.AgentId), Value: value,
			Headers: kafka.RecordHeaders(kafka.Headers(d, "trace-"+collectionID))})
	}
	c.send(t, recs...)
	return recs
}

func (c *collector) send(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	fresh := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		fresh[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	if err := c.client.ProduceSync(context.Background(), fresh...).FirstErr(); err != nil {
		t.Fatalf("produce discoveries: %v", err)
	}
}

func res(id, name string, tags map[string]string, links ...payload.ResourceLink) payload.Resource {
	return payload.Resource{ID: id, Name: name, Tags: tags, Attributes: map[string]any{"state": "available"}, Links: links}
}

func to(relation, kind, id string) payload.ResourceLink {
	return payload.ResourceLink{Relation: relation, Kind: kind, ID: id}
}

var (
	instance1 = res("i-1", "web-1", map[string]string{"env": "prod", "role": "web"},
		to("in_vpc", "vpc", "vpc-1"), to("in_subnet", "subnet", "subnet-1"),
		to("has_security_group", "security_group", "sg-1"), to("behind_load_balancer", "load_balancer", lbARN))
	instance2 = res("i-2", "batch-1", map[string]string{"env": "dev"}, to("in_vpc", "vpc", "vpc-1"), to("in_subnet", "subnet", "subnet-1"))
)

// quiesceCloud waits until every stage of the cloud pipeline consumed
// everything written so far, in the order records flow.
func (p *pipeline) quiesceCloud(t *testing.T) {
	t.Helper()
	for _, g := range []string{kafka.ScenarioGroup, kafka.CloudResourceGroup, kafka.LinksGroup, clickhouse.DefaultSinkGroup} {
		g = p.topics.Group(g)
		p.eventually(t, "group "+g+" catches up", func() error {
			lags, err := p.admin.Lag(context.Background(), g)
			if err != nil {
				return err
			}
			if e := lags.Error(); e != nil {
				return e
			}
			if len(lags[g].Lag) == 0 {
				return fmt.Errorf("no committed offsets yet")
			}
			if total := lags[g].Lag.Total(); total != 0 {
				return fmt.Errorf("lag %d", total)
			}
			return nil
		})
	}
}

// ids lists the resources of GET /api/v1/cloud/resources?query, all pages.
func (p *pipeline) resourceIDs(t *testing.T, query string) []string {
	t.Helper()
	var ids []string
	token := ""
	for {
		q := query + "&page_size=2"
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		code, body := p.get(t, "/api/v1/cloud/resources?"+q)
		if code != http.StatusOK {
			t.Fatalf("list %s: %d %v", q, code, body)
		}
		for _, r := range body["resources"].([]any) {
			ids = append(ids, r.(map[string]any)["id"].(string))
		}
		if token, _ = body["next_page_token"].(string); token == "" {
			return ids
		}
	}
}

// linkSet renders links as "from -relation-> to", sorted.
func linkSet(links []any) []string {
	var out []string
	for _, l := range links {
		l := l.(map[string]any)
		s := l["from"].(map[string]any)["id"].(string) + " -" + l["relation"].(string) + "-> " + l["to"].(map[string]any)["id"].(string)
		if l["active"] == false {
			s += " (" + l["reason"].(string) + ")"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// resource reads GET /api/v1/cloud/resources/{id} once its view shows
// version.
func (p *pipeline) resource(t *testing.T, id, version string) map[string]any {
	t.Helper()
	var body map[string]any
	p.eventually(t, "resource "+id+" at version "+version, func() error {
		var code int
		code, body = p.get(t, "/api/v1/cloud/resources/"+id)
		if code != http.StatusOK {
			return fmt.Errorf("GET answered %d %v", code, body)
		}
		if v := body["resource"].(map[string]any)["version"]; v != version {
			return fmt.Errorf("version %v", v)
		}
		return nil
	})
	return body
}

func (p *pipeline) cloudEventTypes(t *testing.T, id string, links bool) []string {
	t.Helper()
	code, body := p.get(t, fmt.Sprintf("/api/v1/cloud/events/%s?links=%v", id, links))
	if code != http.StatusOK {
		t.Fatalf("events of %s: %d %v", id, code, body)
	}
	var types []string
	for _, e := range body["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	return types
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n  got  %s\n  want %s", what, strings.Join(got, "\n       "), strings.Join(want, "\n       "))
	}
}

func TestCloudResourcesAndLinksEndToEnd(t *testing.T) {
	p := startPipeline(t)
	c := newCollector(t, p)

	c.publish(t, "aws", account, region, "vpc", "vpc-c1", []payload.Resource{res("vpc-1", "main", map[string]string{"env": "prod"})})
	c.publish(t, "aws", account, region, "subnet", "subnet-c1", []payload.Resource{res("subnet-1", "a", nil, to("in_vpc", "vpc", "vpc-1"))})
	c.publish(t, "aws", account, region, "security_group", "sg-c1", []payload.Resource{res("sg-1", "web", nil, to("in_vpc", "vpc", "vpc-1"))})
	c.publish(t, "aws", account, region, "load_balancer", "lb-c1", []payload.Resource{res(lbARN, "web", nil, to("in_vpc", "vpc", "vpc-1"))})
	// The instances in two chunks.
	c.publish(t, "aws", account, region, "ec2_instance", "ec2-c1", []payload.Resource{instance1}, []payload.Resource{instance2})
	c.publish(t, "aws", "12345", region, "ec2_instance", "trento-c1", []payload.Resource{res("i-12345", "hana-1", nil)})
	c.publish(t, "vsphere", "vc-1", "DC1", "vm", "vm-c1", []payload.Resource{
		res("vm-1", "sap-app", nil, to("runs_on_host", "host", "host-10"), to("uses_datastore", "datastore", "datastore-1")),
	})
	p.quiesceCloud(t)

	// Lists by kind, region, account and tag, from ClickHouse.
	equal(t, "ec2 instances in eu-west-1", p.resourceIDs(t, "kind=ec2_instance&region="+region), []string{key("i-1"), key("i-2"), trentoInstance})
	equal(t, "of one account", p.resourceIDs(t, "kind=ec2_instance&account="+account), []string{key("i-1"), key("i-2")})
	equal(t, "tagged env=prod", p.resourceIDs(t, "tag=env%3Dprod"), []string{key("i-1"), key("vpc-1")})
	equal(t, "tagged role and env=prod", p.resourceIDs(t, "tag=role&tag=env%3Dprod"), []string{key("i-1")})
	equal(t, "vSphere", p.resourceIDs(t, "provider=vsphere"), []string{"vsphere:vc-1:vm-1"})

	// One resource with its links, from the views.
	body := p.resource(t, key("i-1"), "1")
	spec := body["resource"].(map[string]any)["spec"].(map[string]any)
	if spec["name"] != "web-1" || spec["kind"] != "ec2_instance" || spec["tags"].(map[string]any)["role"] != "web" || spec["attributes"].(map[string]any)["state"] != "available" {
		t.Fatalf("i-1 spec %v", spec)
	}
	i1Links := []string{
		key("i-1") + " -behind_load_balancer-> " + key(lbARN),
		key("i-1") + " -has_security_group-> " + key("sg-1"),
		key("i-1") + " -in_subnet-> " + key("subnet-1"),
		key("i-1") + " -in_vpc-> " + key("vpc-1"),
	}
	p.eventually(t, "i-1's links", func() error {
		_, body := p.get(t, "/api/v1/cloud/resources/"+key("i-1"))
		if got := linkSet(body["links"].([]any)); !slices.Equal(got, i1Links) {
			return fmt.Errorf("links %v", got)
		}
		return nil
	})
	lb := p.resource(t, key(lbARN), "1")
	equal(t, "the load balancer's links", linkSet(lb["links"].([]any)), []string{
		key(lbARN) + " -in_vpc-> " + key("vpc-1"),
		key("i-1") + " -behind_load_balancer-> " + key(lbARN),
	})

	// The graph to depth 2, from the read model.
	code, graph := p.get(t, "/api/v1/graph/"+key("i-1")+"?depth=2")
	if code != http.StatusOK {
		t.Fatalf("graph: %d %v", code, graph)
	}
	var nodes []string
	for _, n := range graph["nodes"].([]any) {
		n := n.(map[string]any)
		nodes = append(nodes, fmt.Sprintf("%s@%v %s", n["entity"].(map[string]any)["id"], n["depth"], n["name"]))
	}
	equal(t, "graph nodes", nodes, []string{
		key("i-1") + "@0 web-1",
		key(lbARN) + "@1 web", key("sg-1") + "@1 web", key("subnet-1") + "@1 a", key("vpc-1") + "@1 main",
		key("i-2") + "@2 batch-1",
	})
	if edges := graph["edges"].([]any); len(edges) != 9 || graph["truncated"] != false {
		t.Fatalf("graph edges %v (truncated %v), want 4 from i-1, 3 to the vpc from its depth-1 neighbours, 2 from i-2", linkSet(edges), graph["truncated"])
	}
	_, vm := p.get(t, "/api/v1/graph/vsphere:vc-1:vm-1")
	equal(t, "the VM's graph", linkSet(vm["edges"].([]any)), []string{
		"vsphere:vc-1:vm-1 -runs_on_host-> vsphere:vc-1:host-10",
		"vsphere:vc-1:vm-1 -uses_datastore-> vsphere:vc-1:datastore-1",
	})

	// A complete collection without i-2: it is deleted, its links end.
	eventsBefore := p.endOffsets(t, p.topics.Events)
	second := c.publish(t, "aws", account, region, "ec2_instance", "ec2-c2", []payload.Resource{instance1})
	p.quiesceCloud(t)
	i2 := p.resource(t, key("i-2"), "2")
	if r := i2["resource"].(map[string]any); r["deleted"] != true || r["deleted_at"] == nil || len(i2["links"].([]any)) != 0 {
		t.Fatalf("i-2 after the collection without it: %v", i2)
	}
	equal(t, "i-2's history", p.cloudEventTypes(t, key("i-2"), false), []string{"ResourceDiscovered", "ResourceDeleted"})
	equal(t, "i-2's link history", p.cloudEventTypes(t, key("i-2"), true), []string{"EntityLinked", "EntityLinked", "EntityUnlinked", "EntityUnlinked"})
	_, ls := p.get(t, "/api/v1/links/"+key("i-2")+"?include_inactive=true")
	equal(t, "i-2's links, ended ones included", linkSet(ls["links"].([]any)), []string{
		key("i-2") + " -in_subnet-> " + key("subnet-1") + " (source_deleted)",
		key("i-2") + " -in_vpc-> " + key("vpc-1") + " (source_deleted)",
	})
	if after := p.endOffsets(t, p.topics.Events); after != eventsBefore+3 {
		t.Fatalf("the deletion added %d events, want ResourceDeleted and two EntityUnlinked", after-eventsBefore)
	}
	equal(t, "ec2 instances now", p.resourceIDs(t, "kind=ec2_instance&account="+account), []string{key("i-1")})
	equal(t, "with tombstones", p.resourceIDs(t, "kind=ec2_instance&account="+account+"&include_deleted=true"), []string{key("i-1"), key("i-2")})
	_, vpcGraph := p.get(t, "/api/v1/graph/"+key("vpc-1"))
	if nodes := fmt.Sprint(vpcGraph["nodes"]); strings.Contains(nodes, key("i-2")) || !strings.Contains(nodes, key("i-1")) {
		t.Fatalf("the vpc's neighbours %s", nodes)
	}

	// The same collection again, as a redelivery and as the next scheduled
	// run: no event at all.
	eventsBefore = p.endOffsets(t, p.topics.Events)
	c.send(t, second...)
	c.publish(t, "aws", account, region, "ec2_instance", "ec2-c3", []payload.Resource{instance1})
	p.quiesceCloud(t)
	if after := p.endOffsets(t, p.topics.Events); after != eventsBefore {
		t.Fatalf("an unchanged collection added %d events", after-eventsBefore)
	}

	// A Trento agent's cloud_discovery, through ingest, links its host to
	// the EC2 instance.
	fixture, err := os.ReadFile("../../testdata/fixtures/trento/discovery/cloud_discovery_aws.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/collect", bytes.NewReader(fixture))
	req.Header.Set("Authorization", "Bearer "+p.keys.KeyFor(trentoAgent))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST cloud_discovery: %d", resp.StatusCode)
	}
	p.quiesceCloud(t)
	p.eventually(t, "the host linked to its instance", func() error {
		_, body := p.get(t, "/api/v1/cloud/resources/"+trentoInstance)
		want := []string{trentoAgent + " -runs_on_vm-> " + trentoInstance}
		if got := linkSet(body["links"].([]any)); !slices.Equal(got, want) {
			return fmt.Errorf("links %v", got)
		}
		return nil
	})
	_, hostGraph := p.get(t, "/api/v1/graph/"+trentoAgent)
	nodes = nil
	for _, n := range hostGraph["nodes"].([]any) {
		e := n.(map[string]any)["entity"].(map[string]any)
		nodes = append(nodes, fmt.Sprintf("%s:%s %s", e["type"], e["id"], n.(map[string]any)["name"]))
	}
	equal(t, "the host's graph", nodes, []string{"host:" + trentoAgent + " ", "cloud_resource:" + trentoInstance + " hana-1"})
	equal(t, "the host's link history", p.cloudEventTypes(t, trentoAgent, true), []string{"EntityLinked"})
}
