package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms fleetstream speaks, named as Kafka names them.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security is how every Kafka client of a role (franz-go for ingest, the
// sink and topic administration; Sarama inside goka for the processors,
// views and emitters) reaches the brokers. The zero value is plaintext
// without authentication, what kfake and a local broker expect.
type Security struct {
	// TLS, when not nil, encrypts every broker connection (see
	// internal/tlsconfig). An empty ServerName is the host dialed.
	TLS *tls.Config
	// SASL authenticates the client; the zero value does not.
	SASL SASL
}

// SASL names a mechanism and the credentials it authenticates with.
type SASL struct {
	// Mechanism is "" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. PLAIN
	// sends the password as is: use it only over TLS.
	Mechanism string
	User      string
	Password  string
}

// Validate reports a configuration no broker could accept, saying which
// setting to change.
func (s Security) Validate() error {
	m := s.SASL.Mechanism
	switch m {
	case "":
		if s.SASL.User != "" || s.SASL.Password != "" {
			return fmt.Errorf("kafka: a SASL user or password is set but no mechanism: set the SASL mechanism to %s, %s or %s", SASLScramSHA512, SASLScramSHA256, SASLPlain)
		}
		return nil
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("kafka: unknown SASL mechanism %q: use %s, %s or %s", m, SASLScramSHA512, SASLScramSHA256, SASLPlain)
	}
	if s.SASL.User == "" || s.SASL.Password == "" {
		return fmt.Errorf("kafka: SASL %s needs a user and a password", m)
	}
	return nil
}

// ParseMechanism normalises a mechanism as a user types it: any case,
// "none" or empty for no SASL.
func ParseMechanism(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "NONE" {
		return ""
	}
	return s
}

// Opts are the franz-go options that apply s; append them to every client's
// options. s must be valid (Validate).
func (s Security) Opts() []kgo.Opt {
	var opts []kgo.Opt
	if s.TLS != nil {
		// franz-go clones the config per broker and sets the ServerName of
		// each when it is empty.
		opts = append(opts, kgo.DialTLSConfig(s.TLS))
	}
	if m := s.SASL.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func (a SASL) mechanism() sasl.Mechanism {
	switch a.Mechanism {
	case SASLPlain:
		return plain.Auth{User: a.User, Pass: a.Password}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: a.User, Pass: a.Password}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: a.User, Pass: a.Password}.AsSha512Mechanism()
	}
	return nil
}

// Apply configures a Sarama (goka) configuration with s. s must be valid
// (Validate).
func (s Security) Apply(c *sarama.Config) {
	if s.TLS != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = s.TLS
	}
	m := s.SASL.mechanism()
	if m == nil {
		return
	}
	c.Net.SASL.Enable = true
	c.Net.SASL.Handshake = true
	c.Net.SASL.Version = sarama.SASLHandshakeV1
	c.Net.SASL.Mechanism = sarama.SASLMechanism(s.SASL.Mechanism)
	c.Net.SASL.User = s.SASL.User
	c.Net.SASL.Password = s.SASL.Password
	if s.SASL.Mechanism != SASLPlain {
		// One SCRAM implementation for both clients: Sarama drives
		// franz-go's, so the two cannot disagree on the exchange.
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{mechanism: m} }
	}
}

// Check asks seeds for cluster metadata with s, so a role with a wrong
// address, CA or credentials stops at start with an error saying what it
// tried, instead of failing later inside a client that retries quietly.
func (s Security) Check(ctx context.Context, seeds []string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(s.Opts(), kgo.SeedBrokers(seeds...), kgo.RequestRetries(1))...)
	if err != nil {
		return fmt.Errorf("kafka %s: %w", strings.Join(seeds, ","), err)
	}
	defer cl.Close()
	if _, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		return fmt.Errorf("kafka %s: no answer with %s: %w (check the broker addresses, whether the listener expects TLS, the CA, and the SASL mechanism, user and password: a broker that refuses credentials may just close the connection)",
			strings.Join(seeds, ","), s, err)
	}
	return nil
}

// String describes s without secrets, for logs and errors.
func (s Security) String() string {
	d := "plaintext"
	if s.TLS != nil {
		d = "TLS"
	}
	if s.SASL.Mechanism == "" {
		return d + " without SASL"
	}
	return fmt.Sprintf("%s, SASL %s as user %q", d, s.SASL.Mechanism, s.SASL.User)
}

// UseGokaConfigWith installs GokaConfig with s applied as goka's global
// configuration: every goka processor, view and emitter the process creates
// with goka's default builders then reaches the brokers through s. One
// process talks to one cluster, so a global is what goka offers for that.
func UseGokaConfigWith(s Security) error {
	if err := s.Validate(); err != nil {
		return err
	}
	c := GokaConfig()
	s.Apply(c)
	if err := c.Validate(); err != nil {
		return fmt.Errorf("kafka: goka configuration: %w", err)
	}
	goka.ReplaceGlobalConfig(c)
	return nil
}

// scramClient adapts franz-go's SCRAM session to Sarama's SCRAMClient:
// Begin is called with the credentials already in the mechanism, the first
// Step returns the client-first message, later ones answer the server.
type scramClient struct {
	mechanism sasl.Mechanism
	session   sasl.Session
	done      bool
}

func (c *scramClient) Begin(_, _, _ string) error {
	c.session, c.done = nil, false
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) {
	if c.session == nil {
		s, first, err := c.mechanism.Authenticate(context.Background(), "")
		if err != nil {
			return "", err
		}
		c.session = s
		return string(first), nil
	}
	done, resp, err := c.session.Challenge([]byte(challenge))
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.mechanism.Name(), err)
	}
	c.done = done
	return string(resp), nil
}

func (c *scramClient) Done() bool { return c.done }
