package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/fleetstream/fleetstream/connectors/tasks"
)

// composeFile is the part of the Compose Specification docker-compose.yml
// uses; strict decoding rejects any other field (x- extensions aside).
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Image       string                                `json:"image"`
	Hostname    string                                `json:"hostname"`
	Build       *struct{ Context, Dockerfile string } `json:"build"`
	Command     []string                              `json:"command"`
	Environment map[string]string                     `json:"environment"`
	Ports       []string                              `json:"ports"`
	Volumes     []string                              `json:"volumes"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test        []string `json:"test"`
		Interval    string   `json:"interval"`
		Timeout     string   `json:"timeout"`
		Retries     int      `json:"retries"`
		StartPeriod string   `json:"start_period"`
	} `json:"healthcheck"`
	Ulimits  map[string]struct{ Soft, Hard int } `json:"ulimits"`
	Profiles []string                            `json:"profiles"`
	Restart  string                              `json:"restart"`
}

// composeJSON resolves YAML anchors and merge keys as Compose does and
// returns the file as JSON.
func composeJSON(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return js
}

// The file validates against the Compose Specification's schema, which
// `docker compose config` applies.
func TestComposeMatchesSpecification(t *testing.T) {
	schemaFile, err := os.Open("testdata/compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	defer schemaFile.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("compose_spec.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("compose_spec.json")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(js []byte) error {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			return err
		}
		return schema.Validate(doc)
	}
	if err := validate(composeJSON(t, "docker-compose.yml")); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if err := validate([]byte(`{"services": {"api": {"image": "x", "restart": "sometimes", "dependson": ["kafka"]}}}`)); err == nil {
		t.Fatal("the schema accepted an unknown service field")
	}
}

func TestComposeServices(t *testing.T) {
	js := composeJSON(t, "docker-compose.yml")
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	for k := range top {
		if strings.HasPrefix(k, "x-") {
			delete(top, k)
		}
	}
	js, _ = json.Marshal(top)
	var f composeFile
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml uses a field this test does not know (add it to composeFile): %v", err)
	}

	fleetstream := 0
	for name, s := range f.Services {
		for dep, d := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			if !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition) {
				t.Errorf("%s: depends_on %s has condition %q", name, dep, d.Condition)
			}
			if d.Condition == "service_healthy" && f.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := f.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %s, which is not declared", name, src)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s builds from %s: %v", name, s.Build.Dockerfile, err)
			}
		}
		if !strings.Contains(s.Image, "FLEETSTREAM_IMAGE") {
			continue
		}
		fleetstream++
		role := s.Command[0]
		if role != "migrate" && s.DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s starts before migrate completed", name)
		}
		var env []string
		for k := range s.Environment {
			env = append(env, k)
		}
		if bad := unknownEnv(t, role, env); len(bad) > 0 {
			t.Errorf("service %s: fleetstream %s has no flag for %v", name, role, bad)
		}
	}
	if fleetstream != 6 {
		t.Errorf("%d fleetstream services, want migrate and the five roles", fleetstream)
	}
}

// Every variable the file requires (${VAR:?...}) is in .env.example.
func TestComposeVariablesAreDocumented(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	required := regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllSubmatch(raw, -1)
	if len(required) == 0 {
		t.Fatal("no required variables found: has the file's syntax changed?")
	}
	for _, m := range required {
		if !regexp.MustCompile(`(?m)^` + string(m[1]) + `=`).Match(example) {
			t.Errorf("%s is required by docker-compose.yml but not set in .env.example", m[1])
		}
	}
}

// prometheus/prometheus.yml scrapes every fleetstream role of the compose
// file on its listen port.
func TestPrometheusScrapesEveryRole(t *testing.T) {
	type config struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		ScrapeConfigs []struct {
			JobName      string `json:"job_name"`
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	raw, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]bool{}
	for _, s := range c.ScrapeConfigs {
		for _, d := range s.DNSSDConfigs {
			for _, n := range d.Names {
				scraped[n] = d.Port == 8080 && d.Type == "A" && s.JobName == "fleetstream-"+n
			}
		}
	}
	for _, role := range roles {
		if role == "migrate" {
			continue
		}
		if !scraped[role] {
			t.Errorf("role %s is not scraped as job fleetstream-%s on port 8080", role, role)
		}
	}
}

// The example schedule docker-compose.yml mounts for collect is one
// `fleetstream collect --schedule` accepts.
func TestComposeScheduleExample(t *testing.T) {
	raw, err := os.ReadFile("collect/schedule.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := tasks.ParseJobs(raw)
	if err != nil {
		t.Fatalf("collect/schedule.example.yaml: %v", err)
	}
	if len(jobs) == 0 {
		t.Error("collect/schedule.example.yaml has no jobs")
	}
}
