package database

// Health values of instances, databases and SAP systems.
const (
	HealthUnknown  = "unknown"
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// InstanceHealth is the health of an instance whose sapcontrol status is
// colour: GREEN passing, YELLOW warning, RED critical; GRAY (stopped) and
// anything else unknown.
func InstanceHealth(colour string) string {
	switch colour {
	case "GREEN":
		return HealthPassing
	case "YELLOW":
		return HealthWarning
	case "RED":
		return HealthCritical
	}
	return HealthUnknown
}

// healthRank orders evaluated healths: an instance whose state sapcontrol
// cannot tell (stopped, GRAY) is worse than a failing one, as the issue's
// "unknown > critical > warning > passing" says.
var healthRank = map[string]int{HealthPassing: 1, HealthWarning: 2, HealthCritical: 3, HealthUnknown: 4}

// Worst is the worst of healths, ignoring empty ones (not evaluated);
// unknown when none is evaluated.
func Worst(healths ...string) string {
	worst := ""
	for _, h := range healths {
		if h != "" && healthRank[h] > healthRank[worst] {
			worst = h
		}
	}
	if worst == "" {
		return HealthUnknown
	}
	return worst
}
