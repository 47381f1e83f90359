package aws

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/tasks"
)

// Name is the provider's name: task types "aws.collect_all" and
// "aws.collect_kind", collection keys "aws:<account>:<region>:<kind>".
const Name = "aws"

// Provider collects AWS resources. It keeps one set of clients per
// endpoint and region for its lifetime, so concurrent tasks share
// connections and each region's retry state.
type Provider struct {
	cfg Config

	mu       sync.Mutex
	base     *aws.Config // loaded on first use: a worker without AWS credentials still starts
	clients  map[clientKey]*clients
	accounts map[string]string // endpoint → account id of the credentials
}

type clientKey struct{ endpoint, region string }

// clients are the service clients of one region; they share one retryer.
type clients struct {
	ec2 *ec2.Client
	elb *elb.Client
	s3  *s3.Client
	sts *sts.Client
}

// New returns an AWS provider.
func New(cfg Config) (*Provider, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, clients: map[clientKey]*clients{}, accounts: map[string]string{}}, nil
}

// Name returns "aws".
func (p *Provider) Name() string { return Name }

// Kinds lists the resource kinds, regional ones first.
func (p *Provider) Kinds() []collectors.Kind {
	ks := make([]collectors.Kind, len(kinds))
	for i, k := range kinds {
		ks[i] = k.Kind
	}
	return ks
}

// Open resolves the account the credentials reach (STS
// GetCallerIdentity, once per endpoint) and checks it against the task's.
func (p *Provider) Open(ctx context.Context, t collectors.Target) (collectors.Collector, error) {
	endpoint, err := p.cfg.endpoint(t.Endpoint)
	if err != nil {
		return nil, tasks.Permanent(err)
	}
	account, err := p.account(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	if t.Account != "" && t.Account != account {
		return nil, tasks.Permanent(fmt.Errorf("the AWS credentials reach account %s, not %s: give the collector credentials of account %s", account, t.Account, t.Account))
	}
	return &collector{p: p, endpoint: endpoint, account: account}, nil
}

func (p *Provider) account(ctx context.Context, endpoint string) (string, error) {
	p.mu.Lock()
	account, ok := p.accounts[endpoint]
	p.mu.Unlock()
	if ok {
		return account, nil
	}
	c, err := p.clientsFor(ctx, endpoint, p.cfg.HomeRegion)
	if err != nil {
		return "", err
	}
	out, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", classify(fmt.Errorf("identify the AWS account (sts GetCallerIdentity): %w", err))
	}
	account = aws.ToString(out.Account)
	p.mu.Lock()
	p.accounts[endpoint] = account
	p.mu.Unlock()
	return account, nil
}

// clientsFor returns the clients of one endpoint and region, building them
// on first use.
func (p *Provider) clientsFor(ctx context.Context, endpoint, region string) (*clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := clientKey{endpoint, region}
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	if p.base == nil {
		var opts []func(*config.LoadOptions) error
		if p.cfg.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(p.cfg.Profile))
		}
		if p.cfg.Credentials != nil {
			opts = append(opts, config.WithCredentialsProvider(p.cfg.Credentials))
		}
		base, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, tasks.Permanent(fmt.Errorf("load the AWS configuration (profile %q): %w", p.cfg.Profile, err))
		}
		p.base = &base
	}

	cfg := p.base.Copy()
	cfg.Region = region
	r := p.retryer()
	cfg.Retryer = func() aws.Retryer { return r }
	if p.cfg.HTTPClient != nil {
		cfg.HTTPClient = p.cfg.HTTPClient
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	c := &clients{
		ec2: ec2.NewFromConfig(cfg),
		elb: elb.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Test servers and S3-compatible stores have no per-bucket
			// DNS names.
			o.UsePathStyle = endpoint != ""
		}),
		sts: sts.NewFromConfig(cfg),
	}
	p.clients[key] = c
	return c, nil
}

func (p *Provider) retryer() aws.Retryer {
	std := func(o *retry.StandardOptions) {
		o.MaxAttempts = p.cfg.MaxAttempts
		o.MaxBackoff = p.cfg.MaxBackoff
	}
	if aws.RetryMode(p.cfg.RetryMode) == aws.RetryModeStandard {
		return retry.NewStandard(std)
	}
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, std)
	})
}
