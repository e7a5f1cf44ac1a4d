package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// productionSecrets are the variables the README's Production section says
// production needs: its paragraph starting "Secrets production needs".
func productionSecrets(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\nSecrets production needs")
	if i < 0 {
		t.Fatal(`README.md: no paragraph "Secrets production needs" in Production`)
	}
	para, _, _ := strings.Cut(s[i+1:], "\n\n")
	var out []string
	for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(para, -1) {
		out = append(out, m[1])
	}
	if len(out) < 8 {
		t.Fatalf("README.md: only %v in the secrets paragraph", out)
	}
	return out
}

// inURL are the secrets that reach the services inside a URL (NATS_URL on
// Kubernetes is a Secret holding user and password).
var inURL = map[string]string{"NATS_USER": "NATS_URL", "NATS_PASSWORD": "NATS_URL"}

// TestProductionSecrets: docker-compose.yml takes every secret the README
// names from the operator's environment, and the Kubernetes Deployments
// set each from a Secret.
func TestProductionSecrets(t *testing.T) {
	secrets := productionSecrets(t)
	compose, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	operator := map[string]bool{}
	for _, m := range interpolation.FindAllStringSubmatch(string(compose), -1) {
		operator[m[1]] = true
	}
	fromSecret := map[string]bool{}
	for _, d := range loadManifests(t).deployments {
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				fromSecret[e.Name] = true
			}
		}
	}
	for _, s := range secrets {
		if !operator[s] {
			t.Errorf("docker-compose.yml does not take %s from the operator's environment", s)
		}
		if !fromSecret[s] && !fromSecret[inURL[s]] {
			t.Errorf("deploy/k8s: no Deployment sets %s from a Secret", s)
		}
	}
}

// pinnedImage is image:X.Y.Z[-suffix] or image@sha256:..., never latest or
// a floating major or minor.
var pinnedImage = regexp.MustCompile(`^[a-z0-9./_-]+(:v?\d+\.\d+\.\d+(-[a-z0-9.]+)?|@sha256:[0-9a-f]{64})$`)

// TestImagesPinned: every image of compose and the manifests names its
// version, and the NATS image is the nats-server version go.mod tests
// against.
func TestImagesPinned(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod requires no nats-server")
	}
	natsVersion := string(m[1])
	images := map[string]string{}
	for name, svc := range loadCompose(t).Services {
		if svc.Image != "" {
			images["compose "+name] = svc.Image
		}
	}
	for _, d := range loadManifests(t).deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			images["k8s "+d.Name] = c.Image
		}
	}
	for where, img := range images {
		if !pinnedImage.MatchString(img) {
			t.Errorf("%s: image %q is not pinned to a version", where, img)
		}
		if strings.HasPrefix(img, "nats:") && !strings.HasPrefix(img, "nats:"+natsVersion) {
			t.Errorf("%s: image %q; go.mod's nats-server is %s", where, img, natsVersion)
		}
	}
}
