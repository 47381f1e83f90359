package payload

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const collection = `{"provider":"aws","account":"111","region":"eu-west-1","kind":"ec2_instance",
  "collection_id":"c1","chunk":0,"chunks":1,"complete":true,"resources":[
  {"id":"i-1","name":"web","tags":{"env":"prod"},"attributes":{"state":"running","cpu":2,"ips":["10.0.0.1"]},
   "links":[{"relation":"in_vpc","kind":"vpc","id":"vpc-1"},{"relation":"has_security_group","kind":"security_group","id":"sg-1"},
            {"relation":"in_vpc","kind":"vpc","id":"vpc-1"}]}]}`

func TestDecodeResourceCollection(t *testing.T) {
	c, err := DecodeResourceCollection([]byte(collection))
	if err != nil {
		t.Fatal(err)
	}
	if c.Key() != "aws:111:eu-west-1:ec2_instance" || ResourceKey(c.Provider, c.Account, c.Resources[0].ID) != "aws:111:i-1" {
		t.Fatalf("keys %s, %s", c.Key(), ResourceKey(c.Provider, c.Account, c.Resources[0].ID))
	}
	specs, err := c.Specs()
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	wantLinks := []*fleetv1.ResourceLink{
		{Relation: "has_security_group", Kind: "security_group", Id: "sg-1"},
		{Relation: "in_vpc", Kind: "vpc", Id: "vpc-1"}, // the duplicate is gone
	}
	if len(s.Links) != len(wantLinks) || !proto.Equal(s.Links[0], wantLinks[0]) || !proto.Equal(s.Links[1], wantLinks[1]) {
		t.Fatalf("links %v, want %v", s.Links, wantLinks)
	}
	attrs := s.GetAttributes().GetFields()
	if s.Provider != "aws" || s.Region != "eu-west-1" || s.Kind != "ec2_instance" || s.ResourceId != "i-1" || s.Name != "web" ||
		s.Tags["env"] != "prod" || attrs["cpu"].GetNumberValue() != 2 || attrs["ips"].GetListValue().GetValues()[0].GetStringValue() != "10.0.0.1" {
		t.Fatalf("spec %v", s)
	}
	if err := Validate(CloudResources, []byte(collection)); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestDecodeResourceCollectionErrorsNameTheField(t *testing.T) {
	resource := func(m map[string]any) map[string]any { return m["resources"].([]any)[0].(map[string]any) }
	for _, tt := range []struct {
		name  string
		edit  func(m map[string]any)
		field string
		says  string
	}{
		{"no account", func(m map[string]any) { delete(m, "account") }, "account", "account is required"},
		{"no collection id", func(m map[string]any) { delete(m, "collection_id") }, "collection_id", "collection_id is required"},
		{"no chunks", func(m map[string]any) { delete(m, "chunks") }, "chunks", "chunks must be between 1"},
		{"chunk past the end", func(m map[string]any) { m["chunk"] = 1 }, "chunk", "got 1"},
		{"wrong type", func(m map[string]any) { m["chunk"] = "0" }, "chunk", "must be a JSON int"},
		{"resource without id", func(m map[string]any) { delete(resource(m), "id") }, "resources[0].id", "is required"},
		{"link without id", func(m map[string]any) {
			delete(resource(m)["links"].([]any)[1].(map[string]any), "id")
		}, "resources[0].links[1].id", "is required"},
		{"resource twice", func(m map[string]any) {
			m["resources"] = append(m["resources"].([]any), map[string]any{"id": "i-1"})
		}, "resources[1].id", "repeats resources[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(collection), &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(CloudResources, raw)
			fe, ok := errors.AsType[*FieldError](err)
			if !ok || fe.Field() != tt.field || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Validate = %v, want an error about %s saying %q", err, tt.field, tt.says)
			}
		})
	}
}

func TestDecodeCloudFixtures(t *testing.T) {
	c, err := DecodeCloud(fixture(t, "discovery/cloud_discovery_aws.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.AWS()
	if err != nil || m == nil {
		t.Fatalf("AWS() = %v, %v", m, err)
	}
	if *m != (AWSMetadata{AccountID: "12345", AmiID: "ami-12345", DataDiskNumber: 1, InstanceID: "i-12345", Region: "eu-west-1", AvailabilityZone: "eu-west-1a", InstanceType: "t3.micro", VpcID: "vpc-12345"}) {
		t.Fatalf("metadata %+v", m)
	}
	for _, f := range []string{"cloud_discovery_vmware.json", "cloud_discovery_kvm.json", "cloud_discovery_azure.json", "cloud_discovery_unknown.json"} {
		c, err := DecodeCloud(fixture(t, "discovery/"+f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if m, err := c.AWS(); m != nil || err != nil {
			t.Errorf("%s: AWS() = %v, %v; want nothing", f, m, err)
		}
	}
	if _, err := (&Cloud{Provider: CloudAWS, Metadata: []byte(`{"account_id": 12345}`)}).AWS(); err == nil {
		t.Error("numeric account_id accepted")
	}
}
