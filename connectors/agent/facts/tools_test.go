package facts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toolDir returns a directory holding executable shell scripts named by
// scripts' keys: the tools a host would have, printing what the real ones
// print (testdata files) through the same Run and parse code.
func toolDir(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCibadminOutputIsParsed(t *testing.T) {
	dir := toolDir(t, map[string]string{
		"cibadmin": `[ "$*" = "--query --local" ] || { echo "unexpected arguments: $*" >&2; exit 64; }; cat ` + abs(t, "testdata/cib.xml"),
	})
	cib := gather(t, testRegistry(t, dir), "cibadmin@v1", "").(map[string]any)["cib"].(map[string]any)
	if cib["validate-with"] != "pacemaker-3.9" || cib["have-quorum"] != "1" {
		t.Errorf("cib attributes: %v", cib)
	}
	conf := cib["configuration"].(map[string]any)
	props := conf["crm_config"].(map[string]any)["cluster_property_set"].([]any)[0].(map[string]any)
	if props["id"] != "cib-bootstrap-options" {
		t.Errorf("property set: %v", props)
	}
	nv := map[string]any{}
	for _, p := range props["nvpair"].([]any) {
		nv[p.(map[string]any)["name"].(string)] = p.(map[string]any)["value"]
	}
	if nv["stonith-enabled"] != "true" || nv["stonith-timeout"] != "150" || len(nv) != 8 {
		t.Errorf("cluster properties: %v", nv)
	}
	res := conf["resources"].(map[string]any)
	// primitive, clone, master are lists even when there is one; operations is not a listed element.
	if n := len(res["primitive"].([]any)); n != 2 {
		t.Errorf("%d top-level primitives, want 2", n)
	}
	hana := res["master"].([]any)[0].(map[string]any)["primitive"].([]any)[0].(map[string]any)
	ops := hana["operations"].(map[string]any)["op"].([]any)
	if hana["type"] != "SAPHana" || len(ops) != 5 || ops[3].(map[string]any)["role"] != "Master" {
		t.Errorf("SAPHana primitive: %v", hana)
	}
	if got := asJSON(t, conf["rsc_defaults"].(map[string]any)["meta_attributes"].([]any)[0].(map[string]any)["nvpair"].([]any)[0]); got !=
		`{"id":"rsc-options-resource-stickiness","name":"resource-stickiness","value":"1000"}` {
		t.Errorf("resource-stickiness: %s", got)
	}
	if got := asJSON(t, conf["constraints"].(map[string]any)["rsc_order"]); !strings.HasPrefix(got, `[{"first":"cln_SAPHanaTopology_PRD_HDB00"`) {
		t.Errorf("order constraint: %s", got)
	}
	state := cib["status"].(map[string]any)["node_state"].([]any)[0].(map[string]any)
	op := state["lrm"].(map[string]any)["lrm_resources"].(map[string]any)["lrm_resource"].([]any)[0].(map[string]any)["lrm_rsc_op"].([]any)[0].(map[string]any)
	if state["crmd"] != "online" || op["rc-code"] != "0" {
		t.Errorf("status: %v / %v", state, op)
	}
}

func TestParseCIB(t *testing.T) {
	got, err := ParseCIB(strings.NewReader(`<cib><configuration><nodes/><x a="1"/><x a="2"/><description> a text </description></configuration></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	if s := asJSON(t, got); s != `{"cib":{"configuration":{"description":{"#text":"a text"},"nodes":{},"x":[{"a":"1"},{"a":"2"}]}}}` {
		t.Errorf("parsed %s", s)
	}
	for doc, want := range map[string]string{
		"":                     "no element",
		"<cib><configuration>": "unexpected EOF",
		"<cib/><cib/>":         "a second root element",
		"Could not connect":    "no element",
	} {
		if _, err := ParseCIB(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

func TestCibadminWithoutPacemakerRunning(t *testing.T) {
	dir := toolDir(t, map[string]string{"cibadmin": `echo "Could not connect to the CIB: Transport endpoint is not connected" >&2; echo "Init failed, could not perform requested operations" >&2; exit 107`})
	_, err := testRegistry(t, dir).Gather(context.Background(), "cibadmin@v1", "")
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "is pacemaker running on this host?): cibadmin exited with status 107: Could not connect to the CIB: Transport endpoint is not connected") {
		t.Errorf("error %v", err)
	}
}

func TestSaptuneStatus(t *testing.T) {
	// saptune exits 4 when the system is not compliant, and still answers.
	dir := toolDir(t, map[string]string{"saptune": `[ "$*" = "--format json status" ] || exit 64; cat ` + abs(t, "testdata/saptune-status.json") + `; exit 4`})
	st := gather(t, testRegistry(t, dir), "saptune@v1", "").(map[string]any)
	result := st["result"].(map[string]any)
	if result["tuning state"] != "not compliant" || asJSON(t, result["Solution enabled"]) != `["NETWEAVER"]` || st["exit code"] != 4.0 {
		t.Errorf("saptune status: %v", st)
	}
	old := toolDir(t, map[string]string{"saptune": `echo "saptune: unknown option --format" >&2; exit 1`})
	if _, err := testRegistry(t, old).Gather(context.Background(), "saptune@v1", ""); err == nil || !strings.Contains(err.Error(), "saptune exited with status 1: saptune: unknown option --format") {
		t.Errorf("old saptune: %v", err)
	}
	text := toolDir(t, map[string]string{"saptune": `echo "Solution enabled: HANA"`})
	if _, err := testRegistry(t, text).Gather(context.Background(), "saptune@v1", ""); err == nil || !strings.Contains(err.Error(), "saptune 3.1 or newer is needed") {
		t.Errorf("text answer: %v", err)
	}
}

func TestPackageVersionWithRPM(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/sysimage/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	// rpm prints one line per installed version; the last is the latest installed.
	dir := toolDir(t, map[string]string{
		"rpm": `last=""; for a; do last=$a; done
case "$last" in
kernel-default) printf '5.14.21-150500.55.19.1\n5.14.21-150500.55.31.1\n' ;;
pacemaker) printf '2.1.5+20221208.a3f44794f-150500.6.5.3\n' ;;
*) echo "package $last is not installed"; exit 1 ;;
esac`,
		"dpkg-query": `exit 99`,
	})
	r := NewRegistry(Config{Root: root, Path: []string{dir}})
	for pkg, want := range map[string]any{"pacemaker": "2.1.5+20221208.a3f44794f-150500.6.5.3", "kernel-default": "5.14.21-150500.55.31.1", "corosync": nil} {
		if v := gather(t, r, "package_version@v1", pkg); v != want {
			t.Errorf("%s: %#v, want %#v", pkg, v, want)
		}
	}
}

func TestGatherTimesOut(t *testing.T) {
	dir := toolDir(t, map[string]string{"cibadmin": `sleep 10`})
	r := NewRegistry(Config{Root: "testdata/root", Path: []string{dir}, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := r.Gather(context.Background(), "cibadmin@v1", "")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not gathered within 200ms") || time.Since(start) > 5*time.Second {
		t.Errorf("after %s: %v", time.Since(start), err)
	}
}

func TestAPanickingGathererIsAnError(t *testing.T) {
	r := testRegistry(t)
	r.gatherers["boom@v1"] = GathererFunc(func(context.Context, string) (any, error) { panic("index out of range") })
	if _, err := r.Gather(context.Background(), "boom@v1", ""); err == nil || !strings.Contains(err.Error(), "gatherer boom@v1 failed unexpectedly: index out of range") {
		t.Errorf("error %v", err)
	}
}

func TestSystemdOutputIsParsed(t *testing.T) {
	dir := toolDir(t, map[string]string{"systemctl": `[ "$*" = "show --no-pager -p ActiveState,UnitFileState,LoadState pacemaker.service" ] || exit 64
printf 'LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n'`})
	if got := asJSON(t, gather(t, testRegistry(t, dir), "systemd@v1", "pacemaker.service")); got != `{"active_state":"active","load_state":"loaded","unit_file_state":"enabled"}` {
		t.Errorf("pacemaker.service: %s", got)
	}
}
