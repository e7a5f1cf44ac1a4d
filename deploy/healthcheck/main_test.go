package main

import (
	"net/http"
	"net/http/httptest"
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

	if err := run([]string{srv.URL + "/readyz"}); err != nil {
		t.Fatalf("ready server: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := run([]string{srv.URL + "/readyz"}); err == nil {
		t.Fatal("503 counted as healthy")
	}
	if err := run([]string{srv.URL + "/nope"}); err == nil {
		t.Fatal("404 counted as healthy")
	}
	if err := run(nil); err == nil {
		t.Fatal("no URL accepted")
	}
	srv.Close()
	if err := run([]string{srv.URL + "/readyz"}); err == nil {
		t.Fatal("closed server counted as healthy")
	}
}
