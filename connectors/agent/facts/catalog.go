package facts

import (
	"fmt"
	"os"
	"slices"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// HostFacts returns the facts an agent gathers for continuous evaluation:
// those of every check of checks whose target type is "host", and of the
// "cluster" checks when clusterNode (a cluster check is evaluated on the
// facts of all its nodes), that r gathers. The agent does not decide which
// checks apply (the control plane knows the host's cluster type, provider
// and the like); it gathers what they could need.
//
// Left out, and described in skipped: facts derived from discoveries (the
// control plane has them), facts of gatherers r lacks, and facts whose
// argument names the target's env (${env.sid}), which only the control
// plane can fill in: those are gathered on request.
func HostFacts(checks []*catalog.Check, r *Registry, clusterNode bool) (facts []*fleetv1.FactRequest, skipped []string) {
	names := r.Names()
	for _, c := range checks {
		if tt := c.TargetType(); tt != "host" && !(tt == "cluster" && clusterNode) {
			continue
		}
		for _, f := range c.Facts {
			if _, found := slices.BinarySearch(names, f.Gatherer); !found {
				continue
			}
			arg, err := f.ResolveArgument(nil)
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("check %s: %v", c.ID, err))
				continue
			}
			facts = append(facts, &fleetv1.FactRequest{CheckId: c.ID, Name: f.Name, Gatherer: f.Gatherer, Argument: arg})
		}
	}
	return facts, skipped
}

// IsClusterNode reports whether the host under root is a corosync cluster
// node: it has /etc/corosync/corosync.conf.
func IsClusterNode(root string) bool {
	_, err := os.Stat(hostPath(root, corosyncConfPath))
	return err == nil
}
