package payload

import (
	"slices"
	"strings"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Cluster types.
const (
	ClusterTypeHanaScaleUp  = "hana_scale_up"
	ClusterTypeHanaScaleOut = "hana_scale_out"
	ClusterTypeAscsErs      = "ascs_ers"
	ClusterTypeHanaAscsErs  = "hana_ascs_ers"
	ClusterTypeUnknown      = "unknown"
)

// HANA architectures: SAPHanaSR (classic) or SAPHanaSR-angi.
const (
	ArchitectureClassic = "classic"
	ArchitectureAngi    = "angi"
)

// Health values.
const (
	HealthUnknown  = "unknown"
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// HANA node and site states.
const (
	hanaPrimary   = "Primary"
	hanaSecondary = "Secondary"
	hanaFailed    = "Failed"
	stateUnknown  = "Unknown"
)

// Fencing types that are not a stonith agent.
const (
	FencingUnknown      = "Unknown"
	FencingDisklessSBD  = "Diskless SBD"
	defaultSRMode       = "sync"      // what the resource agents use when unset
	defaultOperatingSRM = "logreplay" // idem
)

// Details derives what the discovery tells about the whole cluster. It is
// meaningful for the designated controller's discovery; nil for an offline
// member, which sends no CIB.
func (p *HACluster) Details() *fleetv1.ClusterDetails {
	if p.Cib == nil || p.Crmmon == nil {
		return nil
	}
	c := newCluster(p)
	d := &fleetv1.ClusterDetails{
		Type:             c.typ,
		Architecture:     c.architecture,
		HanaSids:         c.hanaSIDs,
		SapInstanceSids:  c.sapInstanceSIDs(),
		CostOptimized:    c.costOptimized(),
		Provider:         p.Provider,
		FencingType:      c.fencingType(),
		SbdDevices:       c.sbdDevices(),
		MaintenanceMode:  c.property("maintenance-mode") == "true",
		ResourcesNumber:  int32(p.Crmmon.Summary.Resources.Number),
		HostsNumber:      int32(p.Crmmon.Summary.Nodes.Number),
		CibLastWritten:   p.Crmmon.Summary.LastChange.Time,
		State:            p.State,
		StoppedResources: c.stoppedResources(),
	}
	if d.Provider == "" {
		d.Provider = "unknown"
	}
	if c.hanaSID != "" {
		d.SystemReplication = c.systemReplication()
	}
	d.AscsErsSystems = c.ascsErsSystems()
	d.Nodes = c.nodes(d.GetSystemReplication())
	return d
}

// DiscoveredHealth derives the sub-healths a cluster's details show:
// replication (HANA clusters), distribution (ASCS/ERS clusters) and SBD
// (clusters fenced by SBD disks). A sub-health a cluster has no subject
// for is unknown: not evaluated.
func DiscoveredHealth(d *fleetv1.ClusterDetails) *fleetv1.ClusterDiscoveredHealth {
	h := &fleetv1.ClusterDiscoveredHealth{Replication: HealthUnknown, Distribution: HealthUnknown, Sbd: HealthUnknown}
	if d == nil {
		return h
	}
	if sr := d.GetSystemReplication(); sr != nil {
		h.Replication = replicationHealth(sr)
	}
	if systems := d.GetAscsErsSystems(); len(systems) > 0 && (d.GetType() == ClusterTypeAscsErs || d.GetType() == ClusterTypeHanaAscsErs) {
		h.Distribution = HealthPassing
		for _, s := range systems {
			if !s.GetDistributed() {
				h.Distribution = HealthCritical
			}
		}
	}
	if devices := d.GetSbdDevices(); len(devices) > 0 {
		h.Sbd = HealthPassing
		for _, dev := range devices {
			if dev.GetStatus() != "healthy" {
				h.Sbd = HealthCritical
			}
		}
	}
	return h
}

// replicationHealth: a secondary in sync (SOK) with a good landscape
// status passes; one catching up (SWAIT) or whose landscape warns is a
// warning; a failed one (SFAIL), a degraded landscape or no secondary in
// sync at all is critical: the database is not protected.
func replicationHealth(sr *fleetv1.SystemReplication) string {
	switch sr.GetSecondarySyncState() {
	case "SOK":
		switch sr.GetSrHealthState() {
		case "4", "3", stateUnknown, "":
			return HealthPassing
		case "2":
			return HealthWarning
		default:
			return HealthCritical
		}
	case "SWAIT":
		return HealthWarning
	default:
		return HealthCritical
	}
}

// cluster is a discovery with its resources indexed.
type cluster struct {
	p            *HACluster
	primitives   []CibPrimitive
	running      []CrmResource
	typ          string
	architecture string
	hanaSIDs     []string
	hanaSID      string // the first of hanaSIDs, lower-cased for attribute names
	instances    []sapInstance
}

// sapInstance is a SAPInstance resource.
type sapInstance struct {
	primitive CibPrimitive
	sid       string
	role      string // "ascs", "ers" or "" (a database or application server)
	group     *CibGroup
}

func newCluster(p *HACluster) *cluster {
	c := &cluster{p: p}
	r := p.Cib.Configuration.Resources
	c.primitives = append(c.primitives, r.Primitives...)
	for _, cl := range slices.Concat(r.Masters, r.Clones) {
		if cl.Primitive != nil && cl.Primitive.Type != "" {
			c.primitives = append(c.primitives, *cl.Primitive)
		}
	}
	for i := range r.Groups {
		g := &r.Groups[i]
		c.primitives = append(c.primitives, g.Primitives...)
		for _, prim := range g.Primitives {
			if prim.Type == "SAPInstance" {
				c.addInstance(prim, g)
			}
		}
	}
	for _, prim := range r.Primitives {
		if prim.Type == "SAPInstance" {
			c.addInstance(prim, nil)
		}
	}
	m := p.Crmmon
	c.running = append(c.running, m.Resources...)
	for _, cl := range m.Clones {
		c.running = append(c.running, cl.Resources...)
	}
	for _, g := range m.Groups {
		c.running = append(c.running, g.Resources...)
	}
	for _, prim := range c.primitives {
		if prim.Type == "SAPHanaTopology" {
			if sid := prim.Attribute("SID"); sid != "" && !slices.Contains(c.hanaSIDs, sid) {
				c.hanaSIDs = append(c.hanaSIDs, sid)
			}
		}
	}
	slices.Sort(c.hanaSIDs)
	if len(c.hanaSIDs) > 0 {
		c.hanaSID = strings.ToLower(c.hanaSIDs[0])
	}
	c.typ, c.architecture = c.clusterType()
	return c
}

func (c *cluster) addInstance(prim CibPrimitive, g *CibGroup) {
	// InstanceName is <SID>_<instance>_<virtual host>, e.g. NWP_ASCS00_sapnwpas.
	parts := strings.Split(prim.Attribute("InstanceName"), "_")
	if len(parts) < 2 || parts[0] == "" {
		return
	}
	in := sapInstance{primitive: prim, sid: parts[0], group: g}
	switch {
	case strings.EqualFold(prim.Attribute("IS_ERS"), "true") || strings.HasPrefix(parts[1], "ERS"):
		in.role = "ers"
	case strings.HasPrefix(parts[1], "ASCS") || strings.HasPrefix(parts[1], "SCS"):
		in.role = "ascs"
	}
	c.instances = append(c.instances, in)
}

func (c *cluster) has(resourceType string) bool {
	return slices.ContainsFunc(c.primitives, func(p CibPrimitive) bool { return p.Type == resourceType })
}

// clusterType reads the type from the configured resources: SAPHanaTopology
// with SAPHana (classic scale-up) or SAPHanaController (classic
// scale-out; angi either, as its hana_<sid>_glob_topology says), and
// SAPInstance ASCS/ERS pairs. A SID with an ASCS but no ERS (or the
// reverse) is no ASCS/ERS cluster.
func (c *cluster) clusterType() (typ, architecture string) {
	hana := ""
	if c.has("SAPHanaTopology") {
		topology := c.globalProperty("glob_topology")
		switch {
		case topology != "" || c.has("SAPHanaFilesystem"):
			architecture = ArchitectureAngi
			hana = ClusterTypeHanaScaleUp
			if topology == "ScaleOut" {
				hana = ClusterTypeHanaScaleOut
			}
		case c.has("SAPHana"):
			architecture, hana = ArchitectureClassic, ClusterTypeHanaScaleUp
		case c.has("SAPHanaController"):
			architecture, hana = ArchitectureClassic, ClusterTypeHanaScaleOut
		}
	}
	ascsErs := c.ascsErsSIDs() != nil
	switch {
	case hana != "" && ascsErs:
		return ClusterTypeHanaAscsErs, architecture
	case hana != "":
		return hana, architecture
	case ascsErs:
		return ClusterTypeAscsErs, ""
	}
	return ClusterTypeUnknown, ""
}

// ascsErsSIDs are the SIDs with an ASCS and an ERS instance, sorted; nil
// when there are none or some SID lacks its pair.
func (c *cluster) ascsErsSIDs() []string {
	roles := map[string]map[string]bool{}
	for _, in := range c.instances {
		if in.role == "" {
			continue
		}
		if roles[in.sid] == nil {
			roles[in.sid] = map[string]bool{}
		}
		roles[in.sid][in.role] = true
	}
	var sids []string
	for sid, r := range roles {
		if !r["ascs"] || !r["ers"] {
			return nil
		}
		sids = append(sids, sid)
	}
	slices.Sort(sids)
	return sids
}

func (c *cluster) sapInstanceSIDs() []string {
	var sids []string
	for _, in := range c.instances {
		if !slices.Contains(sids, in.sid) {
			sids = append(sids, in.sid)
		}
	}
	slices.Sort(sids)
	return sids
}

// costOptimized: a HANA scale-up cluster that also manages a database
// instance (SAPInstance, neither ASCS nor ERS) of another system, which
// runs on the secondary and yields to a takeover.
func (c *cluster) costOptimized() bool {
	if c.typ != ClusterTypeHanaScaleUp {
		return false
	}
	return slices.ContainsFunc(c.instances, func(in sapInstance) bool {
		return in.role == "" && !slices.Contains(c.hanaSIDs, in.sid)
	})
}

// property is the cluster property name, "" when absent.
func (c *cluster) property(name string) string {
	return value(c.p.Cib.Configuration.CrmConfig.ClusterProperties, name)
}

// globalProperty is a HANA cluster property of any SID ending in suffix
// (hana_<sid>_<suffix>).
func (c *cluster) globalProperty(suffix string) string {
	for _, nv := range c.p.Cib.Configuration.CrmConfig.ClusterProperties {
		if strings.HasPrefix(nv.Name, "hana_") && strings.HasSuffix(nv.Name, "_"+suffix) {
			return nv.Value
		}
	}
	return ""
}

// hanaProperty is the cluster property hana_<sid>_<name>, or def.
func (c *cluster) hanaProperty(name, def string) string {
	if v := c.property("hana_" + c.hanaSID + "_" + name); v != "" {
		return v
	}
	return def
}

func (c *cluster) fencingType() string {
	for _, r := range c.running {
		if t, ok := strings.CutPrefix(r.Agent, "stonith:"); ok {
			return t
		}
	}
	if sbd := c.p.SBD; sbd != nil {
		if _, ok := sbd.Config["SBD_DEVICE"]; ok {
			return FencingUnknown
		}
		if _, ok := sbd.Config["SBD_WATCHDOG_DEV"]; ok && len(sbd.Devices) == 0 {
			return FencingDisklessSBD
		}
	}
	return FencingUnknown
}

func (c *cluster) sbdDevices() []*fleetv1.SbdDevice {
	if c.p.SBD == nil {
		return nil
	}
	var out []*fleetv1.SbdDevice
	for _, d := range c.p.SBD.Devices {
		out = append(out, &fleetv1.SbdDevice{Device: d.Device, Status: d.Status})
	}
	return out
}

func (c *cluster) stoppedResources() []*fleetv1.ClusterResource {
	var out []*fleetv1.ClusterResource
	for _, r := range c.running {
		if r.NodesRunningOn == 0 && !r.Active {
			out = append(out, &fleetv1.ClusterResource{Id: r.ID, Type: r.Agent, Role: r.Role, Status: resourceStatus(r), Managed: r.Managed, FailCount: -1})
		}
	}
	return out
}

func resourceStatus(r CrmResource) string {
	switch {
	case r.Active:
		return "Active"
	case r.Blocked:
		return "Blocked"
	case r.Failed:
		return "Failed"
	case r.FailureIgnored:
		return "FailureIgnored"
	case r.Orphaned:
		return "Orphaned"
	}
	return ""
}

// nodeAttributes are crm_mon's attributes of node name.
func (c *cluster) nodeAttributes(name string) map[string]string {
	out := map[string]string{}
	for _, n := range c.p.Crmmon.NodeAttributes.Nodes {
		if n.Name == name {
			for _, a := range n.Attributes {
				out[a.Name] = a.Value
			}
		}
	}
	return out
}

func (c *cluster) failCount(node, resource string) int64 {
	for _, n := range c.p.Crmmon.NodeHistory.Nodes {
		if n.Name != node {
			continue
		}
		for _, h := range n.ResourceHistory {
			if h.Name == resource {
				return h.FailCount
			}
		}
	}
	return -1
}

func nodeStatus(n CrmNode) string {
	switch {
	case !n.Online:
		return "Offline"
	case n.Unclean:
		return "Unclean"
	case n.Standby:
		return "Standby"
	case n.Maintenance:
		return "Maintenance"
	case n.Shutdown:
		return "Shutdown"
	case n.Pending:
		return "Pending"
	case n.StandbyOnFail:
		return "Standby on fail"
	}
	return "Online"
}

// virtualIPType is the resource agent that moves the cluster's virtual IP
// on provider.
func virtualIPType(provider string) string {
	if provider == "aws" {
		return "aws-vpc-move-ip"
	}
	return "IPaddr2"
}

func (c *cluster) primitive(id string) (CibPrimitive, bool) {
	i := slices.IndexFunc(c.primitives, func(p CibPrimitive) bool { return p.ID == id })
	if i < 0 {
		return CibPrimitive{}, false
	}
	return c.primitives[i], true
}

func (c *cluster) nodes(sr *fleetv1.SystemReplication) []*fleetv1.ClusterNode {
	var out []*fleetv1.ClusterNode
	for _, n := range c.p.Crmmon.Nodes {
		node := &fleetv1.ClusterNode{
			Name:       n.Name,
			Status:     nodeStatus(n),
			Online:     n.Online,
			Dc:         n.DC,
			Attributes: c.nodeAttributes(n.Name),
		}
		for _, r := range c.running {
			if r.NodeName() != n.Name {
				continue
			}
			node.Resources = append(node.Resources, &fleetv1.ClusterResource{
				Id: r.ID, Type: r.Agent, Role: r.Role, Status: resourceStatus(r), Managed: r.Managed,
				FailCount: c.failCount(n.Name, r.ID), Node: n.Name,
			})
			prim, ok := c.primitive(r.ID)
			if !ok {
				continue
			}
			if node.VirtualIp == "" && prim.Type == virtualIPType(c.p.Provider) {
				node.VirtualIp = prim.Attribute("ip")
			}
			if i := slices.IndexFunc(c.instances, func(in sapInstance) bool { return in.primitive.ID == r.ID }); i >= 0 && c.instances[i].role != "" {
				node.Roles = append(node.Roles, c.instances[i].role)
			}
		}
		if c.hanaSID != "" {
			node.Site = node.Attributes["hana_"+c.hanaSID+"_site"]
			node.HanaStatus = stateUnknown
			if c.classicScaleUp() {
				node.HanaStatus = c.scaleUpNodeStatus(node.Attributes)
			} else {
				for _, s := range sr.GetSites() {
					if s.GetName() == node.Site {
						node.HanaStatus = s.GetState()
					}
				}
			}
		}
		out = append(out, node)
	}
	return out
}

func (c *cluster) classicScaleUp() bool {
	return c.architecture == ArchitectureClassic && (c.typ == ClusterTypeHanaScaleUp || c.typ == ClusterTypeHanaAscsErs && c.has("SAPHana"))
}

// hanaStatus combines a system replication role (P, S) and a sync state.
func hanaStatus(role, syncState string) string {
	switch {
	case role == "" || syncState == "" || syncState == stateUnknown:
		return stateUnknown
	case role == "P" && syncState == "PRIM":
		return hanaPrimary
	case role == "S" && syncState == "SOK":
		return hanaSecondary
	case role == "P" || role == "S":
		return hanaFailed // a takeover under way, or a secondary out of sync
	}
	return stateUnknown
}

// scaleUpNodeStatus reads hana_<sid>_roles ("4:P:master1:...") and
// hana_<sid>_sync_state of a classic scale-up node.
func (c *cluster) scaleUpNodeStatus(attrs map[string]string) string {
	roles := strings.Split(attrs["hana_"+c.hanaSID+"_roles"], ":")
	role := ""
	if len(roles) > 1 {
		role = roles[1]
	}
	return hanaStatus(role, attrs["hana_"+c.hanaSID+"_sync_state"])
}

func (c *cluster) systemReplication() *fleetv1.SystemReplication {
	if c.classicScaleUp() {
		return c.scaleUpReplication()
	}
	sr := &fleetv1.SystemReplication{PrimarySite: c.hanaProperty("glob_prim", stateUnknown)}
	sr.SecondarySite = c.secondarySite(sr.PrimarySite)
	if c.architecture == ArchitectureAngi {
		sr.Mode = c.hanaProperty("site_srMode_"+sr.PrimarySite, defaultSRMode)
		sr.OperationMode = c.hanaProperty("site_opMode_"+sr.PrimarySite, defaultOperatingSRM)
		sr.SecondarySyncState = c.hanaProperty("site_srPoll_"+sr.SecondarySite, stateUnknown)
	} else {
		sr.Mode = c.hanaProperty("glob_srmode", defaultSRMode)
		sr.OperationMode = c.hanaProperty("glob_op_mode", defaultOperatingSRM)
		sr.SecondarySyncState = c.hanaProperty("glob_sync_state", stateUnknown)
	}
	sr.SrHealthState = c.hanaProperty("site_lss_"+sr.SecondarySite, stateUnknown)
	for _, site := range []string{sr.PrimarySite, sr.SecondarySite} {
		sr.Sites = append(sr.Sites, &fleetv1.HanaSite{
			Name:          site,
			State:         c.siteState(site, sr),
			SrHealthState: c.hanaProperty("site_lss_"+site, stateUnknown),
		})
	}
	return sr
}

// secondarySite is hana_<sid>_glob_sec or, without it (no multi-target
// hook, or "-" after a takeover), the site with a landscape status that is
// not the primary.
func (c *cluster) secondarySite(primary string) string {
	if sec := c.hanaProperty("glob_sec", ""); sec != "" && sec != "-" {
		return sec
	}
	prefix := "hana_" + c.hanaSID + "_site_lss_"
	for _, nv := range c.p.Cib.Configuration.CrmConfig.ClusterProperties {
		if site, ok := strings.CutPrefix(nv.Name, prefix); ok && site != primary {
			return site
		}
	}
	return stateUnknown
}

// siteState of a scale-out or angi site: its role (site_srr_<site>) and
// its sync state (angi: site_srPoll_<site>; classic: the multi-target hook's
// site_srHook_<site>, else glob_sync_state for the secondary).
func (c *cluster) siteState(site string, sr *fleetv1.SystemReplication) string {
	role := c.hanaProperty("site_srr_"+site, "")
	var sync string
	switch {
	case c.architecture == ArchitectureAngi:
		sync = c.hanaProperty("site_srPoll_"+site, stateUnknown)
	case c.hanaProperty("site_srHook_"+site, "") != "":
		sync = c.hanaProperty("site_srHook_"+site, "")
	case site == sr.GetSecondarySite():
		sync = sr.GetSecondarySyncState()
	default:
		sync = "PRIM"
	}
	return hanaStatus(role, sync)
}

// scaleUpReplication reads a classic scale-up cluster's replication from
// its nodes' attributes: the secondary is the node whose status is
// Secondary or Failed (hana_<sid>_roles "4:S:..."), its sync state
// hana_<sid>_sync_state and its landscape status the roles' first field.
func (c *cluster) scaleUpReplication() *fleetv1.SystemReplication {
	sr := &fleetv1.SystemReplication{SecondarySyncState: stateUnknown, SrHealthState: stateUnknown, PrimarySite: stateUnknown, SecondarySite: stateUnknown}
	prefix := "hana_" + c.hanaSID + "_"
	for _, n := range c.p.Crmmon.Nodes {
		attrs := c.nodeAttributes(n.Name)
		if sr.Mode == "" {
			sr.Mode = attrs[prefix+"srmode"]
			sr.OperationMode = attrs[prefix+"op_mode"]
		}
		site := attrs[prefix+"site"]
		if site == "" {
			continue
		}
		status := c.scaleUpNodeStatus(attrs)
		lss := strings.Split(attrs[prefix+"roles"], ":")[0]
		sr.Sites = append(sr.Sites, &fleetv1.HanaSite{Name: site, State: status, SrHealthState: lss})
		switch {
		case status == hanaPrimary && sr.PrimarySite == stateUnknown:
			sr.PrimarySite = site
		case (status == hanaSecondary || status == hanaFailed) && sr.SecondarySite == stateUnknown:
			sr.SecondarySite = site
			sr.SecondarySyncState = attrs[prefix+"sync_state"]
			sr.SrHealthState = lss
		}
	}
	return sr
}

// ascsErsSystems describes each ASCS/ERS pair: whether its instance
// directories are Filesystem resources and whether ASCS and ERS run on two
// different clean nodes.
func (c *cluster) ascsErsSystems() []*fleetv1.AscsErsSystem {
	var out []*fleetv1.AscsErsSystem
	for _, sid := range c.ascsErsSIDs() {
		s := &fleetv1.AscsErsSystem{Sid: sid}
		filesystems := 0
		nodes := map[string]bool{}
		for _, in := range c.instances {
			if in.sid != sid || in.role == "" {
				continue
			}
			if in.group != nil {
				for _, prim := range in.group.Primitives {
					if prim.Type == "Filesystem" {
						filesystems++
					}
				}
			}
			for _, r := range c.running {
				if r.ID == in.primitive.ID && r.Role == "Started" && !r.Failed && c.cleanNode(r.NodeName()) {
					nodes[r.NodeName()] = true
				}
			}
		}
		s.FilesystemResourceBased = filesystems == 2
		s.Distributed = len(nodes) == 2
		out = append(out, s)
	}
	return out
}

func (c *cluster) cleanNode(name string) bool {
	return slices.ContainsFunc(c.p.Crmmon.Nodes, func(n CrmNode) bool { return n.Name == name && n.Online && !n.Unclean })
}
