package payload

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// SAP system types, as the Trento agent numbers them (SAPSystem.Type).
const (
	SAPSystemUnknown     = 0
	SAPSystemDatabase    = 1
	SAPSystemApplication = 2
	SAPSystemDiagnostics = 3
)

// SAPSystem is one entry of a sap_system_discovery payload: one SAP
// system (a HANA database, an application system or a diagnostics agent)
// as one host sees it, with the instances of it that run on that host.
// Fields fleetstream does not use are left out; unknown fields are
// ignored.
type SAPSystem struct {
	// ID is the agent's id of the system, derived from files the system's
	// hosts share (HANA's landscape, the application's SSFS data), so the
	// hosts of one system report the same one.
	ID   string `json:"Id"`
	SID  string `json:"SID"`
	Type int    `json:"Type"`
	// DBAddress is the database host of an application system's profile,
	// resolved to an address by the agent.
	DBAddress string `json:"DBAddress"`
	// Tenant is sent by newer agents; older ones leave it to the profile.
	Tenant string `json:"Tenant"`
	// Profile is the system's DEFAULT.PFL (application systems).
	Profile map[string]any `json:"Profile"`
	// Databases are the tenant databases of a HANA system.
	Databases []SAPDatabase `json:"Databases"`
	Instances []SAPInstance `json:"Instances"`
}

// SAPDatabase is one tenant database of a HANA system.
type SAPDatabase struct {
	Database  string `json:"Database"`
	Container string `json:"Container"`
	Host      string `json:"Host"`
	SQLPort   string `json:"SqlPort"`
	Active    string `json:"Active"`
}

// SAPInstance is one instance of the system on the reporting host.
type SAPInstance struct {
	// Host is the reporting host's name; Name the instance's, e.g. "D02",
	// "ASCS00", "HDB10": the last two digits are its number.
	Host       string      `json:"Host"`
	Name       string      `json:"Name"`
	Type       int         `json:"Type"`
	SAPControl *SAPControl `json:"SAPControl"`
	// SystemReplication is HANA's `hdbnsutil -sr_state` / landscape
	// output as flat keys ("local_site_id", "site/1/REPLICATION_MODE",
	// "overall_replication_status", ...); null for application instances.
	SystemReplication map[string]any `json:"SystemReplication"`
	HdbnsutilSRstate  map[string]any `json:"HdbnsutilSRstate"`
	HostConfiguration map[string]any `json:"HostConfiguration"`
}

// SAPControl is what sapcontrol reports on the instance: every instance of
// the system (GetSystemInstanceList), this instance's processes and
// properties.
type SAPControl struct {
	Instances  []SAPControlInstance `json:"Instances"`
	Processes  []SAPControlProcess  `json:"Processes"`
	Properties []SAPControlProperty `json:"Properties"`
}

// SAPControlInstance is one entry of GetSystemInstanceList.
type SAPControlInstance struct {
	Features   string `json:"features"`
	Hostname   string `json:"hostname"`
	HTTPPort   int    `json:"httpPort"`
	HTTPSPort  int    `json:"httpsPort"`
	DispStatus string `json:"dispstatus"`
	InstanceNr int    `json:"instanceNr"`
	// CurrentInstance marks the instance sapcontrol was asked about; some
	// agents leave it out (nil).
	CurrentInstance *bool  `json:"currentInstance"`
	StartPriority   string `json:"startPriority"`
}

// SAPControlProcess is one entry of GetProcessList.
type SAPControlProcess struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	DispStatus  string `json:"dispstatus"`
	TextStatus  string `json:"textstatus"`
	PID         int    `json:"pid"`
}

// SAPControlProperty is one entry of GetInstanceProperties.
type SAPControlProperty struct {
	Property     string `json:"property"`
	PropertyType string `json:"propertytype"`
	Value        string `json:"value"`
}

// DecodeSAPSystems decodes a sap_system_discovery payload: a list of SAP
// systems, empty when the host runs none. Errors name the offending field
// with its position, e.g. "[0].Instances[1].Name".
func DecodeSAPSystems(payload []byte) ([]SAPSystem, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, decodeError(err)
	}
	systems := make([]SAPSystem, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &systems[i]); err != nil {
			return nil, prefixField(fmt.Sprintf("[%d].", i), decodeError(err))
		}
		if err := systems[i].validate(); err != nil {
			return nil, prefixField(fmt.Sprintf("[%d].", i), err)
		}
	}
	return systems, nil
}

func (s *SAPSystem) validate() error {
	if s.Type < SAPSystemUnknown || s.Type > SAPSystemDiagnostics {
		return &FieldError{Name: "Type", Err: fmt.Errorf("Type must be 0 (unknown), 1 (database), 2 (application) or 3 (diagnostics), got %d", s.Type)}
	}
	if len(s.Instances) == 0 {
		return nil // nothing to register: the SID does not matter
	}
	if strings.TrimSpace(s.SID) == "" {
		return &FieldError{Name: "SID", Err: errors.New("SID is required for a system with instances")}
	}
	for j := range s.Instances {
		if _, ok := s.Instances[j].Number(); !ok {
			name := fmt.Sprintf("Instances[%d].Name", j)
			return &FieldError{Name: name, Err: fmt.Errorf("%s %q does not end in a two-digit instance number, and sapcontrol names no current instance", name, s.Instances[j].Name)}
		}
	}
	return nil
}

// ProfileValue is the profile parameter name as a string ("" if absent).
func (s *SAPSystem) ProfileValue(name string) string {
	switch v := s.Profile[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// DatabaseTenant is the name of the database tenant an application system
// runs on, upper case: Tenant, else the profile's dbs/hdb/dbname (ABAP),
// else j2ee/dbname (Java).
func (s *SAPSystem) DatabaseTenant() string {
	for _, t := range []string{s.Tenant, s.ProfileValue("dbs/hdb/dbname"), s.ProfileValue("j2ee/dbname")} {
		if t = strings.TrimSpace(t); t != "" {
			return strings.ToUpper(t)
		}
	}
	return ""
}

// DatabaseAddress is the database host of an application system: the
// agent's resolved DBAddress, else the profile's SAPDBHOST.
func (s *SAPSystem) DatabaseAddress() string {
	if s.DBAddress != "" {
		return s.DBAddress
	}
	return s.ProfileValue("SAPDBHOST")
}

// Tenants are the names of a database system's tenants, upper case,
// sorted and distinct, its SID included (the tenant of single-container
// systems and the default of multi-tenant ones).
func (s *SAPSystem) Tenants() []string {
	out := []string{strings.ToUpper(s.SID)}
	for _, d := range s.Databases {
		if n := strings.TrimSpace(d.Database); n != "" {
			out = append(out, strings.ToUpper(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Number is the instance number, two digits: the last two characters of
// Name ("HDB10" → "10"), else the current instance's number as sapcontrol
// reports it. ok is false when neither is known.
func (i *SAPInstance) Number() (string, bool) {
	if n := len(i.Name); n >= 2 {
		if _, err := strconv.Atoi(i.Name[n-2:]); err == nil {
			return i.Name[n-2:], true
		}
	}
	if c := i.current(); c != nil {
		return fmt.Sprintf("%02d", c.InstanceNr), true
	}
	return "", false
}

// current is sapcontrol's entry of this instance: the one marked current,
// else the one whose number ends Name (agents that leave currentInstance
// out), else nil.
func (i *SAPInstance) current() *SAPControlInstance {
	if i.SAPControl == nil {
		return nil
	}
	for k := range i.SAPControl.Instances {
		if c := i.SAPControl.Instances[k].CurrentInstance; c != nil && *c {
			return &i.SAPControl.Instances[k]
		}
	}
	if n := len(i.Name); n >= 2 {
		if nr, err := strconv.Atoi(i.Name[n-2:]); err == nil {
			for k := range i.SAPControl.Instances {
				if i.SAPControl.Instances[k].InstanceNr == nr {
					return &i.SAPControl.Instances[k]
				}
			}
		}
	}
	return nil
}

// Features are sapcontrol's features of the instance, e.g.
// "MESSAGESERVER|ENQUE" or "HDB|HDB_WORKER"; "" when unknown.
func (i *SAPInstance) Features() string {
	if c := i.current(); c != nil {
		return c.Features
	}
	return ""
}

// Hostname is the (virtual) host name sapcontrol reports for the instance.
func (i *SAPInstance) Hostname() string {
	if c := i.current(); c != nil {
		return c.Hostname
	}
	return ""
}

// Status is the instance's sapcontrol colour without its prefix: "GREEN",
// "YELLOW", "RED", "GRAY", or "" when unknown.
func (i *SAPInstance) Status() string {
	if c := i.current(); c != nil {
		return strings.TrimPrefix(c.DispStatus, "SAPControl-")
	}
	return ""
}

// SystemReplicationInfo is a HANA instance's system replication as the
// instance's own site sees it.
type SystemReplicationInfo struct {
	// Role is "Primary", "Secondary", or "" when the instance does not
	// replicate.
	Role string
	// Status is the overall replication status the primary reports
	// ("ACTIVE", "ERROR", ...); "" on a secondary.
	Status string
	// Site is the local site's name and Mode its replication mode
	// ("PRIMARY", "SYNC", "ASYNC", ...).
	Site, Mode string
}

// Replication reads the instance's system replication: the local
// site (local_site_id, "0" when not replicating) and its
// site/<id>/REPLICATION_MODE, PRIMARY for the primary.
func (i *SAPInstance) Replication() SystemReplicationInfo {
	sr := i.SystemReplication
	site := srString(sr, "local_site_id")
	if site == "" || site == "0" {
		return SystemReplicationInfo{}
	}
	info := SystemReplicationInfo{
		Mode: srString(sr, "site/"+site+"/REPLICATION_MODE"),
		Site: srString(sr, "site/"+site+"/SITE_NAME"),
	}
	switch info.Mode {
	case "":
	case "PRIMARY":
		info.Role = "Primary"
		info.Status = srString(sr, "overall_replication_status")
	default:
		info.Role = "Secondary"
	}
	return info
}

func srString(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
