// Package vsphere collects a vCenter's inventory with govmomi:
// datacenters, clusters, hosts, VMs, datastores and networks, with their
// links (vm runs_on_host, uses_datastore, on_network; host in_cluster;
// cluster, host, datastore and network in_datacenter).
//
// The account is the vCenter's instance UUID and a region is a datacenter
// (by name). Each kind is read with one container view over the
// datacenter and the property collector, in pages of PageSize objects, so
// a large inventory costs a few round trips and no per-object calls.
// Every task logs in and out: a task is coarse (one kind of one
// datacenter) and a session that outlives it could expire under it.
//
// Not done here, deliberately: resource pools, folders, vApps, tags from
// the vAPI (REST) endpoint, and property collector updates (WaitForUpdates)
// for change streams.
package vsphere
