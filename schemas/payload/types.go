// Package payload describes the JSON payloads agents send: the discovery
// types, and decoders that turn a payload into typed contracts with errors
// that name the offending field.
package payload

import "slices"

// Discovery types, as the Trento agent names them, plus heartbeat.
const (
	HostDiscovery         = "host_discovery"
	CloudDiscovery        = "cloud_discovery"
	SubscriptionDiscovery = "subscription_discovery"
	HAClusterDiscovery    = "ha_cluster_discovery"
	SAPSystemDiscovery    = "sap_system_discovery"
	SaptuneDiscovery      = "saptune_discovery"
	Heartbeat             = "heartbeat"
)

// types lists the accepted discovery types, in the order error messages show them.
var types = []string{HostDiscovery, CloudDiscovery, SubscriptionDiscovery, HAClusterDiscovery, SAPSystemDiscovery, SaptuneDiscovery, Heartbeat, CloudResources}

// Known reports whether t is a discovery type fleetstream accepts.
func Known(t string) bool { return slices.Contains(types, t) }

// KnownTypes lists the accepted discovery types.
func KnownTypes() []string { return slices.Clone(types) }

// NullAllowed reports whether a null payload means something for t: a null
// cluster discovery says "this host is not clustered"; a heartbeat has no
// payload at all.
func NullAllowed(t string) bool { return t == HAClusterDiscovery || t == Heartbeat }
