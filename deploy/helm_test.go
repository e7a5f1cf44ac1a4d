package deploy_test

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
)

// secretValues fills every secret of the chart's values.
var secretValues = map[string]any{
	"metaAppSecret": placeholder, "metaVerifyToken": placeholder, "adminToken": placeholder,
	"registryKey": placeholderFor("REGISTRY_KEY"), "redisURL": "redis://:pw@redis:6379/0", "natsURL": "nats://u:pw@nats:4222",
	"capiAccessToken": placeholder, "intakeToken": placeholder, "forwardURLs": placeholderFor("FORWARD_URLS"),
	"natsUser": "ctmpipe", "natsPassword": placeholder,
}

// renderChart renders helm/ctmpipe with Helm's own loader and template
// engine (what helm template does, without a cluster) and decodes the
// result strictly into Kubernetes types.
func renderChart(t *testing.T, values map[string]any) (manifests, error) {
	t.Helper()
	ch, err := loader.Load("helm/ctmpipe")
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Validate(); err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "ctm", Namespace: "ctmpipe", IsInstall: true},
		chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return manifests{}, err
	}
	files := map[string]string{}
	for name, content := range out {
		if strings.HasSuffix(name, ".yaml") && strings.TrimSpace(stripComments(content)) != "" {
			files[name] = content
		}
	}
	return decodeManifests(t, files), nil
}

func TestHelmChart(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		// workloads, services and ServiceMonitors rendered.
		workloads, services, monitors int
	}{
		{"ingest and sender", map[string]any{"secrets": secretValues}, 2, 3, 0},
		{"with a ServiceMonitor", map[string]any{"secrets": secretValues, "serviceMonitor": map[string]any{"enabled": true}}, 2, 3, 1},
		{"existing Secret", map[string]any{"secrets": map[string]any{"existingSecret": "ctmpipe"}}, 2, 3, 0},
		{"all-in-one", map[string]any{"secrets": secretValues, "ingest": map[string]any{"enabled": false},
			"sender": map[string]any{"enabled": false}, "allInOne": map[string]any{"enabled": true}}, 1, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := renderChart(t, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(m.workloads()); n != tt.workloads || len(m.services) != tt.services || len(m.others) != tt.monitors {
				t.Fatalf("rendered %d workloads, %d Services, %d ServiceMonitors; want %d, %d, %d",
					n, len(m.services), len(m.others), tt.workloads, tt.services, tt.monitors)
			}
			checkWorkloads(t, m)
			checkSecretRefs(t, m)
			checkChartServices(t, m)
			if len(m.deployments) > 0 && len(m.pdbs) != len(m.deployments) {
				t.Errorf("%d PodDisruptionBudgets for %d Deployments", len(m.pdbs), len(m.deployments))
			}
			for _, w := range m.workloads() {
				img := w.spec.Containers[0].Image
				if !pinnedImage.MatchString(img) {
					t.Errorf("%s: image %q is not pinned to a version", w.name, img)
				}
			}
		})
	}
}

// A missing required secret stops the render with its name.
func TestHelmChartRequiresSecrets(t *testing.T) {
	s := map[string]any{}
	for k, v := range secretValues {
		if k != "registryKey" {
			s[k] = v
		}
	}
	if _, err := renderChart(t, map[string]any{"secrets": s}); err == nil || !strings.Contains(err.Error(), "REGISTRY_KEY") {
		t.Errorf("render without registryKey = %v; want an error naming REGISTRY_KEY", err)
	}
	if _, err := renderChart(t, map[string]any{"secrets": secretValues, "allInOne": map[string]any{"enabled": true}}); err == nil {
		t.Error("all-in-one next to ingest and sender rendered; want a refusal")
	}
}

// checkSecretRefs: every required secretKeyRef names a key of the Secret the
// chart renders (when it renders one).
func checkSecretRefs(t *testing.T, m manifests) {
	t.Helper()
	for _, w := range m.workloads() {
		for _, e := range w.spec.Containers[0].Env {
			r := e.ValueFrom
			if r == nil || r.SecretKeyRef == nil {
				continue
			}
			sec, ok := m.secrets[r.SecretKeyRef.Name]
			if !ok {
				continue // an existing Secret the operator made
			}
			if _, ok := sec.StringData[r.SecretKeyRef.Key]; !ok && (r.SecretKeyRef.Optional == nil || !*r.SecretKeyRef.Optional) {
				t.Errorf("%s: %s from key %s, which Secret %s lacks", w.name, e.Name, r.SecretKeyRef.Key, sec.Name)
			}
		}
	}
}

// checkChartServices: one Service carries the webhook port; the admin and
// metrics ports are on Services of their own, all ClusterIP.
func checkChartServices(t *testing.T, m manifests) {
	t.Helper()
	webhooks := 0
	for _, s := range m.services {
		if s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is %s", s.Name, s.Spec.Type)
		}
		if len(s.Spec.Ports) != 1 {
			t.Errorf("Service %s has %d ports; want one", s.Name, len(s.Spec.Ports))
			continue
		}
		if s.Spec.Ports[0].Name == "webhook" {
			webhooks++
		} else if s.Labels["app.kubernetes.io/component"] == "" {
			t.Errorf("Service %s (port %s) has no component label for the ServiceMonitor", s.Name, s.Spec.Ports[0].Name)
		}
	}
	if webhooks != 1 {
		t.Errorf("%d Services carry the webhook port; want 1", webhooks)
	}
}
