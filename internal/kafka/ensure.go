package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EnsureTopics creates the missing topics and verifies the existing ones
// against their definitions: partition count, replication factor and every
// config the definition sets (a table that is not compacted loses state, an
// event store with a retention deletes history). It reports every mismatch
// at once, each with how to fix it, and changes nothing that exists.
// replication is 1 on a single broker.
func EnsureTopics(ctx context.Context, adm *kadm.Client, topics []Topic, replication int16) error {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var problems []string
	var present []Topic
	var created []string
	for _, t := range topics {
		if d, ok := existing[t.Name]; ok && d.Err == nil {
			problems = append(problems, checkLayout(t, d, replication)...)
			present = append(present, t)
			continue
		}
		cfg := make(map[string]*string, len(t.Configs))
		for k, v := range t.Configs {
			cfg[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, replication, cfg, t.Name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			present = append(present, t) // created meanwhile by another migrate
		case err != nil:
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		default:
			created = append(created, t.Name)
		}
	}
	if len(present) > 0 {
		p, err := checkConfigs(ctx, adm, present)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	if err := waitForLeaders(ctx, adm, created); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d differences from fleetstream's topic definitions:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

// checkLayout compares an existing topic's partitions and replicas with
// its definition.
func checkLayout(t Topic, d kadm.TopicDetail, replication int16) []string {
	var problems []string
	if got := int32(len(d.Partitions)); got != t.Partitions {
		problems = append(problems, fmt.Sprintf("topic %s has %d partitions, want %d (recreate it, or run every fleetstream role with --partitions %d)", t.Name, got, t.Partitions, got))
	}
	if got := d.Partitions.NumReplicas(); got > 0 && got != int(replication) {
		problems = append(problems, fmt.Sprintf("topic %s has replication factor %d, want %d (reassign its partitions, or pass --replication %d)", t.Name, got, replication, got))
	}
	return problems
}

// checkConfigs compares the configs of existing topics with their
// definitions.
func checkConfigs(ctx context.Context, adm *kadm.Client, topics []Topic) ([]string, error) {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	described, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe configs of topics %v: %w", names, err)
	}
	var problems []string
	for _, t := range topics {
		rc, err := described.On(t.Name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return nil, fmt.Errorf("describe configs of topic %s: %w", t.Name, err)
		}
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			got, want := configValue(rc, k), t.Configs[k]
			if got != want {
				problems = append(problems, fmt.Sprintf("topic %s has %s=%s, want %s (kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config %s=%s)", t.Name, k, got, want, t.Name, k, want))
			}
		}
	}
	return problems, nil
}

func configValue(rc kadm.ResourceConfig, key string) string {
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return "(unset)"
}

// waitForLeaders returns once every partition of topics has a leader: a
// real cluster answers CreateTopics before every broker knows the topic,
// and goka, which only verifies topics, would fail on one it cannot see.
func waitForLeaders(ctx context.Context, adm *kadm.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Asking for authorized operations bypasses the client's metadata
	// cache, which would answer from the lookup made before the topics
	// existed for up to kgo's MetadataMinAge (5s).
	fresh := kadm.WithAuthorizedOps(ctx)
	for {
		details, err := adm.ListTopics(fresh, topics...)
		if err == nil && allLed(details, topics) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v created but their partitions have no leader yet: %w (is the cluster healthy?)", topics, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allLed(details kadm.TopicDetails, topics []string) bool {
	for _, name := range topics {
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}
