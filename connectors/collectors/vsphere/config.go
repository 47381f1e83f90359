package vsphere

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Config configures the vSphere provider.
type Config struct {
	// URL of the vCenter SDK, e.g. https://vcenter.example.com/sdk; a task
	// may name another one from AllowedEndpoints.
	URL string
	// Username and Password log in; credentials in a URL's user info are
	// used when these are empty.
	Username string
	Password string
	// Insecure skips TLS certificate verification (self-signed lab
	// vCenters, vcsim).
	Insecure bool
	// AllowedEndpoints are the URLs a task's payload may name besides URL:
	// the configured credentials are sent to whatever a task names.
	AllowedEndpoints []string
	// PageSize is the most objects per property collector page. Default
	// 1000.
	PageSize int
}

// DefaultPageSize is the property collector page size.
const DefaultPageSize = 1000

// RegisterFlags adds the provider's flags, prefixed "vsphere-", to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "vsphere-url", "", "vCenter SDK URL, e.g. https://vcenter.example.com/sdk")
	fs.StringVar(&c.Username, "vsphere-username", "", "vCenter user name")
	fs.StringVar(&c.Password, "vsphere-password", "", "vCenter password (better from FLEETSTREAM_VSPHERE_PASSWORD)")
	fs.BoolVar(&c.Insecure, "vsphere-insecure", false, "skip TLS certificate verification of the vCenter")
	fs.StringSliceVar(&c.AllowedEndpoints, "vsphere-allowed-endpoints", nil, "vCenter URLs a collection task may name besides --vsphere-url")
	fs.IntVar(&c.PageSize, "vsphere-page-size", DefaultPageSize, "objects per property collector page")
}

func (c Config) withDefaults() Config {
	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	c.AllowedEndpoints = slices.Clone(c.AllowedEndpoints)
	for i, e := range c.AllowedEndpoints {
		c.AllowedEndpoints[i] = strings.TrimSuffix(e, "/")
	}
	return c
}

// endpoint resolves a task's endpoint to the URL to log in to, with the
// configured credentials.
func (c Config) endpoint(requested string) (*url.URL, error) {
	requested = strings.TrimSuffix(requested, "/")
	raw := c.URL
	if requested != "" {
		if requested != c.URL && !slices.Contains(c.AllowedEndpoints, requested) {
			return nil, fmt.Errorf("endpoint %q is not allowed: add it to --vsphere-allowed-endpoints (FLEETSTREAM_VSPHERE_ALLOWED_ENDPOINTS)", redact(requested))
		}
		raw = requested
	}
	if raw == "" {
		return nil, fmt.Errorf("no vCenter configured: set --vsphere-url (FLEETSTREAM_VSPHERE_URL) or name an allowed endpoint in the task")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("vCenter URL %q is not an http(s) URL: give e.g. https://vcenter.example.com/sdk", redact(raw))
	}
	if u.Path == "" {
		u.Path = "/sdk"
	}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	return u, nil
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
