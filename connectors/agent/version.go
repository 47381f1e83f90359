package agent

// Version is reported as agent_version. Release builds set it with
// -ldflags "-X github.com/fleetstream/fleetstream/connectors/agent.Version=1.2.3".
var Version = "0.1.0"

// InstallationSource is reported as installation_source. The Trento control
// plane knows "Community", "Suse" and "Unknown"; fleetstream builds are
// community builds.
var InstallationSource = "Community"
