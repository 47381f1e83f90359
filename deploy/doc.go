// Package deploy holds how fleetstream runs for real: the container image
// (Dockerfile), docker-compose.yml, the Helm chart and its rendered
// manifests, the Grafana dashboard and Prometheus configuration. It has no
// code of its own; its tests parse and schema-check every file, render the
// chart, and check each environment variable against the flags of the role
// that reads it and each dashboard query against the metrics the code
// registers. See README.md.
package deploy
