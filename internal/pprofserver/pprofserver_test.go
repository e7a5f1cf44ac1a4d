package pprofserver

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestStart(t *testing.T) {
	addr, stop, err := Start("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, body without %q", path, resp.StatusCode, want)
		}
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("still serving after stop")
	}
	if _, _, err := Start("not an address", zap.NewNop()); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
		t.Errorf("Start with a bad address = %v; want an error naming PPROF_ADDR", err)
	}
}
