package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseJobsReadsYAMLAndJSON(t *testing.T) {
	yamlDoc := `
jobs:
  - name: aws-prod-eu
    spec: "@every 15m"
    type: aws.collect_all
    payload: {account: "123456789012", regions: [eu-west-1, eu-central-1]}
    priority: high
    max_attempts: 7
    deadline: 30m
  - name: nightly
    spec: "0 30 2 * * *"
    type: vsphere.collect_all
`
	jsonDoc := `{"jobs": [{"name": "aws-prod-eu", "spec": "@every 15m", "type": "aws.collect_all",
	  "payload": {"account": "123456789012", "regions": ["eu-west-1", "eu-central-1"]}, "priority": "high", "max_attempts": 7, "deadline": "30m"},
	  {"name": "nightly", "spec": "0 30 2 * * *", "type": "vsphere.collect_all"}]}`
	for name, doc := range map[string]string{"yaml": yamlDoc, "json": jsonDoc} {
		path := filepath.Join(t.TempDir(), "schedule."+name)
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		jobs, err := LoadJobs(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cs, err := compileJobs(jobs)
		if err != nil || len(cs) != 2 {
			t.Fatalf("%s: %d jobs, %v", name, len(cs), err)
		}
		j := cs[0]
		if string(j.payload) != `{"account":"123456789012","regions":["eu-west-1","eu-central-1"]}` || j.priority != high || j.MaxAttempts != 7 || j.deadline != 30*time.Minute {
			t.Errorf("%s: job %+v payload %s", name, j.Job, j.payload)
		}
		from := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		if got := j.schedule.Next(from); !got.Equal(from.Add(15 * time.Minute)) {
			t.Errorf("%s: @every 15m next after %v is %v", name, from, got)
		}
		if got, want := cs[1].schedule.Next(from), time.Date(2026, 1, 2, 2, 30, 0, 0, time.UTC); !got.Equal(want) {
			t.Errorf("%s: nightly next after %v is %v, want %v (UTC)", name, from, got, want)
		}
	}
}

func TestParseJobsRejectsBadJobsWithReasons(t *testing.T) {
	cases := map[string]string{
		"bad spec":      "jobs: [{name: a, spec: 'every day', type: x}]",
		"no type":       "jobs: [{name: a, spec: '@hourly'}]",
		"bad name":      "jobs: [{name: 'a b', spec: '@hourly', type: x}]",
		"duplicate":     "jobs: [{name: a, spec: '@hourly', type: x}, {name: a, spec: '@daily', type: y}]",
		"bad priority":  "jobs: [{name: a, spec: '@hourly', type: x, priority: urgent}]",
		"bad deadline":  "jobs: [{name: a, spec: '@hourly', type: x, deadline: soon}]",
		"unknown field": "jobs: [{name: a, spec: '@hourly', type: x, cron: '* * * * *'}]",
	}
	for name, doc := range cases {
		if _, err := ParseJobs([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.TrimSpace(err.Error()) == "" {
			t.Errorf("%s: empty error", name)
		}
	}
	if jobs, err := ParseJobs(nil); err != nil || len(jobs) != 0 {
		t.Errorf("an empty file: %d jobs, %v", len(jobs), err)
	}
}
