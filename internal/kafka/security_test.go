package kafka_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/tlsconfig"
	"github.com/fleetstream/fleetstream/internal/tlsconfig/tlstest"
)

const (
	saslUser     = "fleetstream"
	saslPassword = "s3cret-Passw0rd"
)

// secureCluster starts kfake with mutual TLS and one SASL user per
// mechanism, all named saslUser, and returns its seeds.
func secureCluster(t *testing.T, pki *tlstest.PKI) []string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(pki.ServerConfig(true)),
		kfake.EnableSASL(),
		kfake.Superuser(kafka.SASLPlain, saslUser, saslPassword),
		kfake.Superuser(kafka.SASLScramSHA256, saslUser, saslPassword),
		kfake.Superuser(kafka.SASLScramSHA512, saslUser, saslPassword),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// clientTLS is the TLS configuration a role loads from its mounted files.
func clientTLS(t *testing.T, pki *tlstest.PKI) *tls.Config {
	t.Helper()
	c, err := tlsconfig.Files{CA: pki.CAFile, Cert: pki.CertFile, Key: pki.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip creates a topic, produces through a fleetstream producer and
// consumes the records back, all with sec.
func roundTrip(ctx context.Context, seeds []string, sec kafka.Security, topic string) error {
	admin, err := kgo.NewClient(append(sec.Opts(), kgo.SeedBrokers(seeds...))...)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		return err
	}
	producer, err := kafka.NewClient(seeds, sec.Opts()...)
	if err != nil {
		return err
	}
	defer producer.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("v-" + k)}).FirstErr(); err != nil {
			return err
		}
	}
	consumer, err := kgo.NewClient(append(sec.Opts(), kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer consumer.Close()
	got := map[string]string{}
	for len(got) < 3 {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return err
		}
		fetches.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	if got["b"] != "v-b" {
		return errors.New("consumed " + got["b"] + " for key b, want v-b")
	}
	return nil
}

func TestSecurityFranzGoOverTLSWithEachSASLMechanism(t *testing.T) {
	pki := tlstest.New(t)
	seeds := secureCluster(t, pki)
	for _, mech := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			sec := kafka.Security{TLS: clientTLS(t, pki), SASL: kafka.SASL{Mechanism: mech, User: saslUser, Password: saslPassword}}
			if err := sec.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(ctxFor(t, 30*time.Second), seeds, sec, "secure-"+strings.ToLower(mech)); err != nil {
				t.Fatalf("produce and consume with %s over mTLS: %v", mech, err)
			}
		})
	}
}

func TestSecurityCheckFailsClearly(t *testing.T) {
	pki := tlstest.New(t)
	seeds := secureCluster(t, pki)
	good := kafka.SASL{Mechanism: kafka.SASLScramSHA512, User: saslUser, Password: saslPassword}
	if err := (kafka.Security{TLS: clientTLS(t, pki), SASL: good}).Check(ctxFor(t, 10*time.Second), seeds); err != nil {
		t.Fatalf("Check with the right settings: %v", err)
	}
	for name, tc := range map[string]struct {
		sec  kafka.Security
		want []string
	}{
		"wrong password": {kafka.Security{TLS: clientTLS(t, pki), SASL: kafka.SASL{Mechanism: kafka.SASLScramSHA512, User: saslUser, Password: "bad-Passw0rd"}},
			[]string{`TLS, SASL SCRAM-SHA-512 as user "fleetstream"`, "SASL mechanism, user and password"}},
		"unknown user": {kafka.Security{TLS: clientTLS(t, pki), SASL: kafka.SASL{Mechanism: kafka.SASLScramSHA256, User: "mallory", Password: saslPassword}},
			[]string{`SASL SCRAM-SHA-256 as user "mallory"`}},
		"no SASL":  {kafka.Security{TLS: clientTLS(t, pki)}, []string{"TLS without SASL", "SASL is required but not provided"}},
		"no TLS":   {kafka.Security{SASL: good}, []string{"plaintext, SASL", "whether the listener expects TLS"}},
		"wrong CA": {kafka.Security{TLS: clientTLS(t, tlstest.New(t)), SASL: good}, []string{"certificate signed by unknown authority"}},
		"bad SASL": {kafka.Security{SASL: kafka.SASL{Mechanism: "OAUTH", User: "u", Password: "p"}}, []string{"unknown SASL mechanism"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.sec.Check(ctxFor(t, 10*time.Second), seeds)
			if err == nil {
				t.Fatal("Check passed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if p := tc.sec.SASL.Password; p != "" && strings.Contains(err.Error(), p) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// A goka emitter, processor and view configured only through
// UseGokaConfigWith (goka's default builders, as the roles use them) work
// over mutual TLS with SCRAM.
func TestSecurityGokaEmitterProcessorViewOverTLSWithSCRAM(t *testing.T) {
	pki := tlstest.New(t)
	seeds := secureCluster(t, pki)
	sec := kafka.Security{TLS: clientTLS(t, pki), SASL: kafka.SASL{Mechanism: kafka.SASLScramSHA512, User: saslUser, Password: saslPassword}}
	if err := kafka.UseGokaConfigWith(sec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.UseGokaConfig)

	const input, group = "secure-counts-in", "secure-counts"
	ctx := ctxFor(t, 90*time.Second)
	admin, err := kgo.NewClient(append(sec.Opts(), kgo.SeedBrokers(seeds...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(admin), []kafka.Topic{
		{Name: input, Partitions: 2}, {Name: kafka.TableTopic(group), Partitions: 2, Configs: map[string]string{"cleanup.policy": "compact"}},
	}, 1); err != nil {
		t.Fatal(err)
	}
	tm := goka.TopicManagerBuilderWithTopicManagerConfig(kafka.TopicManagerConfig(1))

	proc, err := goka.NewProcessor(seeds, goka.DefineGroup(group,
		goka.Input(input, new(codec.String), func(gctx goka.Context, _ any) {
			n, _ := gctx.Value().(int64)
			gctx.SetValue(n + 1)
		}),
		goka.Persist(new(codec.Int64)),
	), goka.WithTopicManagerBuilder(tm), goka.WithStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatalf("goka processor over TLS+SCRAM: %v", err)
	}
	view, err := goka.NewView(seeds, goka.GroupTable(group), new(codec.Int64),
		goka.WithViewTopicManagerBuilder(tm), goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatalf("goka view over TLS+SCRAM: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for name, run := range map[string]func(context.Context) error{"processor": proc.Run, "view": view.Run} {
		done := make(chan error, 1)
		go func() { done <- run(runCtx) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s stopped with %v", name, err)
			}
		})
	}

	em, err := goka.NewEmitter(seeds, goka.Stream(input), new(codec.String), goka.WithEmitterTopicManagerBuilder(tm))
	if err != nil {
		t.Fatalf("goka emitter over TLS+SCRAM: %v", err)
	}
	for range 3 {
		if err := em.EmitSync("host-1", "seen"); err != nil {
			t.Fatalf("emit over TLS+SCRAM: %v", err)
		}
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	for {
		v, err := view.Get("host-1")
		if err == nil && v != nil && v.(int64) == 3 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the view never showed 3 for host-1 (last %v, %v)", v, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestSecurityGokaWrongPasswordFailsClearly(t *testing.T) {
	pki := tlstest.New(t)
	seeds := secureCluster(t, pki)
	sec := kafka.Security{TLS: clientTLS(t, pki), SASL: kafka.SASL{Mechanism: kafka.SASLScramSHA256, User: saslUser, Password: "wrong"}}
	if err := kafka.UseGokaConfigWith(sec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.UseGokaConfig)
	_, err := goka.NewEmitter(seeds, "any", new(codec.String))
	if err == nil {
		t.Fatal("a goka emitter with a wrong password connected")
	}
	// kfake drops the connection where Kafka answers
	// SASL_AUTHENTICATION_FAILED: either way Sarama gives up.
	if !strings.Contains(err.Error(), "run out of available brokers") {
		t.Fatalf("goka emitter with a wrong password: got %v", err)
	}
}

func TestSecurityValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		sasl kafka.SASL
		want string
	}{
		"none":              {kafka.SASL{}, ""},
		"scram":             {kafka.SASL{Mechanism: kafka.SASLScramSHA256, User: "u", Password: "p"}, ""},
		"unknown mechanism": {kafka.SASL{Mechanism: "GSSAPI", User: "u", Password: "p"}, "unknown SASL mechanism"},
		"no password":       {kafka.SASL{Mechanism: kafka.SASLScramSHA512, User: "u"}, "needs a user and a password"},
		"user, no mech":     {kafka.SASL{User: "u", Password: "p"}, "no mechanism"},
	} {
		t.Run(name, func(t *testing.T) {
			err := kafka.Security{SASL: tc.sasl}.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if got := kafka.ParseMechanism(" scram-sha-512 "); got != kafka.SASLScramSHA512 {
		t.Fatalf("ParseMechanism: got %q", got)
	}
	if got := kafka.ParseMechanism("None"); got != "" {
		t.Fatalf("ParseMechanism(None): got %q", got)
	}
}
