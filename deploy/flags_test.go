package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// raceEnabled is set by race_test.go.
var raceEnabled bool

// roles are the subcommands the manifests run.
var roles = []string{"ingest", "process", "sink", "api", "collect", "migrate"}

// libraryEnv are, per role, the packages (besides the fleetstream flags)
// whose environment variables the role reads: collect's AWS collector
// takes its credentials from the AWS SDK's default chain. The names are
// read from the package's source, the version go.mod pins.
var libraryEnv = map[string]string{"collect": "github.com/aws/aws-sdk-go-v2/config"}

// awsEnvName is a string literal naming an AWS SDK variable.
var awsEnvName = regexp.MustCompile(`"(AWS_[A-Z0-9_]+)"`)

var (
	flagsOnce sync.Once
	flagsErr  error
	// roleEnv maps a role to the environment variables its flags read.
	roleEnv map[string]map[string]bool
)

// flagLine is one flag in cobra's help: "  -h, --help   ...".
var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)

// envOf returns, per role, the FLEETSTREAM_* variables the fleetstream
// binary reads (flagsFromEnv in cmd/fleetstream: the flag name upper-cased,
// dashes as underscores). It builds the binary and reads each role's --help,
// so the check follows the code, not a copy of its flag list.
func envOf(t *testing.T) map[string]map[string]bool {
	t.Helper()
	flagsOnce.Do(func() { roleEnv, flagsErr = readRoleEnv() })
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return roleEnv
}

func readRoleEnv() (map[string]map[string]bool, error) {
	dir, err := os.MkdirTemp("", "fleetstream-deploy-test")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fleetstream")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/fleetstream")...)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ../cmd/fleetstream: %v\n%s", err, out)
	}
	env := map[string]map[string]bool{}
	for _, role := range roles {
		out, err := exec.Command(bin, role, "--help").Output()
		if err != nil {
			return nil, fmt.Errorf("fleetstream %s --help: %w", role, err)
		}
		env[role] = map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if m := flagLine.FindStringSubmatch(sc.Text()); m != nil && m[1] != "help" {
				env[role]["FLEETSTREAM_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
			}
		}
		if !env[role]["FLEETSTREAM_BROKERS"] {
			return nil, fmt.Errorf("fleetstream %s --help lists no --brokers: has the help format changed?\n%s", role, out)
		}
		if pkg, ok := libraryEnv[role]; ok {
			names, err := sdkEnv(pkg)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				env[role][n] = true
			}
		}
	}
	return env, nil
}

// sdkEnv returns the AWS_* variables the Go files of pkg name.
func sdkEnv(pkg string) ([]string, error) {
	dir, err := exec.Command("go", "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w", pkg, err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(dir)), "*.go"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range awsEnvName.FindAllSubmatch(src, -1) {
			names = append(names, string(m[1]))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s names no AWS_* variable: has the SDK moved them?", pkg)
	}
	return names, nil
}

// unknownEnv returns the names in names that role does not read, sorted.
func unknownEnv(t *testing.T, role string, names []string) []string {
	t.Helper()
	known, ok := envOf(t)[role]
	if !ok {
		return []string{"(no role " + role + ")"}
	}
	var bad []string
	for _, n := range names {
		if !known[n] {
			bad = append(bad, n)
		}
	}
	sort.Strings(bad)
	return bad
}

func TestRoleFlagsAreRead(t *testing.T) {
	env := envOf(t)
	for _, want := range []struct{ role, env string }{
		{"ingest", "FLEETSTREAM_AGENT_KEY_SECRET"},
		{"api", "FLEETSTREAM_API_KEYS"},
		{"sink", "FLEETSTREAM_KAFKA_SASL_PASSWORD"},
		{"migrate", "FLEETSTREAM_CLICKHOUSE_TLS_CA"},
		{"process", "FLEETSTREAM_LOG_LEVEL"},
		{"collect", "FLEETSTREAM_SCHEDULE"},
		{"collect", "FLEETSTREAM_VSPHERE_PASSWORD"},
		{"collect", "AWS_ACCESS_KEY_ID"},
		{"collect", "AWS_SECRET_ACCESS_KEY"},
	} {
		if !env[want.role][want.env] {
			t.Errorf("%s does not read %s", want.role, want.env)
		}
	}
	if env["ingest"]["AWS_ACCESS_KEY_ID"] {
		t.Error("ingest is said to read the AWS SDK's variables: only collect runs the AWS collector")
	}
	if env["process"]["FLEETSTREAM_CLICKHOUSE"] {
		t.Error("process reads FLEETSTREAM_CLICKHOUSE: the role set of a flag changed, update the manifests")
	}
}
