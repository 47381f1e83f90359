package sapsystem

import (
	"strings"

	"github.com/google/uuid"
)

// AggregateType is the aggregate_type of the SAP system's events.
const AggregateType = "sap_system"

// idNamespace is the UUIDv5 namespace of SAP system ids:
// UUIDv5(URL namespace, "urn:fleetstream:sap_system"). Ids are a contract
// (see sap_system.proto): the namespace and names never change.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:sap_system"))

// ID is the id of the SAP system sid that runs on the database tenant
// tenant: UUIDv5 of "<SID>/<TENANT>", both upper case. Every application
// server of a system reads the same profile, so every agent computes the
// same id, and two systems that share a SID on different databases stay
// apart.
func ID(sid, tenant string) string {
	name := strings.ToUpper(strings.TrimSpace(sid)) + "/" + strings.ToUpper(strings.TrimSpace(tenant))
	return uuid.NewSHA1(idNamespace, []byte(name)).String()
}
