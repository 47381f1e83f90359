package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Cloud is the Trento agent's cloud_discovery payload: the platform the
// host runs on. Metadata's shape depends on Provider; it is null for
// platforms the agent knows no metadata service of (kvm, nutanix, vmware).
type Cloud struct {
	Provider string          `json:"Provider"`
	Metadata json.RawMessage `json:"Metadata"`
}

// AWSMetadata is Cloud.Metadata for Provider "aws", from the EC2 instance
// metadata service. Fields fleetstream does not use are left out.
type AWSMetadata struct {
	AccountID        string `json:"account_id"`
	InstanceID       string `json:"instance_id"`
	Region           string `json:"region"`
	AvailabilityZone string `json:"availability_zone"`
	InstanceType     string `json:"instance_type"`
	VpcID            string `json:"vpc_id"`
}

// Cloud providers as the Trento agent names them.
const (
	CloudAWS    = "aws"
	CloudVMware = "vmware"
)

// DecodeCloud decodes a cloud_discovery payload. Metadata of a provider
// fleetstream does not read is not looked at.
func DecodeCloud(raw []byte) (*Cloud, error) {
	var c Cloud
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, decodeError(err)
	}
	return &c, nil
}

// AWS returns the EC2 metadata of an aws cloud_discovery; nil, nil for
// another provider or no metadata.
func (c *Cloud) AWS() (*AWSMetadata, error) {
	if c.Provider != CloudAWS || len(c.Metadata) == 0 || bytes.Equal(bytes.TrimSpace(c.Metadata), []byte("null")) {
		return nil, nil
	}
	var m AWSMetadata
	if err := json.Unmarshal(c.Metadata, &m); err != nil {
		return nil, fmt.Errorf("Metadata of an aws cloud_discovery: %w", decodeError(err))
	}
	return &m, nil
}
