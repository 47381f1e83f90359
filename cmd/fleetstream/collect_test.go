package main

import (
	"log/slog"
	"maps"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// collect's worker, and dev's, run the collectors, configured by the
// same flags.
func TestCollectAndDevRunTheCollectors(t *testing.T) {
	hs, err := buildHandlers(taskHandlerSets(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"aws.collect_all", "aws.collect_kind", "noop", "vsphere.collect_all", "vsphere.collect_kind"}
	if got := slices.Sorted(maps.Keys(hs)); !slices.Equal(got, want) {
		t.Errorf("task types %v, want %v", got, want)
	}
	for _, cmd := range [...]struct {
		name  string
		flags func([]string) error
	}{{"collect", collectCmd().ParseFlags}, {"dev", devCmd().ParseFlags}} {
		if err := cmd.flags([]string{"--aws-endpoint", "http://127.0.0.1:5000", "--vsphere-url", "https://vc/sdk", "--collect-chunk-size", "50"}); err != nil {
			t.Errorf("%s: %v", cmd.name, err)
		}
	}
}
