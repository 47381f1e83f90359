package agent

import (
	"fmt"
	"path/filepath"

	"github.com/google/uuid"
)

// agentIDNamespace is the UUID namespace of agent ids: agent id =
// UUIDv5(agentIDNamespace, machine-id). It is the Trento agent's namespace,
// on purpose: a host that moves from the Trento agent to this one keeps its
// agent id, so the control plane sees the same host rather than a new one.
var agentIDNamespace = uuid.MustParse("fb92284e-aa5e-47f6-a883-bf9469e7a0dc")

// MachineAgentID returns the agent id of the machine whose file system root
// is root: the UUIDv5 of its /etc/machine-id.
func MachineAgentID(root string) (string, error) {
	id, err := readLine(root, "etc/machine-id")
	if err != nil {
		return "", fmt.Errorf("agent id from %s: %w (set the agent id in the configuration instead)",
			filepath.Join(root, "etc/machine-id"), err)
	}
	return uuid.NewSHA1(agentIDNamespace, []byte(id)).String(), nil
}
