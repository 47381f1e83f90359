package sim

import (
	"math/rand/v2"
	"slices"
	"time"
)

// A simulated host's saptune_discovery: saptune's `status` in JSON, as the
// Trento agent forwards it. Database servers are tuned with the HANA
// solution, application servers and central services with NETWEAVER; a few
// hosts have saptune installed but not configured.
//
// A real agent runs saptune anew for every discovery, so "publish time" and
// "pid" differ each time; the simulation keeps them until the host changes,
// so that the configured change rate is the rate at which payloads differ.

var (
	saptuneVersions = []string{"3.0.2", "3.1.0", "3.1.2", "3.1.3"}
	solutionNotes   = map[string][]string{
		"HANA":      {"941735", "1771258", "1980196", "2578899", "2684254", "2382421", "2534844", "2993054", "1656250"},
		"NETWEAVER": {"941735", "1771258", "2578899", "2993054", "1656250", "900929"},
	}
	// extraNotes are notes an administrator may enable on top of a solution.
	extraNotes = []string{"2161991", "3024346", "1868829", "2205917"}
)

const rememberMessage = "\nRegarding the tuning state of the system please use 'saptune note verify' for detailed information.\n\n"

type saptune struct {
	configured bool
	solution   string
	version    int // saptuneVersions index
	compliant  bool
	extra      []bool // by extraNotes index
	ran        time.Time
	pid        int
	virt       string
}

func newSaptune(rng *rand.Rand, h *host, c *cloud) *saptune {
	s := &saptune{
		configured: rng.IntN(10) != 0,
		solution:   "NETWEAVER",
		version:    rng.IntN(len(saptuneVersions)),
		compliant:  rng.IntN(4) != 0,
		extra:      make([]bool, len(extraNotes)),
		ran:        h.boot.Add(time.Duration(1+rng.IntN(3600)) * time.Second),
		pid:        1000 + rng.IntN(30000),
		virt:       "none",
	}
	if h.profile == 0 {
		s.solution = "HANA"
	}
	if c != nil {
		s.virt = cloudProviders[c.provider].virtualization
	}
	for i := range s.extra {
		s.extra[i] = rng.IntN(8) == 0
	}
	return s
}

// change flips the tuning state, upgrades saptune or enables or disables
// an additional note; saptune ran again, so its time and pid move too.
func (s *saptune) change(rng *rand.Rand) bool {
	switch r := rng.IntN(10); {
	case r < 5 || !s.configured:
		s.compliant = !s.compliant
	case r < 7 && s.version+1 < len(saptuneVersions):
		s.version++
	default:
		i := rng.IntN(len(extraNotes))
		s.extra[i] = !s.extra[i]
	}
	s.ran = s.ran.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
	s.pid = 1000 + rng.IntN(30000)
	return true
}

// saptunePayload is the saptune_discovery payload.
type saptunePayload struct {
	SaptuneInstalled bool          `json:"saptune_installed"`
	PackageVersion   string        `json:"package_version"`
	Status           saptuneStatus `json:"status"`
}

type saptuneStatus struct {
	Schema      string           `json:"$schema"`
	PublishTime string           `json:"publish time"`
	Argv        string           `json:"argv"`
	PID         int              `json:"pid"`
	Command     string           `json:"command"`
	ExitCode    int              `json:"exit code"`
	Result      saptuneResult    `json:"result"`
	Messages    []saptuneMessage `json:"messages"`
}

type saptuneResult struct {
	Services               saptuneServices    `json:"services"`
	SystemdSystemState     string             `json:"systemd system state"`
	TuningState            string             `json:"tuning state"`
	Virtualization         string             `json:"virtualization"`
	ConfiguredVersion      string             `json:"configured version"`
	PackageVersion         string             `json:"package version"`
	SolutionEnabled        []string           `json:"Solution enabled"`
	NotesEnabledBySolution []solutionNoteList `json:"Notes enabled by Solution"`
	SolutionApplied        []solutionApplied  `json:"Solution applied"`
	NotesAppliedBySolution []solutionNoteList `json:"Notes applied by Solution"`
	NotesEnabledAdditional []string           `json:"Notes enabled additionally"`
	NotesEnabled           []string           `json:"Notes enabled"`
	NotesApplied           []string           `json:"Notes applied"`
	Staging                saptuneStaging     `json:"staging"`
	RememberMessage        string             `json:"remember message"`
}

type saptuneServices struct {
	Saptune []string `json:"saptune"`
	Sapconf []string `json:"sapconf"`
	Tuned   []string `json:"tuned"`
}

type solutionNoteList struct {
	SolutionID string   `json:"Solution ID"`
	NoteList   []string `json:"Note list"`
}

type solutionApplied struct {
	SolutionID       string `json:"Solution ID"`
	AppliedPartially bool   `json:"applied partially"`
}

type saptuneStaging struct {
	StagingEnabled  bool     `json:"staging enabled"`
	NotesStaged     []string `json:"Notes staged"`
	SolutionsStaged []string `json:"Solutions staged"`
}

type saptuneMessage struct {
	Priority string `json:"priority"`
	Message  string `json:"message"`
}

func (s *saptune) render() saptunePayload {
	version := saptuneVersions[s.version]
	r := saptuneResult{
		Services:               saptuneServices{Saptune: []string{"disabled", "inactive"}, Sapconf: []string{}, Tuned: []string{}},
		SystemdSystemState:     "running",
		TuningState:            "not tuned",
		Virtualization:         s.virt,
		ConfiguredVersion:      "3",
		PackageVersion:         version,
		SolutionEnabled:        []string{},
		NotesEnabledBySolution: []solutionNoteList{},
		SolutionApplied:        []solutionApplied{},
		NotesAppliedBySolution: []solutionNoteList{},
		NotesEnabledAdditional: []string{},
		NotesEnabled:           []string{},
		NotesApplied:           []string{},
		Staging:                saptuneStaging{NotesStaged: []string{}, SolutionsStaged: []string{}},
		RememberMessage:        rememberMessage,
	}
	exit := 1
	if s.configured {
		notes := solutionNotes[s.solution]
		r.Services.Saptune = []string{"enabled", "active"}
		r.SolutionEnabled = []string{s.solution}
		r.NotesEnabledBySolution = []solutionNoteList{{s.solution, notes}}
		r.SolutionApplied = []solutionApplied{{s.solution, !s.compliant}}
		r.NotesAppliedBySolution = []solutionNoteList{{s.solution, notes}}
		for i, on := range s.extra {
			if on {
				r.NotesEnabledAdditional = append(r.NotesEnabledAdditional, extraNotes[i])
			}
		}
		r.NotesEnabled = append(slices.Clone(notes), r.NotesEnabledAdditional...)
		r.NotesApplied = slices.Clone(r.NotesEnabled)
		r.TuningState, exit = "compliant", 0
		if !s.compliant {
			r.TuningState, exit = "not compliant", 4
		}
	}
	return saptunePayload{
		SaptuneInstalled: true,
		PackageVersion:   version,
		Status: saptuneStatus{
			Schema:      "file:///usr/share/saptune/schemas/1.0/saptune_status.schema.json",
			PublishTime: s.ran.Format("2006-01-02 15:04:05.000"),
			Argv:        "saptune --format json status",
			PID:         s.pid,
			Command:     "status",
			ExitCode:    exit,
			Result:      r,
			Messages: []saptuneMessage{{
				Priority: "NOTICE",
				Message:  "ini.go:308: block device related section settings detected: Traversing all block devices can take a considerable amount of time.\n",
			}},
		},
	}
}
