// Package agent is the fleetstream host agent: it discovers facts about the
// machine it runs on and publishes them to the ingest endpoint with the
// Trento agent's wire contract (POST /api/v1/collect expecting 202, POST
// /api/v1/hosts/{agent_id}/heartbeat expecting 204), so the same ingest
// serves both agents.
//
// Each discovery is a Discoverer in its own file, registered by type from
// that file's init (host.go: host_discovery). An Agent builds every
// registered discoverer, runs them all every DiscoveryInterval and sends a
// heartbeat every HeartbeatInterval. Every discovery is sent every time, as
// the Trento agent does: the control plane recognises an unchanged payload
// by its fingerprint, so an agent keeps no state and a lost request costs
// nothing. A discovery that fails on the machine is not sent that round.
//
// Discoverers read the machine from a file root ("/" by default), so the
// agent can run in a container with the host's root mounted elsewhere and
// tests can point it at a fake tree.
//
// Not done here, deliberately: on-demand fact gathering (the Trento agent
// does it over AMQP; fleetstream will send requests through Kafka),
// systemd unit states (need D-Bus), Prometheus exporter targets.
package agent
