package database

import (
	"strings"

	"github.com/google/uuid"
)

// AggregateType is the aggregate_type of the database's events.
const AggregateType = "database"

// idNamespace is the UUIDv5 namespace of database ids:
// UUIDv5(URL namespace, "urn:fleetstream:database"). Ids are a contract
// (see database.proto): the namespace and names never change.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:database"))

// ID is the id of the database the agent reports as system systemID
// (payload "Id") with SID sid: UUIDv5 of systemID, or of "sid/<SID>" when
// the agent reports no id. The agent derives systemID from the HANA
// landscape, which system replication copies, so both sites of a
// replicated database compute the same id.
func ID(systemID, sid string) string {
	name := strings.TrimSpace(systemID)
	if name == "" || name == "-" {
		name = "sid/" + strings.ToUpper(strings.TrimSpace(sid))
	}
	return uuid.NewSHA1(idNamespace, []byte(name)).String()
}
