package sim

import (
	"math/rand/v2"
	"strings"
	"time"
)

// A simulated host's subscription_discovery: the SUSE products it is
// registered for, as SUSEConnect lists them. The base product and the HA
// extension are paid subscriptions with a validity; modules are free.

// module is an optional module a host may have activated.
type module struct {
	id    string
	cloud bool // only on public clouds
}

var optionalModules = []module{
	{"sle-module-desktop-applications", false},
	{"sle-module-development-tools", false},
	{"sle-module-public-cloud", true},
	{"sle-module-containers", false},
	{"sle-module-python3", false},
}

// subscriptionEpoch is when the simulated subscriptions were bought, give
// or take a year: fixed, like the boot epoch.
var subscriptionEpoch = time.Date(2024, 3, 1, 6, 23, 46, 0, time.UTC)

type subscriptions struct {
	version string // "15.5"
	arch    string
	ha      bool
	public  bool   // on a public cloud
	modules []bool // by optionalModules index
	starts  time.Time
	years   int // validity of the paid subscriptions
}

func newSubscriptions(rng *rand.Rand, h *host, c *cloud) *subscriptions {
	s := &subscriptions{
		version: productVersion(releases[h.release].version),
		arch:    h.arch,
		ha:      profiles[h.profile].vip || rng.IntN(3) == 0,
		modules: make([]bool, len(optionalModules)),
		starts:  subscriptionEpoch.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Second),
		years:   1 + rng.IntN(3),
	}
	s.public = c != nil && cloudProviders[c.provider].sizes != nil
	for i, m := range optionalModules {
		s.modules[i] = (!m.cloud || s.public) && rng.IntN(2) == 0
	}
	return s
}

// productVersion turns an os-release VERSION ("15-SP5") into SUSEConnect's
// ("15.5").
func productVersion(v string) string {
	major, sp, _ := strings.Cut(v, "-SP")
	return major + "." + sp
}

// change renews the paid subscriptions or (de)activates a module.
func (s *subscriptions) change(rng *rand.Rand) bool {
	if rng.IntN(3) == 0 {
		s.years++
		return true
	}
	i := rng.IntN(len(optionalModules))
	for optionalModules[i].cloud && !s.public {
		i = rng.IntN(len(optionalModules))
	}
	s.modules[i] = !s.modules[i]
	return true
}

// subscription is one product of the payload (the Trento agent's fields;
// the paid ones carry type, validity and subscription_status).
type subscription struct {
	Arch               string `json:"arch"`
	Type               string `json:"type,omitempty"`
	Status             string `json:"status"`
	Version            string `json:"version"`
	StartsAt           string `json:"starts_at,omitempty"`
	ExpiresAt          string `json:"expires_at,omitempty"`
	Identifier         string `json:"identifier"`
	SubscriptionStatus string `json:"subscription_status,omitempty"`
}

func (s *subscriptions) render() []subscription {
	const layout = "2006-01-02 15:04:05 UTC"
	paid := func(id string) subscription {
		return subscription{
			Arch: s.arch, Type: "internal", Status: "Registered", Version: s.version,
			StartsAt: s.starts.Format(layout), ExpiresAt: s.starts.AddDate(s.years, 0, 0).Format(layout),
			Identifier: id, SubscriptionStatus: "ACTIVE",
		}
	}
	free := func(id string) subscription {
		return subscription{Arch: s.arch, Status: "Registered", Version: s.version, Identifier: id}
	}
	out := []subscription{
		paid("SLES_SAP"),
		free("sle-module-basesystem"),
		free("sle-module-server-applications"),
		free("sle-module-sap-applications"),
	}
	if s.ha {
		out = append(out, paid("sle-ha"))
	}
	for i, on := range s.modules {
		if on {
			out = append(out, free(optionalModules[i].id))
		}
	}
	return out
}
