package payload

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestDecodeProviderFixtures(t *testing.T) {
	tests := []struct {
		file string
		want *fleetv1.HostProvider
	}{
		{"discovery/cloud_discovery_aws.json", &fleetv1.HostProvider{Provider: "aws", Data: &fleetv1.HostProvider_Aws{Aws: &fleetv1.AwsProviderData{
			AccountId: "12345", AmiId: "ami-12345", AvailabilityZone: "eu-west-1a", DataDiskNumber: 1,
			InstanceId: "i-12345", InstanceType: "t3.micro", Region: "eu-west-1", VpcId: "vpc-12345",
		}}}},
		{"discovery/cloud_discovery_azure.json", &fleetv1.HostProvider{Provider: "azure", Data: &fleetv1.HostProvider_Azure{Azure: &fleetv1.AzureProviderData{
			VmName: "vmhdbdev01", VmId: "01234567-0000-0000-0000-000000000000", SubscriptionId: "00000000-0000-0000-0000-000000000000",
			ResourceGroup: "resourceGroupName", Location: "westeurope", VmSize: "Standard_E4s_v3", DataDiskNumber: 7,
			Offer: "sles-sap-15-sp3-byos", Sku: "gen2", AdminUsername: "cloudadmin",
		}}}},
		{"discovery/cloud_discovery_gcp.json", &fleetv1.HostProvider{Provider: "gcp", Data: &fleetv1.HostProvider_Gcp{Gcp: &fleetv1.GcpProviderData{
			DiskNumber: 4, Image: "sles-15-sp1-sap-byos-v20220126", InstanceName: "vmhana01", MachineType: "n1-highmem-8",
			Network: "network", ProjectId: "123456", Zone: "europe-west1-b",
		}}}},
		{"discovery/cloud_discovery_kvm.json", &fleetv1.HostProvider{Provider: "kvm"}},
		{"discovery/cloud_discovery_nutanix.json", &fleetv1.HostProvider{Provider: "nutanix"}},
		{"discovery/cloud_discovery_vmware.json", &fleetv1.HostProvider{Provider: "vmware"}},
		// No Provider at all.
		{"discovery/cloud_discovery_unknown.json", &fleetv1.HostProvider{Provider: "unknown"}},
		{"scenarios/host-details/9cd46919-5f19-59aa-993e-cf3736c71053_cloud_discovery_unknown.json", &fleetv1.HostProvider{Provider: "unknown"}},
		{"scenarios/host-details/9cd46919-5f19-59aa-993e-cf3736c71053_cloud_discovery_aws_no_metadata.json", &fleetv1.HostProvider{Provider: "aws"}},
	}
	for _, tt := range tests {
		got, err := DecodeProvider(fixture(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if !proto.Equal(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.file, got, tt.want)
		}
	}
}

func TestDecodeProviderErrors(t *testing.T) {
	tests := []struct {
		name, raw, field, message string
	}{
		{"provider not a string", `{"Provider": 3}`, "Provider", "Provider must be a JSON string, got number"},
		{"aws disk count not a number", `{"Provider": "aws", "Metadata": {"data_disk_number": "one"}}`, "Metadata.data_disk_number", "Metadata.data_disk_number must be a JSON int32, got string"},
		{"azure compute not an object", `{"Provider": "azure", "Metadata": {"compute": {"vmSize": 4}}}`, "Metadata.compute.vmSize", "Metadata.compute.vmSize must be a JSON string, got number"},
		{"gcp metadata not an object", `{"Provider": "gcp", "Metadata": [1]}`, "", "not a valid payload"},
		{"not an object", `[]`, "", "not a valid payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeProvider([]byte(tt.raw))
			checkError(t, err, tt.field, tt.message)
		})
	}
}

// checkError fails unless err names field (none: "") and says message.
func checkError(t *testing.T, err error, field, message string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var fe *FieldError
	got := ""
	if errors.As(err, &fe) {
		got = fe.Field()
	}
	if got != field {
		t.Errorf("field %q, want %q (%v)", got, field, err)
	}
	if !strings.Contains(err.Error(), message) {
		t.Errorf("error %q does not say %q", err, message)
	}
}
