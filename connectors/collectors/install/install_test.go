package install_test

import (
	"log/slog"
	"maps"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/collectors/install"
)

func TestHandlersFromFlags(t *testing.T) {
	var cfg install.Config
	fs := pflag.NewFlagSet("collect", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--aws-endpoint=http://127.0.0.1:5000", "--aws-retry-mode=standard", "--vsphere-url=https://vc/sdk", "--collect-chunk-size=100"}); err != nil {
		t.Fatal(err)
	}
	if cfg.AWS.Endpoint != "http://127.0.0.1:5000" || cfg.AWS.MaxAttempts != 10 || cfg.VSphere.URL != "https://vc/sdk" || cfg.ChunkSize != 100 {
		t.Fatalf("config from flags: %+v", cfg)
	}
	hs, err := cfg.Build(prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"aws.collect_all", "aws.collect_kind", "vsphere.collect_all", "vsphere.collect_kind"}
	if got := slices.Sorted(maps.Keys(hs)); !slices.Equal(got, want) {
		t.Errorf("handlers %v, want %v", got, want)
	}

	cfg.AWS.RetryMode = "fast"
	if _, err := install.Handlers(cfg, collectors.Options{}); err == nil {
		t.Error("an unknown retry mode was accepted")
	}
}
