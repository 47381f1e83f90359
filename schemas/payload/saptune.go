package payload

import (
	"encoding/json"
	"errors"
	"slices"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Saptune is the saptune_discovery payload: whether saptune is installed,
// its version and, from saptune 3.1 on, `saptune --format json status`.
// Status is null when saptune is not installed or older.
type Saptune struct {
	SaptuneInstalled *bool          `json:"saptune_installed"`
	PackageVersion   string         `json:"package_version"`
	Status           *SaptuneReport `json:"status"`
}

// SaptuneReport is saptune's JSON status envelope. What changes at every
// run (publish time, pid, messages) is left out on purpose: the decoded
// status must be equal when the tuning is.
type SaptuneReport struct {
	Result *SaptuneResult `json:"result"`
}

// SaptuneResult is the status proper, under saptune's own field names.
type SaptuneResult struct {
	Services          map[string][]string `json:"services"`
	TuningState       string              `json:"tuning state"`
	ConfiguredVersion string              `json:"configured version"`
	SolutionsEnabled  []string            `json:"Solution enabled"`
	SolutionsApplied  []SaptuneSolution   `json:"Solution applied"`
	NotesEnabled      []string            `json:"Notes enabled"`
	NotesApplied      []string            `json:"Notes applied"`
	Staging           SaptuneStaging      `json:"staging"`
}

// SaptuneSolution is an entry of "Solution applied".
type SaptuneSolution struct {
	ID               string `json:"Solution ID"`
	AppliedPartially bool   `json:"applied partially"`
}

// SaptuneStaging is saptune's staging area.
type SaptuneStaging struct {
	Enabled         bool     `json:"staging enabled"`
	NotesStaged     []string `json:"Notes staged"`
	SolutionsStaged []string `json:"Solutions staged"`
}

// DecodeSaptune turns a saptune_discovery payload into the host's saptune
// status.
func DecodeSaptune(raw []byte) (*fleetv1.SaptuneStatus, error) {
	var p Saptune
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, decodeError(err)
	}
	if p.SaptuneInstalled == nil {
		return nil, &FieldError{Name: "saptune_installed", Err: errors.New("saptune_installed is required (true or false)")}
	}
	s := &fleetv1.SaptuneStatus{Installed: *p.SaptuneInstalled, PackageVersion: p.PackageVersion}
	if !s.Installed || p.Status == nil || p.Status.Result == nil {
		return s, nil
	}
	r := p.Status.Result
	t := &fleetv1.SaptuneTuning{
		TuningState:       r.TuningState,
		ConfiguredVersion: r.ConfiguredVersion,
		EnabledSolutions:  r.SolutionsEnabled,
		EnabledNotes:      r.NotesEnabled,
		AppliedNotes:      r.NotesApplied,
		StagingEnabled:    r.Staging.Enabled,
		StagedNotes:       r.Staging.NotesStaged,
		StagedSolutions:   r.Staging.SolutionsStaged,
	}
	// Sorted: a JSON object's key order means nothing.
	names := make([]string, 0, len(r.Services))
	for name := range r.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		svc := &fleetv1.SaptuneService{Name: name}
		// [enabled state, active state]; empty when the service is not installed.
		if st := r.Services[name]; len(st) > 0 {
			svc.Enabled = st[0]
			if len(st) > 1 {
				svc.Active = st[1]
			}
		}
		t.Services = append(t.Services, svc)
	}
	for _, sol := range r.SolutionsApplied {
		t.AppliedSolutions = append(t.AppliedSolutions, &fleetv1.SaptuneSolution{Id: sol.ID, AppliedPartially: sol.AppliedPartially})
	}
	s.Tuning = t
	return s, nil
}
