package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestVersions(t *testing.T) {
	now := time.Date(2026, time.December, 7, 0, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := versions(&out, "v24.0", now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"v24.0    2025-10-08   2026-11-10   expired  <- GRAPH_API_VERSION",
		"v25.0    2026-02-18   2027-02-23   expiring",
		"v27.0    2026-11-04   no date yet  current",
		"set GRAPH_API_VERSION=v27.0 and restart",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ctm versions lacks %q:\n%s", want, out.String())
		}
	}
	if err := versions(&out, "v27", now); err == nil || !strings.Contains(err.Error(), "vNN.0") {
		t.Errorf("versions(v27) = %v; want the form named", err)
	}
}
