package benchmarks

import (
	"strings"
	"testing"
)

func TestConfigDefaultsAndChecks(t *testing.T) {
	c, err := Config{Hosts: 10}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if c.Hosts != 10 || c.Runs != d.Runs || c.FleetPhase != d.FleetPhase || c.PollInterval != d.PollInterval || c.Logger == nil || c.KafkaScript != d.KafkaScript {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.OutDir != "" {
		t.Errorf("OutDir %q: an empty one means no files, not the default", c.OutDir)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Hosts: -1}, "positive"},
		{Config{ChangeRate: 1.5}, "between 0 and 1"},
		{Config{FloodPhase: -1}, "positive"},
		{Config{KFake: true, Brokers: []string{"127.0.0.1:9092"}}, "not both"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
