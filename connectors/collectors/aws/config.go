package aws

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/pflag"
)

// Config configures the AWS provider. Credentials come from the SDK's
// default chain (environment, shared files and profile, container or
// instance role) unless Credentials is set.
type Config struct {
	// Endpoint replaces every service's endpoint, e.g. a moto or LocalStack
	// URL. Default: AWS's own endpoints.
	Endpoint string
	// AllowedEndpoints are the endpoints a task's payload may name besides
	// Endpoint. A task can otherwise point the collector, with its
	// credentials, at any server. Default: none.
	AllowedEndpoints []string
	// HomeRegion serves account-wide calls (STS, DescribeRegions, S3
	// ListBuckets). Default us-east-1.
	HomeRegion string
	// Profile is the shared config profile. Default: the SDK's (AWS_PROFILE
	// or "default").
	Profile string
	// RetryMode is "adaptive" (default: retries plus client-side rate
	// limiting that slows down after throttling) or "standard" (retries
	// only).
	RetryMode string
	// MaxAttempts per API call, throttling retries included. Default 10: a
	// collection would rather wait than fail and start over.
	MaxAttempts int
	// MaxBackoff caps the delay between attempts. Default 20s (the SDK's).
	MaxBackoff time.Duration
	// PageSize is the page size of list calls, clamped to each API's
	// range. Default 0: each API's maximum, the fewest calls.
	PageSize int
	// Credentials replaces the default chain (tests, embedding programs).
	Credentials aws.CredentialsProvider
	// HTTPClient sends the API requests. Default: the SDK's.
	HTTPClient aws.HTTPClient
}

// Defaults, in one place.
const (
	DefaultHomeRegion  = "us-east-1"
	DefaultRetryMode   = aws.RetryModeAdaptive
	DefaultMaxAttempts = 10
	DefaultMaxBackoff  = 20 * time.Second
)

// RegisterFlags adds the provider's flags, prefixed "aws-", to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Endpoint, "aws-endpoint", "", "AWS endpoint for every service (moto, LocalStack); empty: AWS's own")
	fs.StringSliceVar(&c.AllowedEndpoints, "aws-allowed-endpoints", nil, "endpoints a collection task may name besides --aws-endpoint")
	fs.StringVar(&c.HomeRegion, "aws-home-region", DefaultHomeRegion, "region for account-wide calls (STS, regions, S3 buckets)")
	fs.StringVar(&c.Profile, "aws-profile", "", "AWS shared config profile; empty: AWS_PROFILE or default")
	fs.StringVar(&c.RetryMode, "aws-retry-mode", string(DefaultRetryMode), "AWS retry mode: adaptive (rate-limits after throttling) or standard")
	fs.IntVar(&c.MaxAttempts, "aws-max-attempts", DefaultMaxAttempts, "attempts per AWS API call, throttling retries included")
	fs.DurationVar(&c.MaxBackoff, "aws-max-backoff", DefaultMaxBackoff, "longest wait between attempts of an AWS API call")
	fs.IntVar(&c.PageSize, "aws-page-size", 0, "page size of AWS list calls; 0: each API's maximum")
}

func (c Config) withDefaults() (Config, error) {
	if c.HomeRegion == "" {
		c.HomeRegion = DefaultHomeRegion
	}
	if c.RetryMode == "" {
		c.RetryMode = string(DefaultRetryMode)
	}
	if _, err := aws.ParseRetryMode(c.RetryMode); err != nil {
		return c, fmt.Errorf("aws retry mode %q: use adaptive or standard", c.RetryMode)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.Endpoint = strings.TrimSuffix(c.Endpoint, "/")
	c.AllowedEndpoints = slices.Clone(c.AllowedEndpoints)
	for i, e := range c.AllowedEndpoints {
		c.AllowedEndpoints[i] = strings.TrimSuffix(e, "/")
	}
	return c, nil
}

// endpoint resolves a task's endpoint against the configuration.
func (c Config) endpoint(requested string) (string, error) {
	requested = strings.TrimSuffix(requested, "/")
	if requested == "" || requested == c.Endpoint || slices.Contains(c.AllowedEndpoints, requested) {
		if requested == "" {
			return c.Endpoint, nil
		}
		return requested, nil
	}
	return "", fmt.Errorf("endpoint %q is not allowed: add it to --aws-allowed-endpoints (FLEETSTREAM_AWS_ALLOWED_ENDPOINTS)", requested)
}

// pageSize clamps the configured page size to an API's range [min, max].
func (c Config) pageSize(lo, hi int32) int32 {
	if c.PageSize <= 0 {
		return hi
	}
	return min(max(int32(min(c.PageSize, int(hi))), lo), hi)
}
