package loadgen

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

const wrkOutput = `Running 2s test @ http://127.0.0.1:18080/webhook
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.42ms    2.10ms  24.20ms   71.00%
    Req/Sec    10.58k     1.02k   12.00k    80.00%
  Latency Distribution
     50%    5.42ms
     75%    7.00ms
     90%    9.85ms
     99%   15.87ms
  21051 requests in 2.00s, 1.63MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 51
Requests/sec:  10525.50
Transfer/sec:    833.56KB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{Requests: 21051, Non2xx: 51, SocketErrs: 3, Seconds: 2, P50: 5420 * time.Microsecond,
		P90: 9850 * time.Microsecond, P99: 15870 * time.Microsecond, Max: 24200 * time.Microsecond, RequestsSec: 10525.5}
	if *r != want {
		t.Errorf("ParseWrk = %+v; want %+v", *r, want)
	}
	if got := r.Throughput(); got != 10500 {
		t.Errorf("Throughput = %v; want 10500 (2xx only)", got)
	}
	if _, err := ParseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("ParseWrk of a failed run: no error")
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := map[string]time.Duration{"812.00us": 812 * time.Microsecond, "1.50ms": 1500 * time.Microsecond,
		"2.00s": 2 * time.Second, "1.50m": 90 * time.Second}
	for in, want := range tests {
		if got, err := parseWrkDuration(in); err != nil || got != want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWrkDuration("fast"); err == nil {
		t.Error(`parseWrkDuration("fast"): no error`)
	}
}

// TestWrkScriptSendsSignedBodies runs the real wrk with the generated Lua
// script against a server that verifies every signature.
func TestWrkScriptSendsSignedBodies(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not installed")
	}
	secret := []byte("wrk-secret")
	srv, ok, bad := verifyingServer(t, secret)
	m, _ := ParseMix(DefaultMix)
	script, bodies, err := WriteWrkFiles(t.TempDir(), NewPool(NewBodyGen(2), m, secret, 0, 300, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := RunWrk(context.Background(), wrk, srv.URL+"/webhook", script, bodies, 2, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("server verified %d and rejected %d wrk requests; want all verified", ok.Load(), bad.Load())
	}
	if r.Requests == 0 || r.Non2xx != 0 {
		t.Errorf("wrk reported %d requests, %d non-2xx", r.Requests, r.Non2xx)
	}
}
