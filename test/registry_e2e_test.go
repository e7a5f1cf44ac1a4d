package test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
)

// The registry API on the built ingest's admin listener (issue 12):
// ADMIN_TOKEN guards it, a PUT creates (201) then replaces (200), a record
// without dataset_id is resolved through the (fake) Dataset API with
// CAPI_ACCESS_TOKEN, no answer shows a token, and the ctm CLI drives the
// same API.
func TestRegistryAPIE2E(t *testing.T) {
	ctm := binary(t, "ctm")
	key := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	r := newFaultRig(t, faultOptions{})
	// The rig's ingest has no Graph settings: restart it with them.
	r.ingP.Stop(0)
	r.ingEnv = append(r.ingEnv, "REGISTRY_KEY="+key, "GRAPH_API_BASE="+r.graph.URL(), "CAPI_ACCESS_TOKEN="+fakegraph.DefaultToken)
	r.startIngest()

	const token = "EAAbusinessToken0123456789wxyz"
	put := func(id, body, bearer string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, r.admin+"/v1/businesses/"+id, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := r.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	rec := `{"channel":"whatsapp","dataset_id":"5550001","access_token":"` + token + `"}`
	if code, _ := put("102290129340398", rec, ""); code != http.StatusUnauthorized {
		t.Fatalf("PUT without ADMIN_TOKEN = %d; want 401", code)
	}
	if code, out := put("102290129340398", rec, faultAdminToken); code != http.StatusCreated {
		t.Fatalf("PUT = %d %s; want 201", code, out)
	}
	if code, out := put("102290129340398", rec, faultAdminToken); code != http.StatusOK {
		t.Fatalf("second PUT = %d %s; want 200", code, out)
	}
	if code, out := put("102290129340398", `{"channel":"whatsapp","datasetid":"1"}`, faultAdminToken); code != http.StatusBadRequest || !strings.Contains(out, "datasetid") {
		t.Fatalf("PUT with an unknown field = %d %s; want 400 naming it", code, out)
	}
	// No dataset_id: resolved with CAPI_ACCESS_TOKEN at the fake Graph API.
	if code, out := put("109800000000002", `{"channel":"messenger"}`, faultAdminToken); code != http.StatusCreated {
		t.Fatalf("PUT without dataset_id = %d %s; want 201", code, out)
	}
	if _, ok := r.graph.DatasetID("109800000000002"); !ok {
		t.Error("the Dataset API was not asked for the page's dataset")
	}

	env := append(os.Environ(), "ADMIN_URL="+r.admin, "ADMIN_TOKEN="+faultAdminToken)
	ctmRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ctm, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ctm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	show := ctmRun("businesses", "show", "102290129340398")
	if !strings.Contains(show, `"access_token_set":true`) || !strings.Contains(show, `"dataset_id":"5550001"`) {
		t.Errorf("ctm businesses show = %s; want the record with access_token_set", show)
	}
	if list := ctmRun("businesses", "list"); strings.Count(list, "\n") != 2 {
		t.Errorf("ctm businesses list = %q; want 2 records", list)
	}
	if out := ctmRun("businesses", "resume", "102290129340398"); !strings.Contains(out, "nothing to resume") {
		t.Errorf("ctm businesses resume = %q; want nothing to resume", out)
	}
	ds := filepath.Join(t.TempDir(), "datasets.json")
	os.WriteFile(ds, []byte(`{"102290129340398":{"dataset_id":"9"},"106540352242922":{"dataset_id":"5550002"}}`), 0o600)
	if out := ctmRun("businesses", "import", ds, "-channel", "whatsapp"); !strings.Contains(out, "imported 1, already registered 1") {
		t.Errorf("ctm businesses import = %q; want 1 imported, 1 kept", out)
	}
	ctmRun("businesses", "rm", "109800000000002")
	if list := ctmRun("businesses", "list"); strings.Contains(list, "109800000000002") {
		t.Errorf("after rm, list = %q", list)
	}
	for name, out := range map[string]string{"ingest": r.ingP.Output(), "show": show} {
		if strings.Contains(out, token) || strings.Contains(out, key[3:]) {
			t.Errorf("%s output holds the token or the key", name)
		}
	}
}
