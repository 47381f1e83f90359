// Package collectors runs agentless collectors (cloud and virtualisation
// APIs) as tasks of the collection queue and publishes what they find as
// cloud_resources discoveries.
//
// A provider (connectors/collectors/aws, connectors/collectors/vsphere) is a
// Provider: it names its resource kinds and opens a Collector on one account
// (or vCenter) for one task. Everything else is shared here, so providers do
// not repeat it: the task handlers "<provider>.collect_all", which fans out
// one "<provider>.collect_kind" task per region × kind, and
// "<provider>.collect_kind", which collects one kind in one region and
// publishes it as a complete ResourceCollection in chunks. The install
// package (connectors/collectors/install) picks the set of providers and
// their configuration; the task worker asks it for its handlers.
//
// A collect_kind task always publishes a complete collection, even an empty
// one: that is how downstream processors learn a resource was deleted.
// Errors that retrying cannot fix (bad payload, unknown kind or region,
// rejected credentials, access denied) are tasks.Permanent, so the task is
// dead-lettered at once with the reason; everything else is retried by the
// queue.
//
// Not done here, deliberately: collectors keep no state between tasks (the
// cloud_resource aggregate diffs collections), and they do not watch for
// changes (event streams such as CloudTrail or vCenter's property collector
// updates): collections are scheduled.
package collectors
