package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Job is one scheduled job of the scheduler's configuration file:
//
//	jobs:
//	  - name: aws-prod-eu
//	    spec: "@every 15m"          # or cron: "*/15 * * * *", "0 30 2 * * *" (with seconds)
//	    type: aws.collect_all
//	    payload: {account: "123456789012", regions: [eu-west-1, eu-central-1]}
//	    priority: normal            # high, normal (default), low
//	    max_attempts: 5             # optional
//	    deadline: 30m               # optional: dead-lettered if not done 30m after firing
//
// JSON with the same keys works too. Cron specs are evaluated in UTC unless
// they start with CRON_TZ=<zone>.
type Job struct {
	Name        string `yaml:"name" json:"name"`
	Spec        string `yaml:"spec" json:"spec"`
	Type        string `yaml:"type" json:"type"`
	Payload     any    `yaml:"payload" json:"payload"`
	Priority    string `yaml:"priority" json:"priority"`
	MaxAttempts uint32 `yaml:"max_attempts" json:"max_attempts"`
	Deadline    string `yaml:"deadline" json:"deadline"`
}

// jobNames become part of task ids (and URLs).
var jobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// compiledJob is a validated Job.
type compiledJob struct {
	Job
	schedule cron.Schedule
	payload  []byte
	priority fleetv1.Priority
	deadline time.Duration
}

// LoadJobs reads a scheduler configuration file (YAML or JSON).
func LoadJobs(path string) ([]Job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	jobs, err := ParseJobs(data)
	if err != nil {
		return nil, fmt.Errorf("schedule %s: %w", path, err)
	}
	return jobs, nil
}

// ParseJobs reads and validates a configuration ({jobs: [...]}).
func ParseJobs(data []byte) ([]Job, error) {
	var doc struct {
		Jobs []Job `yaml:"jobs"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if _, err := compileJobs(doc.Jobs); err != nil {
		return nil, err
	}
	return doc.Jobs, nil
}

func compileJobs(jobs []Job) ([]compiledJob, error) {
	out := make([]compiledJob, 0, len(jobs))
	seen := map[string]bool{}
	var problems []string
	for i, j := range jobs {
		c, err := compileJob(j)
		if err != nil {
			problems = append(problems, fmt.Sprintf("job %d (%q): %v", i+1, j.Name, err))
			continue
		}
		if seen[j.Name] {
			problems = append(problems, fmt.Sprintf("job %d: the name %q is used twice; names must be unique", i+1, j.Name))
			continue
		}
		seen[j.Name] = true
		out = append(out, c)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

func compileJob(j Job) (compiledJob, error) {
	c := compiledJob{Job: j}
	if !jobName.MatchString(j.Name) {
		return c, errors.New("name must be letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if j.Type == "" {
		return c, errors.New("type is missing: name the task type (handler) the job enqueues")
	}
	spec := j.Spec
	if !strings.HasPrefix(spec, "TZ=") && !strings.HasPrefix(spec, "CRON_TZ=") {
		spec = "CRON_TZ=UTC " + spec
	}
	var err error
	if c.schedule, err = cronParser.Parse(spec); err != nil {
		return c, fmt.Errorf("spec %q: %w (use cron with 5 or 6 fields, @hourly, @daily or @every 15m)", j.Spec, err)
	}
	if c.priority, err = ParseQueue(j.Priority); err != nil {
		return c, fmt.Errorf("priority: %w", err)
	}
	if j.Payload != nil {
		if c.payload, err = json.Marshal(j.Payload); err != nil {
			return c, fmt.Errorf("payload is not JSON-able: %w", err)
		}
	}
	if j.Deadline != "" {
		if c.deadline, err = time.ParseDuration(j.Deadline); err != nil || c.deadline <= 0 {
			return c, fmt.Errorf("deadline %q: use a positive duration such as 30m", j.Deadline)
		}
	}
	return c, nil
}
