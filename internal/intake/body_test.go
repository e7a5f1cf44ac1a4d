package intake

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/internal/settings"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ndjson bool
		want   []string
		status int // of the error; 0 for none
	}{
		{"object", ` {"a":1} `, false, []string{`{"a":1}`}, 0},
		{"array keeps each element's bytes", "[ {\"a\": [1, {\"b\":2}]} ,\n\t{\"c\":\"]\"}, 7 ]", false,
			[]string{`{"a": [1, {"b":2}]}`, `{"c":"]"}`, `7`}, 0},
		{"ndjson skips blank lines", "{\"a\":1}\r\n\n  \n{\"b\":2}", true, []string{`{"a":1}`, `{"b":2}`}, 0},
		{"ndjson keeps bad lines for the contract", "x\n{\"b\":2}\n", true, []string{`x`, `{"b":2}`}, 0},
		{"trailing comma", `[{"a":1},]`, false, nil, http.StatusBadRequest},
		{"two objects", `{"a":1} {"b":2}`, false, nil, http.StatusBadRequest},
		{"number", `12`, false, nil, http.StatusBadRequest},
		{"empty", ``, false, nil, http.StatusBadRequest},
		{"1000 elements", "[" + strings.Repeat("{},", MaxItems-1) + "{}]", false, nil, 0},
		{"1001 elements", "[" + strings.Repeat("{},", MaxItems) + "{}]", false, nil, http.StatusRequestEntityTooLarge},
		{"1000 lines", strings.Repeat("{}\n", MaxItems), true, nil, 0},
		{"1001 lines", strings.Repeat("{}\n", MaxItems+1), true, nil, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := split([]byte(tt.body), tt.ndjson)
			var a *answer
			switch {
			case tt.status != 0:
				if !errors.As(err, &a) || a.status != tt.status {
					t.Errorf("split(%q) error = %v; want status %d", tt.body, err, tt.status)
				}
				return
			case err != nil:
				t.Fatalf("split(%q) error = %v", tt.body, err)
			}
			if tt.want == nil {
				if len(got) != MaxItems {
					t.Errorf("split gave %d items; want %d", len(got), MaxItems)
				}
				return
			}
			var s []string
			for _, b := range got {
				s = append(s, string(b))
			}
			if diff := cmp.Diff(tt.want, s); diff != "" {
				t.Errorf("split(%q) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// The body buffer grows with the bytes read, not with what a client
// announces, and never past limit+1.
func TestReadBody(t *testing.T) {
	const limit = 200 << 10
	tests := []struct {
		name    string
		size    int
		tooBig  bool
		maxCapa int
	}{
		{"small body, small buffer", 10, false, 64 << 10},
		{"at the limit", limit, false, limit + 1},
		{"one byte over", limit + 1, true, 0},
		{"far over", 3 * limit, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), tt.size)
			got, err := readBody(iotest.OneByteReader(bytes.NewReader(body)), limit)
			var a *answer
			if tt.tooBig {
				if !errors.As(err, &a) || a.status != http.StatusRequestEntityTooLarge {
					t.Errorf("readBody(%d bytes) error = %v; want 413", tt.size, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("readBody(%d bytes) = %d bytes, %v", tt.size, len(got), err)
			}
			if cap(got) > tt.maxCapa {
				t.Errorf("buffer capacity %d; want at most %d", cap(got), tt.maxCapa)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Config
		err  string
	}{
		{"defaults: off", nil, nil, Config{BodyLimit: DefaultBodyLimit, AckTimeout: DefaultAckTimeout, Concurrency: DefaultConcurrency}, ""},
		{"tokens and flags", map[string]string{"INTAKE_TOKEN": " " + testToken + " ,, " + otherToken, "INTAKE_ACK_TIMEOUT": "3s"},
			[]string{"-intake-body-limit", "1MiB", "-intake-concurrency=2"},
			Config{Tokens: []string{testToken, otherToken}, BodyLimit: 1 << 20, AckTimeout: 3 * time.Second, Concurrency: 2}, ""},
		{"token has no flag", nil, []string{"-intake-token", testToken}, Config{}, "-intake-token"},
		{"bad size", map[string]string{"INTAKE_BODY_LIMIT": "lots"}, nil, Config{}, "INTAKE_BODY_LIMIT"},
		{"short token", map[string]string{"INTAKE_TOKEN": "secret"}, nil, Config{}, "INTAKE_TOKEN: each token must be at least 16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := settings.Parse("test", tt.args, env(tt.env), Settings())
			var cfg Config
			if err == nil {
				cfg = ConfigFrom(v)
				err = v.Err()
			}
			if err == nil {
				err = cfg.Validate()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v; want one containing %q", err, tt.err)
				}
				if tok := tt.env["INTAKE_TOKEN"]; tok != "" && strings.Contains(err.Error(), tok) {
					t.Errorf("error %q holds the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if cfg.Enabled() != (len(tt.want.Tokens) > 0) {
				t.Errorf("Enabled() = %v", cfg.Enabled())
			}
		})
	}
}
