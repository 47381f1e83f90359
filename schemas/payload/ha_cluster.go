package payload

import (
	"bytes"
	"encoding/json"
	"errors"
)

// HACluster is the ha_cluster_discovery payload of the Trento agent: the
// cluster's id and name as corosync knows them, whether this host is the
// designated controller (DC) and online in the cluster, and the raw CIB,
// crm_mon and SBD views the cluster details derive from (ha_cluster_derive.go).
// A null payload means the host is not clustered; DecodeHACluster returns
// nil for it.
//
// The decoder is tolerant where real agents differ: Online is absent in
// older agents (the host is then taken to be online), State too; a host
// whose pacemaker is stopped sends only Id, Name and Online false; clones
// of groups arrive with empty primitives and null resource lists.
type HACluster struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
	// DC: this host is the designated controller; only its discovery
	// describes the whole cluster.
	DC bool `json:"DC"`
	// Online is nil when the agent does not send it.
	Online   *bool   `json:"Online"`
	Provider string  `json:"Provider"`
	State    string  `json:"State"`
	Cib      *Cib    `json:"Cib"`
	Crmmon   *Crmmon `json:"Crmmon"`
	SBD      *SBD    `json:"SBD"`
}

// Cib is the cluster information base: the configuration pacemaker holds.
type Cib struct {
	Configuration CibConfiguration `json:"Configuration"`
}

// CibConfiguration holds the configured properties, nodes and resources.
type CibConfiguration struct {
	CrmConfig struct {
		ClusterProperties []NameValue `json:"ClusterProperties"`
	} `json:"CrmConfig"`
	Nodes     []CibNode    `json:"Nodes"`
	Resources CibResources `json:"Resources"`
}

// NameValue is a CIB nvpair or a crm_mon node attribute.
type NameValue struct {
	ID    string `json:"Id,omitempty"`
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// CibNode is a configured node with its persistent attributes.
type CibNode struct {
	ID                 string      `json:"Id"`
	Uname              string      `json:"Uname"`
	InstanceAttributes []NameValue `json:"InstanceAttributes"`
}

// CibResources are the configured resources by kind.
type CibResources struct {
	Primitives []CibPrimitive `json:"Primitives"`
	// Masters are promotable clones (SAPHana, SAPHanaController).
	Masters []CibClone `json:"Masters"`
	Clones  []CibClone `json:"Clones"`
	Groups  []CibGroup `json:"Groups"`
}

// CibPrimitive is one configured resource.
type CibPrimitive struct {
	ID                 string      `json:"Id"`
	Class              string      `json:"Class"`
	Type               string      `json:"Type"`
	Provider           string      `json:"Provider"`
	InstanceAttributes []NameValue `json:"InstanceAttributes"`
	MetaAttributes     []NameValue `json:"MetaAttributes"`
}

// Attribute is the value of the instance attribute name, "" when absent.
func (p CibPrimitive) Attribute(name string) string {
	return value(p.InstanceAttributes, name)
}

// CibClone is a clone or promotable clone of one primitive. A clone of a
// group arrives with an empty primitive.
type CibClone struct {
	ID        string        `json:"Id"`
	Primitive *CibPrimitive `json:"Primitive"`
}

// CibGroup is a group of primitives started together on one node.
type CibGroup struct {
	ID         string         `json:"Id"`
	Primitives []CibPrimitive `json:"Primitives"`
}

// Crmmon is crm_mon's view of the running cluster.
type Crmmon struct {
	Version string `json:"Version"`
	Summary struct {
		Nodes struct {
			Number int `json:"Number"`
		} `json:"Nodes"`
		LastChange struct {
			Time string `json:"Time"`
		} `json:"LastChange"`
		Resources struct {
			Number   int `json:"Number"`
			Disabled int `json:"Disabled"`
			Blocked  int `json:"Blocked"`
		} `json:"Resources"`
	} `json:"Summary"`
	Nodes          []CrmNode `json:"Nodes"`
	NodeAttributes struct {
		Nodes []struct {
			Name       string      `json:"Name"`
			Attributes []NameValue `json:"Attributes"`
		} `json:"Nodes"`
	} `json:"NodeAttributes"`
	NodeHistory struct {
		Nodes []struct {
			Name            string `json:"Name"`
			ResourceHistory []struct {
				Name      string `json:"Name"`
				FailCount int64  `json:"FailCount"`
			} `json:"ResourceHistory"`
		} `json:"Nodes"`
	} `json:"NodeHistory"`
	Resources []CrmResource `json:"Resources"`
	Clones    []CrmClone    `json:"Clones"`
	Groups    []CrmGroup    `json:"Groups"`
}

// CrmNode is a node as crm_mon sees it.
type CrmNode struct {
	Name          string `json:"Name"`
	ID            string `json:"Id"`
	Online        bool   `json:"Online"`
	Standby       bool   `json:"Standby"`
	StandbyOnFail bool   `json:"StandbyOnFail"`
	Maintenance   bool   `json:"Maintenance"`
	Pending       bool   `json:"Pending"`
	Unclean       bool   `json:"Unclean"`
	Shutdown      bool   `json:"Shutdown"`
	DC            bool   `json:"DC"`
	Type          string `json:"Type"`
}

// CrmResource is one running (or stopped) resource instance.
type CrmResource struct {
	ID             string `json:"Id"`
	Agent          string `json:"Agent"`
	Role           string `json:"Role"`
	Active         bool   `json:"Active"`
	Orphaned       bool   `json:"Orphaned"`
	Blocked        bool   `json:"Blocked"`
	Managed        bool   `json:"Managed"`
	Failed         bool   `json:"Failed"`
	FailureIgnored bool   `json:"FailureIgnored"`
	NodesRunningOn int    `json:"NodesRunningOn"`
	Node           *struct {
		Name string `json:"Name"`
		ID   string `json:"Id"`
	} `json:"Node"`
}

// NodeName is the node the resource runs on, "" when stopped.
func (r CrmResource) NodeName() string {
	if r.Node == nil {
		return ""
	}
	return r.Node.Name
}

// CrmClone is a clone's instances; Resources is null for clones of groups.
type CrmClone struct {
	ID         string        `json:"Id"`
	MultiState bool          `json:"MultiState"`
	Resources  []CrmResource `json:"Resources"`
}

// CrmGroup is a group's resources.
type CrmGroup struct {
	ID        string        `json:"Id"`
	Resources []CrmResource `json:"Resources"`
}

// SBD is the STONITH block device configuration and the devices' state.
type SBD struct {
	Devices []SBDDevice `json:"Devices"`
	// Config is /etc/sysconfig/sbd (SBD_DEVICE, SBD_WATCHDOG_DEV, ...).
	Config map[string]string `json:"Config"`
}

// SBDDevice is one SBD disk.
type SBDDevice struct {
	Device string `json:"Device"`
	Status string `json:"Status"`
}

// DecodeHACluster decodes an ha_cluster_discovery payload. A null payload
// (the host is not clustered) decodes to nil without error. Errors name
// the offending field.
func DecodeHACluster(raw []byte) (*HACluster, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var p HACluster
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, decodeError(err)
	}
	if p.ID == "" {
		return nil, &FieldError{Name: "Id", Err: errors.New("Id (the cluster id) is required; send a null payload for a host that is not clustered")}
	}
	if p.HostOnline() {
		// An online member describes the cluster; without these the
		// discovery says nothing a control plane can use.
		if p.Cib == nil {
			return nil, &FieldError{Name: "Cib", Err: errors.New("Cib is required when the host is online in the cluster (Online false for a stopped member)")}
		}
		if p.Crmmon == nil {
			return nil, &FieldError{Name: "Crmmon", Err: errors.New("Crmmon is required when the host is online in the cluster (Online false for a stopped member)")}
		}
	}
	return &p, nil
}

// HostOnline reports whether the agent says its host is online in the
// cluster. Agents that do not send Online are online: they only send a
// cluster discovery while pacemaker runs.
func (p *HACluster) HostOnline() bool {
	return p.Online == nil || *p.Online
}

// value is the value of the nvpair name, "" when absent.
func value(nvs []NameValue, name string) string {
	for _, nv := range nvs {
		if nv.Name == name {
			return nv.Value
		}
	}
	return ""
}
