package payload

import (
	"bytes"
	"encoding/json"
	"fmt"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
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
	AmiID            string `json:"ami_id"`
	InstanceID       string `json:"instance_id"`
	Region           string `json:"region"`
	AvailabilityZone string `json:"availability_zone"`
	InstanceType     string `json:"instance_type"`
	VpcID            string `json:"vpc_id"`
	DataDiskNumber   int32  `json:"data_disk_number"`
}

// azureMetadata is Cloud.Metadata for Provider "azure", from the Azure
// instance metadata service (its JSON names).
type azureMetadata struct {
	Compute struct {
		Name              string `json:"name"`
		VMID              string `json:"vmId"`
		SubscriptionID    string `json:"subscriptionId"`
		ResourceGroupName string `json:"resourceGroupName"`
		Location          string `json:"location"`
		VMSize            string `json:"vmSize"`
		Offer             string `json:"offer"`
		Sku               string `json:"sku"`
		OSProfile         struct {
			AdminUsername string `json:"adminUsername"`
		} `json:"osProfile"`
		StorageProfile struct {
			DataDisks []json.RawMessage `json:"dataDisks"`
		} `json:"storageProfile"`
	} `json:"compute"`
}

// gcpMetadata is Cloud.Metadata for Provider "gcp", as the agent
// summarises the GCE metadata server.
type gcpMetadata struct {
	DiskNumber   int32  `json:"disk_number"`
	Image        string `json:"image"`
	InstanceName string `json:"instance_name"`
	MachineType  string `json:"machine_type"`
	Network      string `json:"network"`
	ProjectID    string `json:"project_id"`
	Zone         string `json:"zone"`
}

// Cloud providers as the Trento agent names them.
const (
	CloudAWS     = "aws"
	CloudAzure   = "azure"
	CloudGCP     = "gcp"
	CloudKVM     = "kvm"
	CloudNutanix = "nutanix"
	CloudVMware  = "vmware"
	CloudUnknown = "unknown"
)

// cloudProviders are the providers a host's provider can be; anything
// else the agent reports (or no Provider at all) is CloudUnknown.
var cloudProviders = map[string]bool{CloudAWS: true, CloudAzure: true, CloudGCP: true, CloudKVM: true, CloudNutanix: true, CloudVMware: true, CloudUnknown: true}

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
	if c.Provider != CloudAWS || !c.hasMetadata() {
		return nil, nil
	}
	var m AWSMetadata
	if err := json.Unmarshal(c.Metadata, &m); err != nil {
		return nil, fmt.Errorf("Metadata of an aws cloud_discovery: %w", metadataError(err))
	}
	return &m, nil
}

func (c *Cloud) hasMetadata() bool {
	return len(c.Metadata) != 0 && !bytes.Equal(bytes.TrimSpace(c.Metadata), []byte("null"))
}

// DecodeProvider turns a cloud_discovery payload into the host's provider.
// A payload without a Provider, or with one fleetstream does not know, is
// provider "unknown": the agent reports what it could not identify that
// way too.
func DecodeProvider(raw []byte) (*fleetv1.HostProvider, error) {
	c, err := DecodeCloud(raw)
	if err != nil {
		return nil, err
	}
	p := &fleetv1.HostProvider{Provider: c.Provider}
	if !cloudProviders[p.Provider] {
		p.Provider = CloudUnknown
	}
	if !c.hasMetadata() {
		return p, nil
	}
	switch p.Provider {
	case CloudAWS:
		m, err := c.AWS()
		if err != nil {
			return nil, err
		}
		p.Data = &fleetv1.HostProvider_Aws{Aws: &fleetv1.AwsProviderData{
			AccountId: m.AccountID, AmiId: m.AmiID, AvailabilityZone: m.AvailabilityZone, DataDiskNumber: m.DataDiskNumber,
			InstanceId: m.InstanceID, InstanceType: m.InstanceType, Region: m.Region, VpcId: m.VpcID,
		}}
	case CloudAzure:
		var m azureMetadata
		if err := json.Unmarshal(c.Metadata, &m); err != nil {
			return nil, fmt.Errorf("Metadata of an azure cloud_discovery: %w", metadataError(err))
		}
		cm := m.Compute
		p.Data = &fleetv1.HostProvider_Azure{Azure: &fleetv1.AzureProviderData{
			VmName: cm.Name, VmId: cm.VMID, SubscriptionId: cm.SubscriptionID, ResourceGroup: cm.ResourceGroupName,
			Location: cm.Location, VmSize: cm.VMSize, DataDiskNumber: int32(len(cm.StorageProfile.DataDisks)),
			Offer: cm.Offer, Sku: cm.Sku, AdminUsername: cm.OSProfile.AdminUsername,
		}}
	case CloudGCP:
		var m gcpMetadata
		if err := json.Unmarshal(c.Metadata, &m); err != nil {
			return nil, fmt.Errorf("Metadata of a gcp cloud_discovery: %w", metadataError(err))
		}
		p.Data = &fleetv1.HostProvider_Gcp{Gcp: &fleetv1.GcpProviderData{
			DiskNumber: m.DiskNumber, Image: m.Image, InstanceName: m.InstanceName, MachineType: m.MachineType,
			Network: m.Network, ProjectId: m.ProjectID, Zone: m.Zone,
		}}
	}
	return p, nil
}

// metadataError is decodeError with the field named from the payload's
// root ("Metadata.compute.vmSize").
func metadataError(err error) error {
	return prefixField("Metadata.", decodeError(err))
}
