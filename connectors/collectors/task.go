package collectors

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/fleetstream/fleetstream/connectors/tasks"
)

// CollectAllType is the task type that collects every kind (or the listed
// ones) of a provider in every region (or the listed ones): "aws.collect_all".
func CollectAllType(provider string) string { return provider + ".collect_all" }

// CollectKindType is the task type that collects one kind in one region:
// "aws.collect_kind".
func CollectKindType(provider string) string { return provider + ".collect_kind" }

// CollectAll is the payload of a "<provider>.collect_all" task.
type CollectAll struct {
	// Account is the expected account (AWS account id, vCenter instance
	// UUID); empty: whatever the credentials reach.
	Account string `json:"account,omitempty"`
	// Regions to collect (AWS regions, vSphere datacenter names); empty:
	// all of the account's regions.
	Regions []string `json:"regions,omitempty"`
	// Kinds to collect; empty: all of the provider's kinds.
	Kinds []string `json:"kinds,omitempty"`
	// Endpoint overrides the provider's API endpoint.
	Endpoint string `json:"endpoint,omitempty"`
}

// CollectKind is the payload of a "<provider>.collect_kind" task.
type CollectKind struct {
	Account  string `json:"account,omitempty"`
	Region   string `json:"region"`
	Kind     string `json:"kind"`
	Endpoint string `json:"endpoint,omitempty"`
}

// decodePayload reads a task payload strictly: a misspelt field would
// otherwise silently widen a collection to everything.
func decodePayload(taskType string, data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return tasks.Permanent(fmt.Errorf("decode %s payload: %w", taskType, err))
	}
	return nil
}
