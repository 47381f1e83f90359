package host

import fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"

// health is the worst of the host's sub-healths: heartbeat, saptune and
// checks. Unknown only means "not evaluated" (no heartbeat yet, saptune
// not installed, no check run), so it ranks below passing and is the
// host's health only when every sub-health is unknown.
func health(h *fleetv1.Host) string {
	worst := HealthUnknown
	for _, sub := range []string{h.GetHeartbeat(), h.GetSaptuneHealth(), h.GetChecksHealth()} {
		if healthRank[sub] > healthRank[worst] {
			worst = sub
		}
	}
	return worst
}

var healthRank = map[string]int{HealthUnknown: 0, HealthPassing: 1, HealthWarning: 2, HealthCritical: 3}

// Saptune tuning states, as `saptune status` reports them.
const (
	TuningCompliant    = "compliant"
	TuningNotCompliant = "not compliant"
	TuningNotTuned     = "not tuned"
)

// saptuneHealth is the saptune sub-health of a status, as Trento rates it
// where it rates it at all:
//   - not installed, or a saptune too old to report its status as JSON
//     (before 3.1): unknown, i.e. not evaluated. A host without SAP
//     workloads need not run saptune, and the host aggregate does not know
//     whether SAP runs there.
//   - "compliant": passing.
//   - "not tuned" (no solution or note applied yet): warning, something to
//     do but nothing wrong applied.
//   - "not compliant" (applied tuning drifted from what saptune set):
//     critical, as the hana-scale-up-cost-opt scenario's hosts show it.
//   - any other state: unknown.
func saptuneHealth(s *fleetv1.SaptuneStatus) string {
	if !s.GetInstalled() || s.GetTuning() == nil {
		return HealthUnknown
	}
	switch s.GetTuning().GetTuningState() {
	case TuningCompliant:
		return HealthPassing
	case TuningNotTuned:
		return HealthWarning
	case TuningNotCompliant:
		return HealthCritical
	}
	return HealthUnknown
}
