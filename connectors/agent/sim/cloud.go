package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// A simulated host's cloud_discovery: the provider it runs on and, for the
// public clouds, the instance metadata the Trento agent reads from the
// provider's metadata service, shaped like the agent's payloads (Azure's
// values are all strings, AWS and GCP count disks as numbers). On-premises
// hypervisors report no metadata, so their discovery never changes.

type cloudProvider struct {
	weight int
	name   string
	// sizes an instance can be resized to; none for hypervisors.
	sizes []string
	// virtualization is what saptune reports on this provider.
	virtualization string
}

var cloudProviders = []cloudProvider{
	{35, "azure", []string{"Standard_E4s_v3", "Standard_E8s_v3", "Standard_E16s_v5", "Standard_M32ts", "Standard_M64s", "Standard_M128s"}, "microsoft"},
	{25, "aws", []string{"r5.2xlarge", "r5.4xlarge", "r6i.8xlarge", "x1.16xlarge", "x2idn.24xlarge", "u-6tb1.56xlarge"}, "amazon"},
	{15, "gcp", []string{"n1-highmem-8", "n1-highmem-32", "n2-highmem-64", "m1-megamem-96", "m2-ultramem-208"}, "google"},
	{10, "kvm", nil, "kvm"},
	{10, "vmware", nil, "vmware"},
	{5, "nutanix", nil, "kvm"},
}

var (
	azureRegions = []string{"westeurope", "northeurope", "germanywestcentral", "eastus2", "westus2"}
	awsRegions   = []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2"}
	gcpZones     = []string{"europe-west1-b", "europe-west3-c", "us-central1-a", "us-east4-b", "asia-southeast1-a"}
)

type cloud struct {
	provider int
	size     int
	region   int
	disks    int
	// account is the subscription, account or project the host belongs to:
	// hosts of one landscape share a few.
	account int
}

func newCloud(rng *rand.Rand) *cloud {
	c := &cloud{provider: weighted(rng, len(cloudProviders), func(i int) int { return cloudProviders[i].weight })}
	if p := cloudProviders[c.provider]; p.sizes != nil {
		c.size = rng.IntN(len(p.sizes))
		c.region = rng.IntN(5)
		c.disks = 1 + rng.IntN(8)
		c.account = rng.IntN(4)
	}
	return c
}

// change resizes the instance or attaches a data disk; it reports false on
// a hypervisor, which has nothing to change.
func (c *cloud) change(rng *rand.Rand) bool {
	p := cloudProviders[c.provider]
	if p.sizes == nil {
		return false
	}
	if rng.IntN(2) == 0 {
		old := c.size
		for c.size == old {
			c.size = rng.IntN(len(p.sizes))
		}
	} else {
		c.disks++
	}
	return true
}

// cloudPayload is the cloud_discovery payload (the Trento agent's field names).
type cloudPayload struct {
	Provider string `json:"Provider"`
	Metadata any    `json:"Metadata"`
}

func (c *cloud) render(h *host) cloudPayload {
	p := cloudProviders[c.provider]
	name := fmt.Sprintf("sim-%04d", h.index+1)
	uid := h.id[:8] // distinct per host, stable
	var md any
	switch p.name {
	case "aws":
		region := awsRegions[c.region]
		md = map[string]any{
			"account_id":        fmt.Sprintf("1234567890%02d", c.account),
			"ami_id":            "ami-0" + uid,
			"availability_zone": region + string(rune('a'+h.index%3)),
			"data_disk_number":  c.disks,
			"instance_id":       "i-0" + h.id[24:],
			"instance_type":     p.sizes[c.size],
			"region":            region,
			"vpc_id":            fmt.Sprintf("vpc-%08x", c.account),
		}
	case "gcp":
		md = map[string]any{
			"disk_number":   c.disks,
			"image":         "sles-15-sp5-sap-byos-v20240612",
			"instance_name": name,
			"machine_type":  p.sizes[c.size],
			"network":       fmt.Sprintf("sap-network-%d", c.account),
			"project_id":    fmt.Sprintf("sap-landscape-%d", c.account),
			"zone":          gcpZones[c.region],
		}
	case "azure":
		md = azureMetadata(h, c, name, p.sizes[c.size])
	}
	return cloudPayload{Provider: p.name, Metadata: md}
}

// azureMetadata is the Azure instance metadata document, as the agent
// forwards it: every value a string.
func azureMetadata(h *host, c *cloud, name, size string) map[string]any {
	sub := fmt.Sprintf("%08x-0000-4000-8000-%012d", c.account, c.account)
	rg := fmt.Sprintf("/subscriptions/%s/resourceGroups/sap-rg-%d", sub, c.account)
	disk := func(diskName, size, lun string) map[string]any {
		return map[string]any{
			"name": diskName, "writeAcceleratorEnabled": "false", "image": map[string]any{"uri": ""},
			"managedDisk": map[string]any{"storageAccountType": "Premium_LRS", "id": rg + "/providers/Microsoft.Compute/disks/" + diskName},
			"diskSizeGB":  size, "createOption": "Empty", "caching": "None", "vhd": map[string]any{"uri": ""}, "lun": lun,
		}
	}
	dataDisks := make([]any, c.disks)
	for i := range dataDisks {
		dataDisks[i] = disk(fmt.Sprintf("disk-%s-Data%02d", name, i+1), "128", strconv.Itoa(i))
	}
	osDisk := disk("disk-"+name+"-Os", "30", "")
	delete(osDisk, "lun")
	osDisk["createOption"], osDisk["caching"], osDisk["osType"] = "FromImage", "ReadWrite", "Linux"
	osDisk["diffDiskSettings"] = map[string]any{"option": ""}
	osDisk["encryptionSettings"] = map[string]any{"enabled": "false"}
	image := map[string]any{"sku": "gen2", "publisher": "SUSE", "version": "latest", "offer": "sles-sap-15-sp5-byos"}
	a, b, cc := h.index/250/250%250, h.index/250%250, h.index%250+4
	return map[string]any{
		"compute": map[string]any{
			"azEnvironment": "AzurePublicCloud", "resourceId": rg + "/providers/Microsoft.Compute/virtualMachines/" + name,
			"vmId": h.id, "platformFaultDomain": strconv.Itoa(h.index % 3), "osType": "Linux", "sku": "gen2",
			"osProfile": map[string]any{"adminUsername": "cloudadmin", "computerName": name, "disablePasswordAuthentication": "true"},
			"tags":      "landscape:sap;env:" + h.domain[:3], "version": "2024.06.12", "location": azureRegions[c.region],
			"provider": "Microsoft.Compute", "subscriptionId": sub, "offer": "sles-sap-15-sp5-byos",
			"platformUpdateDomain": strconv.Itoa(h.index % 5), "plan": map[string]any{}, "publisher": "SUSE", "name": name,
			"storageProfile":             map[string]any{"imageReference": image, "osDisk": osDisk, "dataDisks": dataDisks},
			"vmSize":                     size,
			"resourceGroupName":          fmt.Sprintf("sap-rg-%d", c.account),
			"publicKeys":                 []any{map[string]any{"path": "/home/cloudadmin/.ssh/authorized_keys", "keyData": "ssh-rsa AAAA" + h.id[:8]}},
			"isHostCompatibilityLayerVm": "false",
			"securityProfile":            map[string]any{"virtualTpmEnabled": "false", "secureBootEnabled": "false"},
			"tagsList": []any{
				map[string]any{"name": "landscape", "value": "sap"},
				map[string]any{"name": "env", "value": h.domain[:3]},
			},
		},
		"network": map[string]any{
			"interface": []any{map[string]any{
				"macAddress": fmt.Sprintf("6045BD%02X%02X%02X", a, b, cc),
				"ipv4": map[string]any{
					"subnet":    []any{map[string]any{"prefix": "16", "address": fmt.Sprintf("10.%d.0.0", a)}},
					"ipAddress": []any{map[string]any{"privateIpAddress": fmt.Sprintf("10.%d.%d.%d", a, b, cc), "publicIpAddress": ""}},
				},
				"ipv6": map[string]any{},
			}},
		},
	}
}
