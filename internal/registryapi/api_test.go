package registryapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/embedstore/embedtest"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

var (
	_ DatasetResolver = (*capi.Client)(nil)
	_ HealthSource    = NoHealth{}
)

const (
	adminToken    = "admin-token-for-tests"
	testToken     = "EAABapiTOKEN-first-1111"
	testToken2    = "EAABapiTOKEN-second-2222"
	defaultToken  = "EAABdefaultTOKEN-9999"
	testAppSecret = "apiAppSecret0123456789abcdefXYZ"
)

var keyBytes = []byte("0123456789abcdef0123456789abcdef")
var registryKey = "k1:" + base64.StdEncoding.EncodeToString(keyBytes)

// fakeDatasets is the Dataset API: it records the calls and answers ds or err.
type fakeDatasets struct {
	mu      sync.Mutex
	calls   []string // "business token"
	secrets []string // the app secret of each DatasetAs call
	ds      string
	err     error
}

func (f *fakeDatasets) Dataset(_ context.Context, businessID, token string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, businessID+" "+token)
	return f.ds, f.err
}

func (f *fakeDatasets) DatasetAs(ctx context.Context, businessID string, cr capi.Credentials) (string, error) {
	f.mu.Lock()
	f.secrets = append(f.secrets, cr.AppSecret)
	f.mu.Unlock()
	return f.Dataset(ctx, businessID, cr.Token)
}

var _ credentialResolver = (*capi.Client)(nil)

type fakeHealth struct {
	h       Health
	aliases *[]string // the aliases of the last call, when not nil
}

func (f fakeHealth) Health(_ context.Context, _ string, aliases []string) (Health, error) {
	if f.aliases != nil {
		*f.aliases = aliases
	}
	return f.h, nil
}

type fakeResumer struct {
	res   ResumeResult
	calls []string
}

func (f *fakeResumer) Resume(_ context.Context, id string) (ResumeResult, error) {
	f.calls = append(f.calls, id)
	return f.res, nil
}

// testAPI is the API mounted as the admin listener will mount it: behind a
// bearer middleware, on a real redis-server. Every answer is kept so that
// Cleanup can scan them, with the logs, for secrets.
type testAPI struct {
	t        *testing.T
	srv      *httptest.Server
	store    *registry.Store
	datasets *fakeDatasets
	resumer  *fakeResumer
	logs     *observer.ObservedLogs
	mu       sync.Mutex
	bodies   []string
}

type apiOpts struct {
	rdb      *redis.Client // the registry's Redis; nil: a redis-server of its own
	noKey    bool
	health   HealthSource
	noResume bool
}

func newTestAPI(t *testing.T, o apiOpts) *testAPI {
	t.Helper()
	rdb := o.rdb
	switch {
	case rdb != nil:
	case onEmbedded:
		rdb = embedtest.Client(t)
	default:
		rdb = redistest.Start(t).Client(t)
	}
	var kr *registry.Keyring
	if !o.noKey {
		var err error
		if kr, err = registry.ParseKeyring(registryKey); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zap.DebugLevel)
	ta := &testAPI{t: t, store: registry.NewStore(rdb, kr), datasets: &fakeDatasets{ds: "7770001"}, resumer: &fakeResumer{}, logs: logs}
	e := echo.New()
	e.HideBanner = true
	g := e.Group("", bearer(adminToken))
	d := Deps{Store: ta.store, Datasets: ta.datasets, Health: o.health, Resumer: ta.resumer,
		DefaultToken: defaultToken, Log: zap.New(core)}
	if o.noResume {
		d.Resumer = nil
	}
	Register(g, d)
	ta.srv = httptest.NewServer(e)
	t.Cleanup(ta.srv.Close)
	t.Cleanup(ta.scan)
	return ta
}

// bearer is the caller's auth middleware, as simple as it can be.
func bearer(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				return c.JSON(http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token: send Authorization: Bearer <ADMIN_TOKEN>"})
			}
			return next(c)
		}
	}
}

// do sends a request with the admin token and returns the status and body.
func (ta *testAPI) do(method, path, body string) (int, string) {
	return ta.doAuth(method, path, body, "Bearer "+adminToken)
}

func (ta *testAPI) doAuth(method, path, body, auth string) (int, string) {
	ta.t.Helper()
	req, err := http.NewRequest(method, ta.srv.URL+path, strings.NewReader(body))
	if err != nil {
		ta.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		ta.t.Errorf("%s %s: Content-Type %q; want JSON", method, path, resp.Header.Get("Content-Type"))
	}
	ta.mu.Lock()
	ta.bodies = append(ta.bodies, string(b))
	ta.mu.Unlock()
	return resp.StatusCode, string(b)
}

// scan fails the test if any answer or log line holds a token, the app
// secret or the registry key, in the clear or as base64.
func (ta *testAPI) scan() {
	secrets := []string{testToken, testToken2, defaultToken, testAppSecret, string(keyBytes),
		base64.StdEncoding.EncodeToString(keyBytes), "EAABapiTOKEN", "apiAppSecret"}
	var texts []string
	texts = append(texts, ta.bodies...)
	for _, e := range ta.logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		texts = append(texts, e.Message+" "+string(line))
	}
	for _, x := range texts {
		for _, s := range secrets {
			if strings.Contains(x, s) {
				ta.t.Errorf("a secret (%.6s…) appears in %q", s, x)
			}
		}
	}
	if len(ta.bodies) == 0 {
		ta.t.Error("scan: no answers recorded")
	}
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

type errJSON struct {
	Error string     `json:"error"`
	Field string     `json:"field"`
	Meta  *metaError `json:"meta"`
}

func wantError(t *testing.T, status int, body string, wantStatus int, wantField, wantText string) {
	t.Helper()
	e := decode[errJSON](t, body)
	if status != wantStatus || e.Field != wantField || !strings.Contains(e.Error, wantText) {
		t.Errorf("answer %d %s; want %d with field %q and error containing %q", status, body, wantStatus, wantField, wantText)
	}
}

const waBody = `{"channel": "whatsapp", "dataset_id": "9001", "access_token": "` + testToken + `", "app_secret": "` + testAppSecret + `",
	"test_event_code": "TEST42", "phone_number_ids": ["5001"], "partner_agent": "acme"}`
