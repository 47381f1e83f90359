package deploy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/fleetstream/fleetstream/connectors/tasks"
)

var update = flag.Bool("update", false, "rewrite kubernetes/fleetstream.yaml from the chart")

const (
	chartDir      = "helm/fleetstream"
	manifestsFile = "kubernetes/fleetstream.yaml"
	exampleValues = "kubernetes/values.yaml"
)

// render renders the chart as `helm template fleetstream -n fleetstream`
// would, with values over the chart's defaults. Strict: a template that
// reads a value the chart does not define fails.
func render(values map[string]any) (map[string]string, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	if err := chrt.Validate(); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	opts := chartutil.ReleaseOptions{Name: "fleetstream", Namespace: "fleetstream", Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(chrt, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(chrt, vals)
}

// valuesFile reads a values file.
func valuesFile(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart writes; strict decoding rejects anything else.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// object is one decoded manifest.
type object struct {
	source string // file and document index
	kind   string
	name   string
	value  any // *appsv1.Deployment, *corev1.Service, ...
}

// newObject returns an empty typed object for apiVersion and kind.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "batch/v1 Job":
		return &batchv1.Job{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 Secret":
		return &corev1.Secret{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}, true
	}
	return nil, false
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// decode splits YAML documents and decodes each strictly into its
// Kubernetes type: an unknown or misplaced field, a wrong type or an
// invalid quantity fails.
func decode(source, text string) ([]object, error) {
	var objs []object
	for i, doc := range docSeparator.Split(text, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("%s #%d: %w", source, i, err)
		}
		v, ok := newObject(meta.APIVersion, meta.Kind)
		if !ok {
			return nil, fmt.Errorf("%s #%d: no schema for %s %s", source, i, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("%s #%d (%s): %w", source, i, meta.Kind, err)
		}
		name := v.(metav1.Object).GetName()
		objs = append(objs, object{source: fmt.Sprintf("%s #%d", source, i), kind: meta.Kind, name: name, value: v})
	}
	return objs, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// decodeRendered decodes every rendered template but NOTES.txt.
func decodeRendered(rendered map[string]string) ([]object, error) {
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	sort.Strings(names)
	var all []object
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		objs, err := decode(n, rendered[n])
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// podOf returns the pod template and role (the container's first argument)
// of a Deployment or Job.
func podOf(o object) (*corev1.PodTemplateSpec, bool) {
	switch v := o.value.(type) {
	case *appsv1.Deployment:
		return &v.Spec.Template, true
	case *batchv1.Job:
		return &v.Spec.Template, true
	}
	return nil, false
}

// problems checks what Kubernetes would reject or what would break at run
// time: names and labels, selectors, probes, references to ConfigMaps,
// Secrets, volumes and ports, and every environment variable against the
// flags of the role that reads it.
func problems(t *testing.T, objs []object) []string {
	t.Helper()
	var out []string
	add := func(o object, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s %s %q: ", o.source, o.kind, o.name)+fmt.Sprintf(format, args...))
	}
	configMaps := map[string]*corev1.ConfigMap{}
	var secret *corev1.Secret
	podLabels := map[string]labels.Set{}
	for _, o := range objs {
		m := o.value.(metav1.Object)
		for _, e := range validation.IsDNS1123Subdomain(m.GetName()) {
			add(o, "name: %s", e)
		}
		for k, v := range m.GetLabels() {
			for _, e := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				add(o, "label %s=%s: %s", k, v, e)
			}
		}
		switch v := o.value.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
			for k := range v.Data {
				for _, e := range validation.IsEnvVarName(k) {
					add(o, "key %s: %s", k, e)
				}
			}
		case *corev1.Secret:
			secret = v
		case *corev1.Service:
			for _, e := range validation.IsDNS1035Label(v.Name) {
				add(o, "Service name: %s", e)
			}
		case *appsv1.Deployment:
			sel, err := metav1.LabelSelectorAsSelector(v.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(v.Spec.Template.Labels)) {
				add(o, "selector %v does not select the pod template's labels %v", v.Spec.Selector, v.Spec.Template.Labels)
			}
			if v.Spec.Replicas == nil || *v.Spec.Replicas < 1 {
				add(o, "replicas must be set and positive")
			}
			podLabels[v.Name] = v.Spec.Template.Labels
		}
	}
	for _, o := range objs {
		pod, ok := podOf(o)
		if !ok {
			continue
		}
		volumes := map[string]bool{}
		for _, v := range pod.Spec.Volumes {
			volumes[v.Name] = true
			if cm := v.ConfigMap; cm != nil && configMaps[cm.Name] == nil && (cm.Optional == nil || !*cm.Optional) {
				add(o, "volume %s names ConfigMap %s, which is not rendered", v.Name, cm.Name)
			}
		}
		for _, c := range pod.Spec.Containers {
			if len(c.Args) == 0 {
				add(o, "container %s runs no role", c.Name)
				continue
			}
			role := c.Args[0]
			var env []string
			for _, e := range c.Env {
				env = append(env, e.Name)
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && secret != nil && ref.SecretKeyRef.Name == secret.Name {
					if _, ok := secret.Data[ref.SecretKeyRef.Key]; !ok && (ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional) {
						add(o, "%s reads key %s that Secret %s lacks", e.Name, ref.SecretKeyRef.Key, secret.Name)
					}
				}
			}
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef == nil {
					add(o, "envFrom other than a ConfigMap")
					continue
				}
				cm, ok := configMaps[from.ConfigMapRef.Name]
				if !ok {
					add(o, "envFrom names ConfigMap %s, which is not rendered", from.ConfigMapRef.Name)
					continue
				}
				for k := range cm.Data {
					env = append(env, k)
				}
			}
			if bad := unknownEnv(t, role, env); len(bad) > 0 {
				add(o, "fleetstream %s has no flag for %v", role, bad)
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					add(o, "mounts volume %s, which the pod lacks", m.Name)
				}
			}
			if _, isDeployment := o.value.(*appsv1.Deployment); !isDeployment {
				continue
			}
			ports := map[string]bool{}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || !ports[probe.HTTPGet.Port.String()] {
					add(o, "container %s needs an HTTP probe on %s at a named port it exposes, got %+v", c.Name, want, probe)
				}
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				add(o, "container %s needs a CPU request and a memory limit", c.Name)
			}
		}
	}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *corev1.Service:
			n := 0
			for _, l := range podLabels {
				if labels.SelectorFromSet(v.Spec.Selector).Matches(l) {
					n++
				}
			}
			if n != 1 {
				add(o, "selector %v matches %d Deployments, want 1", v.Spec.Selector, n)
			}
		case *serviceMonitor:
			if len(v.Spec.Endpoints) == 0 || v.Spec.Endpoints[0].Path != "/metrics" {
				add(o, "needs an endpoint on /metrics")
			}
		}
	}
	return out
}

func renderAndCheck(t *testing.T, values map[string]any) []object {
	t.Helper()
	rendered, err := render(values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := decodeRendered(rendered)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems(t, objs) {
		t.Error(p)
	}
	return objs
}

func kinds(objs []object) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o.kind]++
	}
	return n
}

// minimal are the values every installation must give.
func minimal() map[string]any {
	return map[string]any{
		"kafka":      map[string]any{"brokers": []any{"kafka-0.kafka:9092", "kafka-1.kafka:9092"}},
		"clickhouse": map[string]any{"addr": "clickhouse:9000", "password": "pw"},
		"secrets":    map[string]any{"agentKeySecret": "agents", "apiKeys": "admin:s3cret:read,write"},
	}
}

func TestChartMinimal(t *testing.T) {
	objs := renderAndCheck(t, minimal())
	got := kinds(objs)
	want := map[string]int{"Deployment": 5, "Service": 5, "ConfigMap": 6, "Secret": 1, "Job": 1, "ServiceAccount": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s, want %d (all: %v)", got[k], k, n, got)
		}
	}
	for _, o := range objs {
		if cm, ok := o.value.(*corev1.ConfigMap); ok && o.name == "fleetstream-sink" {
			if cm.Data["FLEETSTREAM_BROKERS"] != "kafka-0.kafka:9092,kafka-1.kafka:9092" || cm.Data["FLEETSTREAM_CLICKHOUSE"] != "clickhouse:9000" {
				t.Errorf("sink configuration: %v", cm.Data)
			}
			if _, ok := cm.Data["FLEETSTREAM_KAFKA_TLS"]; ok {
				t.Error("TLS is on by default")
			}
		}
	}
}

// collect runs the scheduler from the jobs of its values: a ConfigMap
// holding a file `fleetstream collect --schedule` accepts, mounted where
// FLEETSTREAM_SCHEDULE points; provider settings and credentials reach
// the variables the role reads.
func TestChartCollect(t *testing.T) {
	v := minimal()
	v["secrets"].(map[string]any)["vspherePassword"] = "vc-secret"
	v["collect"] = map[string]any{
		"schedule": map[string]any{"jobs": []any{
			map[string]any{"name": "aws-hourly", "spec": "@hourly", "type": "aws.collect_all", "payload": map[string]any{"regions": []any{"eu-west-1"}}},
			map[string]any{"name": "vcenter", "spec": "*/15 * * * *", "type": "vsphere.collect_all", "priority": "low"},
		}},
		"vsphere": map[string]any{"url": "https://vc.example.com/sdk", "username": "collector", "insecure": true},
	}
	objs := renderAndCheck(t, v)
	byName := map[string]object{}
	for _, o := range objs {
		byName[o.kind+"/"+o.name] = o
	}
	dep, ok := byName["Deployment/fleetstream-collect"]
	if !ok {
		t.Fatal("no collect Deployment")
	}
	pod, _ := podOf(dep)
	c := pod.Spec.Containers[0]
	if c.Args[0] != "collect" {
		t.Fatalf("collect runs %v", c.Args)
	}
	config := byName["ConfigMap/fleetstream-collect"].value.(*corev1.ConfigMap).Data
	if config["FLEETSTREAM_VSPHERE_URL"] != "https://vc.example.com/sdk" || config["FLEETSTREAM_VSPHERE_INSECURE"] != "true" || config["FLEETSTREAM_LISTEN"] != ":8080" {
		t.Errorf("collect configuration: %v", config)
	}
	path := config["FLEETSTREAM_SCHEDULE"]
	mountedFrom := ""
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, m.MountPath+"/") {
			for _, vol := range pod.Spec.Volumes {
				if vol.Name == m.Name && vol.ConfigMap != nil {
					mountedFrom = vol.ConfigMap.Name
				}
			}
		}
	}
	sched, ok := byName["ConfigMap/"+mountedFrom]
	if !ok {
		t.Fatalf("FLEETSTREAM_SCHEDULE=%q is not a file of a mounted ConfigMap (mounts %v)", path, c.VolumeMounts)
	}
	file, ok := sched.value.(*corev1.ConfigMap).Data[filepath.Base(path)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", mountedFrom, filepath.Base(path))
	}
	jobs, err := tasks.ParseJobs([]byte(file))
	if err != nil {
		t.Fatalf("the rendered schedule is refused: %v\n%s", err, file)
	}
	if len(jobs) != 2 || jobs[0].Name != "aws-hourly" || jobs[1].Priority != "low" {
		t.Errorf("schedule jobs: %+v", jobs)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env[e.Name] = e.ValueFrom.SecretKeyRef.Key
		}
	}
	if env["FLEETSTREAM_VSPHERE_PASSWORD"] != "vsphere-password" || env["AWS_ACCESS_KEY_ID"] != "aws-access-key-id" || env["AWS_SECRET_ACCESS_KEY"] != "aws-secret-access-key" {
		t.Errorf("collect's secret variables: %v", env)
	}
	if _, ok := byName["Secret/fleetstream"].value.(*corev1.Secret).Data["vsphere-password"]; !ok {
		t.Error("the vCenter password is not in the Secret")
	}

	// A ConfigMap of one's own is mounted instead; the check notices it is
	// not part of the release.
	v["collect"].(map[string]any)["schedule"] = map[string]any{"existingConfigMap": "my-schedule"}
	rendered, err := render(v)
	if err != nil {
		t.Fatal(err)
	}
	objs, err = decodeRendered(rendered)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range problems(t, objs) {
		found = found || strings.Contains(p, "names ConfigMap my-schedule, which is not rendered")
	}
	if !found {
		t.Error("collect does not mount collect.schedule.existingConfigMap, or the check misses an absent ConfigMap")
	}

	// Without jobs there is no scheduler: no file, no variable, no volume.
	objs = renderAndCheck(t, minimal())
	for _, o := range objs {
		if o.name == "fleetstream-collect-schedule" {
			t.Error("a schedule ConfigMap without jobs")
		}
		if cm, ok := o.value.(*corev1.ConfigMap); ok && cm.Data["FLEETSTREAM_SCHEDULE"] != "" {
			t.Errorf("%s sets FLEETSTREAM_SCHEDULE without jobs", o.name)
		}
	}
}

// With TLS for both, SASL, an existing Secret and a ServiceMonitor, every
// role reads its certificates, password and settings.
func TestChartSecured(t *testing.T) {
	objs := renderAndCheck(t, valuesFile(t, exampleValues))
	if kinds(objs)["ServiceMonitor"] != 1 || kinds(objs)["Secret"] != 0 {
		t.Fatalf("kinds: %v, want a ServiceMonitor and no Secret (existingSecret)", kinds(objs))
	}
	for _, o := range objs {
		pod, ok := podOf(o)
		if !ok {
			continue
		}
		c := pod.Spec.Containers[0]
		var cm *corev1.ConfigMap
		for _, p := range objs {
			if p.name == c.EnvFrom[0].ConfigMapRef.Name && p.kind == "ConfigMap" {
				cm = p.value.(*corev1.ConfigMap)
			}
		}
		if cm.Data["FLEETSTREAM_KAFKA_TLS_CA"] != "/etc/fleetstream/tls/kafka/ca.crt" || cm.Data["FLEETSTREAM_KAFKA_SASL_MECHANISM"] != "SCRAM-SHA-512" {
			t.Errorf("%s: Kafka security settings missing: %v", o.name, cm.Data)
		}
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounted[m.MountPath] = true
		}
		if !mounted["/etc/fleetstream/tls/kafka"] {
			t.Errorf("%s does not mount the Kafka certificates", o.name)
		}
		hasPassword := false
		for _, e := range c.Env {
			if e.Name == "FLEETSTREAM_KAFKA_SASL_PASSWORD" && e.ValueFrom.SecretKeyRef.Name == "fleetstream-secrets" {
				hasPassword = true
			}
		}
		if !hasPassword {
			t.Errorf("%s does not read the SASL password from the existing Secret", o.name)
		}
		if _, ok := cm.Data["FLEETSTREAM_CLICKHOUSE"]; ok && !mounted["/etc/fleetstream/tls/clickhouse"] {
			t.Errorf("%s talks to ClickHouse without its certificates", o.name)
		}
	}
}

func TestChartRefusesIncompleteValues(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(v map[string]any)
		want string
	}{
		"no brokers":    {func(v map[string]any) { v["kafka"] = map[string]any{"brokers": []any{}} }, "kafka.brokers"},
		"no ClickHouse": {func(v map[string]any) { v["clickhouse"] = map[string]any{"addr": ""} }, "clickhouse.addr"},
		"no API keys":   {func(v map[string]any) { v["secrets"] = map[string]any{"agentKeySecret": "a"} }, "secrets.apiKeys"},
		"SASL, no password": {func(v map[string]any) {
			v["kafka"] = map[string]any{"brokers": []any{"k:9092"}, "sasl": map[string]any{"mechanism": "SCRAM-SHA-256", "user": "u"}}
		}, "kafka.sasl.password"},
	} {
		t.Run(name, func(t *testing.T) {
			v := minimal()
			tc.edit(v)
			_, err := render(v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// The checks catch drift: an environment variable no flag reads, and a
// field Kubernetes does not know.
func TestChecksCatchDrift(t *testing.T) {
	v := minimal()
	v["sink"] = map[string]any{"extraEnv": []any{map[string]any{"name": "FLEETSTREAM_BATCH_SIZE", "value": "5"}}}
	rendered, err := render(v)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeRendered(rendered)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range problems(t, objs) {
		found = found || strings.Contains(p, "fleetstream sink has no flag for [FLEETSTREAM_BATCH_SIZE]")
	}
	if !found {
		t.Error("an environment variable the sink does not read went unnoticed")
	}
	_, err = decode("typo", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selectr: {a: b}\n")
	if err == nil || !strings.Contains(err.Error(), `unknown field "selectr"`) {
		t.Errorf("strict decoding: got %v, want an unknown field error", err)
	}
}

// kubernetes/fleetstream.yaml is the chart rendered with
// kubernetes/values.yaml, for kubectl apply; it must match the chart.
func TestRenderedManifestsAreCurrent(t *testing.T) {
	rendered, err := render(valuesFile(t, exampleValues))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		if !strings.HasSuffix(n, "NOTES.txt") && strings.TrimSpace(stripComments(rendered[n])) != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# Generated from helm/fleetstream with kubernetes/values.yaml by\n# `make deploy-manifests` (helm template fleetstream -n fleetstream): do not edit.\n")
	for _, n := range names {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", n, strings.Trim(rendered[n], "\n-"))
	}
	if *update {
		if err := os.WriteFile(manifestsFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	current, err := os.ReadFile(manifestsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(current, b.Bytes()) {
		t.Fatalf("%s is out of date with the chart: run make deploy-manifests", manifestsFile)
	}
	objs, err := decode(filepath.Base(manifestsFile), string(current))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems(t, objs) {
		t.Error(p)
	}
}
