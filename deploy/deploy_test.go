// Package deploy_test checks the deployment files without starting them: no
// Docker engine or cluster runs in CI. It is a module of its own
// (deploy/go.mod, the root module by a replace directive), so that the root
// module, and a newcomer's go run ./cmd/all-in-one, needs none of the
// Kubernetes, Prometheus or Helm packages these tests use. Every Kubernetes
// manifest is decoded strictly into the Kubernetes API types,
// docker-compose.yml into the subset of the compose schema it uses (unknown
// keys fail), and every environment variable they set is checked against the
// settings tables of the binary that reads it; each service's environment is
// then run through that binary's own config parser, so that a required
// setting left out fails here rather than at start. Renaming a variable in a
// settings table makes these tests fail until the files follow. The alert
// rules and the dashboard are checked against the metrics the binaries
// register (alerts_test.go).
package deploy_test

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// repoRoot is where docker-compose.yml, the Dockerfile and go.mod live.
const repoRoot = ".."

// binary is one program the deployment files run: the settings it reads and
// its own check of a complete environment.
type binary struct {
	name     string
	settings []settings.Setting
	// listenEnv is the setting holding the address its probes reach.
	listenEnv string
	// parse runs the binary's own configuration checks on getenv.
	parse func(getenv func(string) string) error
}

// binaries are the programs the files start, by the name the Dockerfile's
// CMD argument and the Kubernetes container use. cmd/ingest reads
// services.IngestSettings(), which merges the intake's, forwarding's and the
// registry API's settings (INTAKE_*, FORWARD_*, REGISTRY_KEY, GRAPH_API_*,
// CAPI_ACCESS_TOKEN), so they are checked here with ingest's own.
var binaries = map[string]binary{
	"ingest": {
		name:      "ingest",
		settings:  services.IngestSettings(),
		listenEnv: "INGEST_ADDR",
		parse: func(getenv func(string) string) error {
			cfg, _, err := services.ParseIngest(nil, getenv)
			if err == nil && cfg.RedisURL == "" { // checked by cmd/ingest's run
				err = fmt.Errorf("config: REDIS_URL is required")
			}
			return err
		},
	},
	"sender": {
		name:      "sender",
		settings:  sender.Settings(),
		listenEnv: "METRICS_ADDR",
		parse: func(getenv func(string) string) error {
			_, err := sender.ParseConfig(nil, getenv)
			return err
		},
	},
}

// binaryFor is binaries[name], or for "all-in-one" a binary with every
// ingest and sender setting and the all-in-one's own (read from the source
// of its settings table, cmd/all-in-one/config.go: package main cannot be
// imported) and no parser.
func binaryFor(t *testing.T, name string) (binary, bool) {
	t.Helper()
	if name != "all-in-one" {
		b, ok := binaries[name]
		return b, ok
	}
	src, err := os.ReadFile(filepath.Join(repoRoot, "cmd", "all-in-one", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	own := regexp.MustCompile(`\{Env: "([A-Z0-9_]+)"(, Flag: "([a-z0-9-]+)")?`).FindAllStringSubmatch(string(src), -1)
	if len(own) == 0 {
		t.Fatal("cmd/all-in-one/config.go: no settings found")
	}
	b := binary{name: name, listenEnv: "INGEST_ADDR"}
	b.settings = append(append(b.settings, services.IngestSettings()...), sender.Settings()...)
	for _, m := range own {
		b.settings = append(b.settings, settings.Setting{Env: m[1], Flag: m[3]})
	}
	return b, true
}

// lookup returns the setting of env, if the binary reads it.
func (b binary) lookup(env string) (settings.Setting, bool) {
	for _, s := range b.settings {
		if s.Env == env {
			return s, true
		}
	}
	return settings.Setting{}, false
}

// isSecret reports whether env is a secret: the settings package gives
// secrets no flag, because flags show in ps.
func (b binary) isSecret(env string) bool {
	s, ok := b.lookup(env)
	return ok && s.Flag == ""
}

// listenPort is the port of the binary's listen address in env, or its
// default.
func (b binary) listenPort(t *testing.T, getenv func(string) string) string {
	t.Helper()
	addr := getenv(b.listenEnv)
	if addr == "" {
		s, _ := b.lookup(b.listenEnv)
		addr = s.Default
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %s=%q is not host:port", b.name, b.listenEnv, addr)
	}
	return port
}

// datasetEnvs are the variables a CAPI_DATASETS_FILE names
// (access_token_env, app_secret_env): the sender reads them too.
func datasetEnvs(t *testing.T, data []byte) []string {
	t.Helper()
	var raw map[string]map[string]string
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		t.Fatalf("datasets file: %v", err)
	}
	var out []string
	for _, e := range raw {
		for _, k := range []string{"access_token_env", "app_secret_env"} {
			if e[k] != "" {
				out = append(out, e[k])
			}
		}
	}
	return out
}

// placeholder stands for a value the operator provides (a Secret, an .env
// entry); long enough for every length check.
const placeholder = "operator-provided-0123456789abcdef"

// placeholderFor is placeholder, or for a setting with a format, a value
// in that format.
func placeholderFor(name string) string {
	switch name {
	case "FORWARD_URLS":
		return "https://inbox.example.com/meta/webhook"
	case "REGISTRY_KEY":
		return "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	}
	return placeholder
}

// ---------------------------------------------------------------------------
// Kubernetes

// manifests decodes every document under k8s/ strictly into its API type.
type manifests struct {
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	// others are the documents of kinds outside k8s.io/api (a
	// ServiceMonitor), decoded as plain maps.
	others []map[string]any
}

// workload is a Deployment's or StatefulSet's pod template.
type workload struct {
	name   string
	spec   corev1.PodSpec
	claims []string // a StatefulSet's volumeClaimTemplates
}

func (m manifests) workloads() []workload {
	var out []workload
	for _, d := range m.deployments {
		out = append(out, workload{name: d.Name, spec: d.Spec.Template.Spec})
	}
	for _, s := range m.statefulSets {
		w := workload{name: s.Name, spec: s.Spec.Template.Spec}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.claims = append(w.claims, c.Name)
		}
		out = append(out, w)
	}
	return out
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under k8s/ (%v)", err)
	}
	docs := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = string(b)
	}
	return decodeManifests(t, docs)
}

// decodeManifests decodes every document of every file (name to content)
// strictly into its Kubernetes API type.
func decodeManifests(t *testing.T, files map[string]string) manifests {
	t.Helper()
	m := manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	names := slices.Sorted(maps.Keys(files))
	for _, f := range names {
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(files[f], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				m.deployments, obj = append(m.deployments, d), d
			case "v1 Service":
				s := &corev1.Service{}
				m.services, obj = append(m.services, s), s
			case "policy/v1 PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				m.pdbs, obj = append(m.pdbs, p), p
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "apps/v1 StatefulSet":
				s := &appsv1.StatefulSet{}
				m.statefulSets, obj = append(m.statefulSets, s), s
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "monitoring.coreos.com/v1 ServiceMonitor":
				var o map[string]any
				if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				m.others = append(m.others, o)
				continue
			default:
				t.Fatalf("%s: unexpected %s %s (add it to this test)", where, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if sec, ok := obj.(*corev1.Secret); ok {
				m.secrets[sec.Name] = sec
			}
			if c, ok := obj.(*corev1.ConfigMap); ok {
				if m.configMaps[c.Name] != nil {
					t.Fatalf("%s: a second ConfigMap %s", where, c.Name)
				}
				m.configMaps[c.Name] = c
			}
		}
	}
	return m
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

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) != 2 || len(m.services) != 3 || len(m.pdbs) != 2 {
		t.Fatalf("want ingest and sender Deployments, three Services (webhook, admin, sender metrics), two PodDisruptionBudgets; got %d, %d, %d",
			len(m.deployments), len(m.services), len(m.pdbs))
	}
}

// TestManifestsRejectUnknownFields shows that the decoding above is strict:
// a misspelt field fails instead of being dropped.
func TestManifestsRejectUnknownFields(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
	if err := yaml.UnmarshalStrict([]byte(doc), &appsv1.Deployment{}); err == nil {
		t.Fatal("spec.replica (for replicas) was accepted")
	}
	var c composeFile
	if err := yaml.UnmarshalStrict([]byte("services:\n  a:\n    restrat: always\n"), &c); err == nil {
		t.Fatal("compose restrat (for restart) was accepted")
	}
}

func TestManifestEnvironment(t *testing.T) {
	checkWorkloads(t, loadManifests(t))
}

// checkWorkloads checks every Deployment's and StatefulSet's container:
// every variable it sets is a setting of its binary, secrets come from a
// Secret, its environment passes the binary's own checks, its probes reach
// its listener, and it runs as non-root with requests and limits.
func checkWorkloads(t *testing.T, m manifests) {
	t.Helper()
	for _, d := range m.workloads() {
		spec := d.spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: want one container", d.name)
		}
		c := spec.Containers[0]
		bin, ok := binaryFor(t, c.Name)
		if !ok {
			t.Fatalf("%s: container %q runs no known binary", d.name, c.Name)
		}
		env := map[string]string{}
		files := map[string][]byte{} // container path -> content, from ConfigMap volumes
		for _, vm := range c.VolumeMounts {
			i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
			if i < 0 && slices.Contains(d.claims, vm.Name) {
				continue
			}
			if i < 0 {
				t.Fatalf("%s: volumeMount %s has no volume", d.name, vm.Name)
			}
			if cm := spec.Volumes[i].ConfigMap; cm != nil {
				if m.configMaps[cm.Name] == nil {
					t.Fatalf("%s: volume %s: ConfigMap %s is not in k8s/", d.name, vm.Name, cm.Name)
				}
				for k, v := range m.configMaps[cm.Name].Data {
					files[path.Join(vm.MountPath, k)] = []byte(v)
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				t.Fatalf("%s: envFrom other than a ConfigMap hides which variables are set", d.name)
			}
			cm := m.configMaps[ef.ConfigMapRef.Name]
			if cm == nil {
				t.Fatalf("%s: envFrom ConfigMap %s is not in k8s/", d.name, ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				if bin.isSecret(k) {
					t.Errorf("%s: secret %s is in ConfigMap %s; use a secretKeyRef", d.name, k, cm.Name)
				}
				env[k] = v
			}
		}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				if bin.isSecret(e.Name) {
					t.Errorf("%s: secret %s has a literal value; use a secretKeyRef", d.name, e.Name)
				}
				env[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil:
				if r := e.ValueFrom.SecretKeyRef; r.Name == "" || r.Key == "" {
					t.Errorf("%s: %s: secretKeyRef needs a name and a key", d.name, e.Name)
				} else if r.Optional == nil || !*r.Optional {
					env[e.Name] = placeholderFor(e.Name) // an optional key may be absent: leave it unset
				}
			case e.ValueFrom.ConfigMapKeyRef != nil:
				r := e.ValueFrom.ConfigMapKeyRef
				if bin.isSecret(e.Name) {
					t.Errorf("%s: secret %s comes from a ConfigMap; use a secretKeyRef", d.name, e.Name)
				}
				cm := m.configMaps[r.Name]
				if cm == nil {
					t.Fatalf("%s: %s: ConfigMap %s is not in k8s/", d.name, e.Name, r.Name)
				}
				env[e.Name] = cm.Data[r.Key]
			default:
				t.Errorf("%s: %s: unsupported valueFrom", d.name, e.Name)
			}
		}
		if p := env["CAPI_DATASETS_FILE"]; p != "" {
			data, ok := files[p]
			if !ok {
				t.Fatalf("%s: CAPI_DATASETS_FILE=%s is on no mounted ConfigMap", d.name, p)
			}
			local := filepath.Join(t.TempDir(), "datasets.json")
			if err := os.WriteFile(local, data, 0o600); err != nil {
				t.Fatal(err)
			}
			env["CAPI_DATASETS_FILE"] = local
			for _, name := range datasetEnvs(t, data) {
				if _, ok := env[name]; !ok {
					t.Errorf("%s: the datasets file names %s, which the container does not set", d.name, name)
				}
			}
		}
		checkEnv(t, d.name, bin, env)

		port := bin.listenPort(t, mapEnv(env))
		portByName := map[string]string{}
		for _, p := range c.Ports {
			portByName[p.Name] = fmt.Sprint(p.ContainerPort)
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return fmt.Sprint(p.ContainerPort) == port }) {
			t.Errorf("%s: no containerPort for %s's port %s; got %v", d.name, bin.listenEnv, port, c.Ports)
		}
		for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", d.name, what)
				continue
			}
			if want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[what]; p.HTTPGet.Path != want {
				t.Errorf("%s: %s probe on %s, want %s", d.name, what, p.HTTPGet.Path, want)
			}
			if got := p.HTTPGet.Port.String(); got != port && portByName[got] != port {
				t.Errorf("%s: %s probe on port %s, not the listener's %s", d.name, what, got, port)
			}
		}
		r := c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit", d.name)
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: the pod must set runAsNonRoot", d.name)
		}
		if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: the container must set allowPrivilegeEscalation: false", d.name)
		}
	}
}

func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// checkEnv fails for a variable bin does not read and runs bin's own
// configuration checks, which name a required setting left out.
func checkEnv(t *testing.T, where string, bin binary, env map[string]string) {
	t.Helper()
	var extra []string
	if p := env["CAPI_DATASETS_FILE"]; p != "" {
		if b, err := os.ReadFile(p); err == nil {
			extra = datasetEnvs(t, b)
		}
	}
	for k := range env {
		if _, ok := bin.lookup(k); !ok && !slices.Contains(extra, k) {
			t.Errorf("%s: sets %s, which %s does not read (not in its settings table)", where, k, bin.name)
		}
	}
	if bin.parse == nil {
		return // all-in-one: its parser is in package main
	}
	if err := bin.parse(mapEnv(env)); err != nil {
		t.Errorf("%s: %s would not start: %v", where, bin.name, err)
	}
}

func TestManifestServiceAndDisruptionBudgets(t *testing.T) {
	m := loadManifests(t)
	find := func(name string) *appsv1.Deployment {
		for _, d := range m.deployments {
			if d.Name == name {
				return d
			}
		}
		t.Fatalf("no Deployment %s", name)
		return nil
	}
	for _, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector does not match its pods (%v)", d.Name, err)
		}
		n := 0
		for _, p := range m.pdbs {
			ps, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err == nil && ps.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
				if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
					t.Errorf("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", p.Name)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets cover it, want 1", d.Name, n)
		}
	}
	// Only the webhook faces the outside: the Service "ingest" has one
	// port, the listener of INGEST_ADDR. The admin listener (ADMIN_ADDR) and
	// the sender's metrics (METRICS_ADDR) have Services of their own, for
	// Prometheus, which never carry the webhook port.
	portOf := func(d *appsv1.Deployment, env string) string {
		c := d.Spec.Template.Spec.Containers[0]
		bin := binaries[c.Name]
		b := bin
		b.listenEnv = env
		return b.listenPort(t, func(k string) string {
			for _, e := range c.Env {
				if e.Name == k {
					return e.Value
				}
			}
			for _, ef := range c.EnvFrom {
				if v, ok := m.configMaps[ef.ConfigMapRef.Name].Data[k]; ok {
					return v
				}
			}
			return ""
		})
	}
	ing, snd := find("ingest"), find("sender")
	webhook := portOf(ing, "INGEST_ADDR")
	want := map[string]struct {
		d    *appsv1.Deployment
		port string
	}{"ingest": {ing, webhook}, "ingest-admin": {ing, portOf(ing, "ADMIN_ADDR")}, "sender-metrics": {snd, portOf(snd, "METRICS_ADDR")}}
	for _, svc := range m.services {
		w, ok := want[svc.Name]
		if !ok {
			t.Errorf("unexpected Service %s", svc.Name)
			continue
		}
		delete(want, svc.Name)
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.d.Spec.Template.Labels)) {
			t.Errorf("Service %s does not select %s's pods", svc.Name, w.d.Name)
		}
		if len(svc.Spec.Ports) != 1 {
			t.Errorf("Service %s has %d ports, want one", svc.Name, len(svc.Spec.Ports))
			continue
		}
		c := w.d.Spec.Template.Spec.Containers[0]
		tp := svc.Spec.Ports[0].TargetPort.String()
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
			return fmt.Sprint(p.ContainerPort) == w.port && (tp == p.Name || tp == w.port)
		}) {
			t.Errorf("Service %s targets port %s, not %s", svc.Name, tp, w.port)
		}
		if svc.Name != "ingest" && (w.port == webhook && w.d == ing) {
			t.Errorf("Service %s carries the webhook port", svc.Name)
		}
		if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is %s; only the ingress reaches the webhook from outside", svc.Name, svc.Spec.Type)
		}
	}
	for name := range want {
		t.Errorf("no Service %s", name)
	}
}

// ---------------------------------------------------------------------------
// docker-compose

// composeFile is the subset of the compose schema docker-compose.yml uses;
// strict decoding rejects any other key, so a typo cannot pass unnoticed.
type composeFile struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Image       string                      `json:"image"`
	Build       *composeBuild               `json:"build"`
	Command     []string                    `json:"command"`
	Profiles    []string                    `json:"profiles"`
	Restart     string                      `json:"restart"`
	Ports       []string                    `json:"ports"`
	Expose      []string                    `json:"expose"`
	Environment map[string]string           `json:"environment"`
	Volumes     []string                    `json:"volumes"`
	Healthcheck *composeHealthcheck         `json:"healthcheck"`
	DependsOn   map[string]composeDependsOn `json:"depends_on"`
}

type composeBuild struct {
	Context string            `json:"context"`
	Args    map[string]string `json:"args"`
}

type composeHealthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval"`
	Timeout     string   `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod string   `json:"start_period"`
}

type composeDependsOn struct {
	Condition string `json:"condition"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// interpolation is compose's ${VAR}, ${VAR:-default} and ${VAR:?message}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}`)

// interpolate expands s as compose would with the operator's environment
// given by set.
func interpolate(t *testing.T, s string, set func(string) string) string {
	t.Helper()
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if v := set(g[1]); v != "" {
			return v
		}
		if g[2] == ":?" {
			return placeholderFor(g[1]) // compose itself refuses to start without it
		}
		return g[3]
	})
	if strings.Contains(strings.ReplaceAll(out, "$$", ""), "$") {
		t.Fatalf("docker-compose.yml: %q: unsupported interpolation", s)
	}
	return out
}

// operatorEnvs are the .env files the tests start compose with: "minimal"
// has only what compose itself requires (${VAR:?} anywhere in the file:
// compose interpolates every service, whatever the profile), "full" every
// variable the file mentions.
func operatorEnvs(t *testing.T) map[string]func(string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]bool{}
	for _, m := range interpolation.FindAllStringSubmatch(string(b), -1) {
		if m[2] == ":?" {
			required[m[1]] = true
		}
	}
	return map[string]func(string) string{
		"minimal": func(k string) string {
			if required[k] {
				return placeholderFor(k)
			}
			return ""
		},
		"full": placeholderFor,
	}
}

// mountedFile maps a container path to the host file a bind mount puts
// there.
func mountedFile(t *testing.T, svc composeService, containerPath string, set func(string) string) (string, bool) {
	t.Helper()
	for _, v := range svc.Volumes {
		parts := strings.Split(interpolate(t, v, set), ":")
		if len(parts) >= 2 && parts[1] == containerPath && strings.HasPrefix(parts[0], "./") {
			return filepath.Join(repoRoot, parts[0]), true
		}
	}
	return "", false
}

// onVolume reports whether a container path lies on a named volume.
func onVolume(c composeFile, svc composeService, containerPath string) bool {
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if _, named := c.Volumes[parts[0]]; named && len(parts) >= 2 &&
			(containerPath == parts[1] || strings.HasPrefix(containerPath, parts[1]+"/")) {
			return true
		}
	}
	return false
}

func TestComposeEnvironment(t *testing.T) {
	c, envs := loadCompose(t), operatorEnvs(t)
	for name, svc := range c.Services {
		if svc.Build == nil {
			continue // redis, nats: images of their own
		}
		bin, ok := binaries[svc.Build.Args["CMD"]]
		if !ok {
			t.Fatalf("%s: builds CMD=%q, no known binary", name, svc.Build.Args["CMD"])
		}
		for envName, set := range envs {
			if envName == "minimal" && slices.Contains(svc.Profiles, "live") {
				continue // the live sender needs the operator's token
			}
			where := name + " (" + envName + " .env)"
			env := map[string]string{}
			for k, v := range svc.Environment {
				if bin.isSecret(k) && !interpolation.MatchString(v) {
					t.Errorf("%s: secret %s has a literal value; take it from the environment", where, k)
				}
				if v = interpolate(t, v, set); v != "" {
					env[k] = v
				}
			}
			if p := env["CAPI_DATASETS_FILE"]; p != "" {
				host, ok := mountedFile(t, svc, p, set)
				if !ok {
					host, ok = mountedFile(t, svc, p, envs["minimal"])
				}
				if !ok {
					t.Fatalf("%s: CAPI_DATASETS_FILE=%s is not bind-mounted from the repository", where, p)
				}
				env["CAPI_DATASETS_FILE"] = host
			}
			if p := env["CAPI_DRYRUN_FILE"]; p != "" && !onVolume(c, svc, p) {
				t.Errorf("%s: CAPI_DRYRUN_FILE=%s is on no named volume: it would be lost with the container", where, p)
			}
			checkEnv(t, where, bin, env)
			if u, err := url.Parse(env["NATS_URL"]); err != nil || u.User.Username() == "" {
				t.Errorf("%s: NATS_URL carries no user and password (%v)", where, err)
			}
		}
	}
}

func TestComposeShape(t *testing.T) {
	c, envs := loadCompose(t), operatorEnvs(t)
	var dryrun, published []string
	for name, svc := range c.Services {
		if svc.Restart == "" || svc.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
		if svc.Healthcheck == nil || len(svc.Healthcheck.Test) < 2 || svc.Healthcheck.Test[0] != "CMD" {
			t.Errorf("%s: no exec-form healthcheck", name)
		}
		for dep, d := range svc.DependsOn {
			if d.Condition != "service_healthy" {
				t.Errorf("%s: depends on %s %s; service_healthy waits until it answers", name, dep, d.Condition)
			}
			if c.Services[dep].Healthcheck == nil {
				t.Errorf("%s: depends on %s, which has no healthcheck", name, dep)
			}
		}
		if len(svc.Ports) > 0 {
			published = append(published, name)
		}
		if slices.Contains(svc.Profiles, "dryrun") {
			dryrun = append(dryrun, name)
		}
		for _, v := range svc.Volumes {
			parts := strings.Split(interpolate(t, v, envs["minimal"]), ":")
			if strings.HasPrefix(parts[0], ".") {
				if _, err := os.Stat(filepath.Join(repoRoot, parts[0])); err != nil {
					t.Errorf("%s: mounts %s, which is not in the repository", name, parts[0])
				}
			} else if _, ok := c.Volumes[parts[0]]; !ok {
				t.Errorf("%s: volume %s is not declared", name, parts[0])
			}
		}
		if svc.Build == nil {
			continue
		}
		bin := binaries[svc.Build.Args["CMD"]]
		port := bin.listenPort(t, func(k string) string { return interpolate(t, svc.Environment[k], envs["full"]) })
		if want := "http://127.0.0.1:" + port + "/readyz"; !slices.Contains(svc.Healthcheck.Test, want) {
			t.Errorf("%s: healthcheck %v does not GET %s", name, svc.Healthcheck.Test, want)
		}
		if len(svc.Ports) > 0 && (bin.name != "ingest" || !slices.Equal(svc.Ports, []string{port + ":" + port})) {
			t.Errorf("%s: publishes %v; only ingest's webhook port %s may be published", name, svc.Ports, port)
		}
	}
	if !slices.Equal(published, []string{"ingest"}) {
		t.Errorf("services publishing ports: %v, want only ingest", published)
	}
	if len(dryrun) != 1 || c.Services[dryrun[0]].Environment["CAPI_DRYRUN_FILE"] == "" {
		t.Fatalf("want one dryrun-profile service with CAPI_DRYRUN_FILE, got %v", dryrun)
	}
	// Dry even when the operator's .env holds a token.
	if _, ok := c.Services[dryrun[0]].Environment["CAPI_ACCESS_TOKEN"]; ok {
		t.Errorf("%s: sets CAPI_ACCESS_TOKEN; the dry run must not hold a token", dryrun[0])
	}
}

// TestComposeNATSAuth parses the mounted nats.conf with nats-server's own
// parser: the user and password must come from the environment compose
// passes, not from the file.
func TestComposeNATSAuth(t *testing.T) {
	c := loadCompose(t)
	svc := c.Services["nats"]
	minimal := operatorEnvs(t)["minimal"]
	if len(svc.Ports) > 0 {
		t.Errorf("nats publishes %v: clients are inside the compose network", svc.Ports)
	}
	i := slices.Index(svc.Command, "-c")
	if i < 0 || i+1 >= len(svc.Command) {
		t.Fatalf("nats: command %v loads no config file", svc.Command)
	}
	host, ok := mountedFile(t, svc, svc.Command[i+1], minimal)
	if !ok {
		t.Fatalf("nats: %s is not mounted from the repository", svc.Command[i+1])
	}
	for _, k := range []string{"NATS_USER", "NATS_PASSWORD"} {
		if !strings.HasPrefix(svc.Environment[k], "${"+k+":?") {
			t.Errorf("nats: %s must be required from the operator's environment, got %q", k, svc.Environment[k])
		}
	}
	t.Setenv("NATS_USER", "u-from-env")
	t.Setenv("NATS_PASSWORD", "p-from-env")
	m, err := conf.ParseFile(host)
	if err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	auth, _ := m["authorization"].(map[string]any)
	if auth["user"] != "u-from-env" || auth["password"] != "p-from-env" {
		t.Errorf("%s: authorization does not take NATS_USER and NATS_PASSWORD from the environment: %v", host, auth)
	}
	if _, ok := m["jetstream"]; !ok {
		t.Errorf("%s: JetStream is off", host)
	}
}

// ---------------------------------------------------------------------------
// Dockerfile and .dockerignore

func TestDockerfile(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if want := "FROM golang:" + string(goLine[1]) + " AS build"; !strings.Contains(df, want) {
		t.Errorf("Dockerfile: want %q (go.mod's go line)", want)
	}
	for _, want := range []string{
		"COPY --from=build --chown=65532:65532 /out/data /data", // writable by nonroot, also as an empty volume
		"ENV DATA_DIR=/data", // all-in-one's data directory
		"USER 65532:65532",   // distroless nonroot
		"/healthcheck",       // compose healthchecks
		"./cmd/healthcheck",  // built from this repository
		`ENTRYPOINT ["/app"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile: missing %q", want)
		}
	}
	// all-in-one's settings are in package main, which a test cannot
	// import: read the table's source for the variable the image sets.
	aio, err := os.ReadFile(filepath.Join(repoRoot, "cmd", "all-in-one", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(aio), `{Env: "DATA_DIR",`) {
		t.Error(`Dockerfile sets DATA_DIR, which is not in all-in-one's settings (cmd/all-in-one/config.go)`)
	}
	ig, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(ig), "\n")
	for _, want := range []string{".git", "data/", "**/data/", "*.jsonl", "**/*.jsonl", "*.test"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore: missing %q", want)
		}
	}
}
