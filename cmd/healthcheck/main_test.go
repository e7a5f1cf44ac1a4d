package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()

	if err := run([]string{srv.URL + "/readyz"}, io.Discard); err != nil {
		t.Fatalf("ready server: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := run([]string{srv.URL + "/readyz"}, io.Discard); err == nil {
		t.Fatal("503 counted as healthy")
	}
	if err := run([]string{srv.URL + "/nope"}, io.Discard); err == nil {
		t.Fatal("404 counted as healthy")
	}
	if err := run(nil, io.Discard); err == nil {
		t.Fatal("no URL accepted")
	}
	srv.Close()
	if err := run([]string{srv.URL + "/readyz"}, io.Discard); err == nil {
		t.Fatal("closed server counted as healthy")
	}
}

// -h prints the usage (exit 0) instead of being taken as a URL; a word that
// is no http(s) URL is refused without a request.
func TestHelpAndNotAURL(t *testing.T) {
	for _, h := range []string{"-h", "--help", "-help"} {
		var out bytes.Buffer
		if err := run([]string{h}, &out); !errors.Is(err, errHelp) || !strings.Contains(out.String(), "Usage: healthcheck URL") {
			t.Errorf("run(%s) = %v, %q; want the usage", h, err, out.String())
		}
	}
	for _, arg := range []string{"-x", "readyz", "ftp://127.0.0.1/readyz", "http://"} {
		if err := run([]string{arg}, io.Discard); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("run(%q) = %v; want not an http(s) URL", arg, err)
		}
	}
}
