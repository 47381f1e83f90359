package kafka_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
)

// Every topic name of Topics carries the namespace, so a new field that
// WithNamespace forgets fails here instead of colliding on a shared cluster.
func TestWithNamespacePrefixesEveryName(t *testing.T) {
	def := kafka.DefaultTopics()
	ns := def.WithNamespace("t1.")
	again := ns.WithNamespace("t2.")
	dv, nv, av := reflect.ValueOf(def), reflect.ValueOf(ns), reflect.ValueOf(again)
	for i := range dv.NumField() {
		f := dv.Type().Field(i)
		if f.Type.Kind() != reflect.String || f.Name == "Namespace" {
			continue
		}
		if got, want := nv.Field(i).String(), "t1."+dv.Field(i).String(); got != want {
			t.Errorf("WithNamespace(t1.).%s = %q, want %q", f.Name, got, want)
		}
		if got, want := av.Field(i).String(), "t2."+dv.Field(i).String(); got != want {
			t.Errorf("re-namespaced %s = %q, want %q (the old prefix replaced)", f.Name, got, want)
		}
	}
	if ns.Partitions != def.Partitions {
		t.Errorf("partitions changed to %d", ns.Partitions)
	}
	if g := ns.Group(kafka.HostGroup); g != "t1.fleet.host" {
		t.Errorf("Group(HostGroup) = %q", g)
	}
	if g := def.Group(kafka.HostGroup); g != kafka.HostGroup {
		t.Errorf("without a namespace Group(HostGroup) = %q, want the plain name", g)
	}
	for _, tp := range ns.All() {
		if !strings.HasPrefix(tp.Name, "t1.") {
			t.Errorf("All() lists %s outside the namespace", tp.Name)
		}
	}
}

// The default table is what ARCHITECTURE.md names, with the configs that
// keep state and history.
func TestDefaultTopicTable(t *testing.T) {
	byName := map[string]kafka.Topic{}
	for _, tp := range kafka.DefaultTopics().All() {
		if _, dup := byName[tp.Name]; dup {
			t.Errorf("topic %s defined twice", tp.Name)
		}
		byName[tp.Name] = tp
	}
	// goka refuses to start a group whose input and table differ.
	for input, table := range map[string]string{
		"fleet.discoveries.v1":   "fleet.scenario-table",
		"fleet.commands.host.v1": "fleet.host-table",
	} {
		if a, b := byName[input].Partitions, byName[table].Partitions; a != b || a == 0 {
			t.Errorf("%s has %d partitions and %s %d: they must be co-partitioned", input, a, table, b)
		}
	}
	for name, want := range map[string]map[string]string{
		"fleet.events.v1":      {"cleanup.policy": "delete", "retention.ms": "-1"},
		"fleet.scenario-table": {"cleanup.policy": "compact"},
		"fleet.host-table":     {"cleanup.policy": "compact"},
		"fleet.discoveries.v1": nil,
	} {
		tp, ok := byName[name]
		if !ok {
			t.Errorf("no topic %s", name)
			continue
		}
		if len(want) > 0 && !reflect.DeepEqual(tp.Configs, want) {
			t.Errorf("%s configs %v, want %v", name, tp.Configs, want)
		}
	}
}

func admin(t *testing.T) *kadm.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func TestEnsureTopicsCreatesThenVerifies(t *testing.T) {
	adm := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := kafka.DefaultTopics()
	topics.Partitions = 3
	if err := kafka.EnsureTopics(ctx, adm, topics.All(), 1); err != nil {
		t.Fatalf("create: %v", err)
	}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics.All() {
		if n := int32(len(details[tp.Name].Partitions)); n != tp.Partitions {
			t.Errorf("%s has %d partitions, want %d", tp.Name, n, tp.Partitions)
		}
	}
	// A second run finds everything as defined and changes nothing.
	if err := kafka.EnsureTopics(ctx, adm, topics.All(), 1); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestEnsureTopicsReportsMismatches(t *testing.T) {
	adm := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := kafka.DefaultTopics()
	table := kafka.TableTopic(kafka.HostGroup)
	// Made by hand, wrongly: a table that deletes, an event store with a
	// week of retention, a discoveries topic with too few partitions.
	for _, c := range []struct {
		name       string
		partitions int32
		configs    map[string]*string
	}{
		{table, topics.Partitions, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}},
		{topics.Events, topics.Partitions, map[string]*string{"retention.ms": kadm.StringPtr("604800000")}},
		{topics.Discoveries, 2, nil},
	} {
		if _, err := adm.CreateTopic(ctx, c.partitions, 1, c.configs, c.name); err != nil {
			t.Fatal(err)
		}
	}
	err := kafka.EnsureTopics(ctx, adm, topics.All(), 1)
	if err == nil {
		t.Fatal("EnsureTopics accepted misconfigured topics")
	}
	for _, want := range []string{
		"topic " + table + " has cleanup.policy=delete, want compact",
		"topic fleet.events.v1 has retention.ms=604800000, want -1",
		"topic fleet.discoveries.v1 has 2 partitions, want 8",
		"--entity-name " + table + " --add-config cleanup.policy=compact",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	// The topics it could create, it created.
	details, lerr := adm.ListTopics(ctx, topics.HostCommands)
	if lerr != nil || details[topics.HostCommands].Err != nil {
		t.Errorf("missing topic %s was not created: %v %v", topics.HostCommands, lerr, details)
	}
}
