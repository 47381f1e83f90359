package aggregate

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Names, labels and help texts are what dashboards, alerts and
// deploy/grafana_test.go read.
func TestMetricNames(t *testing.T) {
	type metric struct{ help, labels string }
	for _, tt := range []struct {
		typ  string
		more []Outcome
		want map[string]metric
	}{
		{"host", nil, map[string]metric{
			"fleetstream_host_commands_total":       {"Host commands processed, by command and outcome (accepted, rejected, noop).", "command,outcome"},
			"fleetstream_host_events_emitted_total": {"Host events emitted, by event type.", "type"},
			"fleetstream_host_dead_letters_total":   {"Command records sent to the dead-letter topic, by reason.", "reason"},
		}},
		{"cloud_resource", []Outcome{"stale"}, map[string]metric{
			"fleetstream_cloud_resource_commands_total":       {"Cloud resource commands processed, by command and outcome (accepted, rejected, noop, stale).", "command,outcome"},
			"fleetstream_cloud_resource_events_emitted_total": {"Cloud resource events emitted, by event type.", "type"},
			"fleetstream_cloud_resource_dead_letters_total":   {"Command records sent to the dead-letter topic, by reason.", "reason"},
		}},
	} {
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg, tt.typ, tt.more...)
		// A series each, so the registry reports the vectors.
		m.Commands.WithLabelValues("RegisterHost", "accepted").Inc()
		m.Events.WithLabelValues("HostRegistered").Inc()
		m.DeadLetters.WithLabelValues(reasonNotProtobuf).Inc()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(families) != len(tt.want) {
			t.Errorf("%s: %d metrics, want %d", tt.typ, len(families), len(tt.want))
		}
		for _, f := range families {
			var labels string
			for i, l := range f.GetMetric()[0].GetLabel() {
				if i > 0 {
					labels += ","
				}
				labels += l.GetName()
			}
			if got := (metric{f.GetHelp(), labels}); got != tt.want[f.GetName()] {
				t.Errorf("%s: %+v, want %+v", f.GetName(), got, tt.want[f.GetName()])
			}
		}
	}
}
