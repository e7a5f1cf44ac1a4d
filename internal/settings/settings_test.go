package settings

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var testDefs = []Setting{
	{Env: "ADDR", Flag: "addr", Default: ":8080", Help: "listen address"},
	{Env: "SECRET", Help: "env only"},
	{Env: "TTL", Flag: "ttl", Default: "7d", Help: "how long"},
	{Env: "CAPTURE", Flag: "capture", Default: "off", Bool: true, Help: "copy bodies"},
	{Env: "STRICT", Flag: "strict", Default: "true", Help: "a boolean whose flag needs a value"},
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		key  string
		want string
	}{
		{"default when env unset", nil, nil, "ADDR", ":8080"},
		{"default when env empty", map[string]string{"ADDR": ""}, nil, "ADDR", ":8080"},
		{"env beats default", map[string]string{"ADDR": ":1"}, nil, "ADDR", ":1"},
		{"flag beats env", map[string]string{"ADDR": ":1"}, []string{"-addr", ":2"}, "ADDR", ":2"},
		{"flag with =", nil, []string{"--addr=:3"}, "ADDR", ":3"},
		{"env only setting", map[string]string{"SECRET": "s"}, nil, "SECRET", "s"},
		{"no default is empty", nil, nil, "SECRET", ""},
		{"space trimmed", map[string]string{"ADDR": "  :4 \n"}, nil, "ADDR", ":4"},
		{"bare bool flag", nil, []string{"-capture"}, "CAPTURE", "true"},
		{"bool flag with value", nil, []string{"-capture=off"}, "CAPTURE", "off"},
		{"non-Bool flag takes next arg", nil, []string{"-strict", "false"}, "STRICT", "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Parse("test", tt.args, env(tt.env), testDefs)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.args, err)
			}
			if got := v.Text(tt.key); got != tt.want {
				t.Errorf("Text(%s) = %q; want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of the error
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined: -nope (see --help)"},
		{"secret has no flag", []string{"-secret", "x"}, "-secret (see --help)"},
		{"missing value", []string{"-addr"}, "flag needs an argument: -addr"},
		{"unexpected argument", []string{"serve"}, `config: unexpected argument "serve" (see --help)`},
		{"argument after flags", []string{"-addr", ":1", "extra", "more"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test", tt.args, env(nil), testDefs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Errorf("Parse(%q) = %v; want not flag.ErrHelp", tt.args, err)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		v, err := Parse("test", []string{arg}, env(nil), testDefs)
		// Callers compare with errors.Is; returning the sentinel itself
		// keeps a plain == working too.
		if err != flag.ErrHelp || v != nil {
			t.Errorf("Parse(%s) = %v, %v; want nil, flag.ErrHelp", arg, v, err)
		}
	}
}

func TestGetters(t *testing.T) {
	tests := []struct {
		name  string
		value string
		get   func(*Values) any
		want  any
		err   string // "" for no error; else a substring after "config: X: "
	}{
		{"duration days", "7d", dur, 7 * 24 * time.Hour, ""},
		{"duration days and hours", "1d12h", dur, 36 * time.Hour, ""},
		{"duration go syntax", "90s", dur, 90 * time.Second, ""},
		{"duration bad", "soon-ish", dur, time.Duration(0), "want a positive duration"},
		{"duration zero", "0s", dur, time.Duration(0), "want a positive duration"},
		{"duration negative", "-1h", dur, -time.Hour, "want a positive duration"},
		{"size plain", "1048576", size, int64(1 << 20), ""},
		{"size KiB", "512KiB", size, int64(512 << 10), ""},
		{"size MiB lower case", "1mib", size, int64(1 << 20), ""},
		{"size K", "4K", size, int64(4 << 10), ""},
		{"size bad", "big", size, int64(0), "want a positive size"},
		{"size zero", "0", size, int64(0), "want a positive size"},
		{"int", "42", integer, 42, ""},
		{"int zero", "0", integer, 0, "want a positive integer"},
		{"int bad", "4x", integer, 0, "want a positive integer"},
		{"bool on", "on", boolean, true, ""},
		{"bool TRUE", "TRUE", boolean, true, ""},
		{"bool yes", "yes", boolean, true, ""},
		{"bool 1", "1", boolean, true, ""},
		{"bool off", "off", boolean, false, ""},
		{"bool false", "false", boolean, false, ""},
		{"bool no", "No", boolean, false, ""},
		{"bool 0", "0", boolean, false, ""},
		{"bool bad", "maybe", boolean, false, "want on/off or true/false"},
		{"level debug", "debug", level, zapcore.DebugLevel, ""},
		{"level WARN", "WARN", level, zapcore.WarnLevel, ""},
		{"level bad", "loud", level, zapcore.InfoLevel, "want debug, info, warn or error"},
	}
	defs := []Setting{{Env: "X", Flag: "x"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Parse("test", nil, env(map[string]string{"X": tt.value}), defs)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.get(v)
			if tt.err == "" {
				if v.Err() != nil || got != tt.want {
					t.Errorf("X=%q: got %v, %v; want %v, nil", tt.value, got, v.Err(), tt.want)
				}
				return
			}
			err = v.Err()
			if err == nil || !strings.HasPrefix(err.Error(), "config: X: ") || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("X=%q: Err() = %v; want \"config: X: ...%s\"", tt.value, err, tt.err)
			}
		})
	}
}

func dur(v *Values) any     { return v.Duration("X") }
func size(v *Values) any    { return v.Size("X") }
func integer(v *Values) any { return v.Int("X") }
func boolean(v *Values) any { return v.Bool("X") }
func level(v *Values) any   { return v.Level("X") }

// Errors name the variable, never its value: it may be a secret put in
// the wrong variable, and the error gets logged.
func TestErrorsHideValue(t *testing.T) {
	for name, get := range map[string]func(*Values) any{"Duration": dur, "Size": size, "Int": integer, "Bool": boolean, "Level": level} {
		v, err := Parse("test", nil, env(map[string]string{"X": "hunter2"}), []Setting{{Env: "X"}})
		if err != nil {
			t.Fatal(err)
		}
		get(v)
		if err := v.Err(); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: Err() = %v; want an error without the value", name, err)
		}
	}
}

// The first malformed setting read is the one reported: ParseConfig reads
// them in a fixed order, so the message is stable.
func TestFirstErrorWins(t *testing.T) {
	v, err := Parse("test", []string{"-ttl", "never"}, env(map[string]string{"CAPTURE": "maybe"}), testDefs)
	if err != nil {
		t.Fatal(err)
	}
	v.Duration("TTL")
	v.Bool("CAPTURE")
	if err := v.Err(); err == nil || !strings.Contains(err.Error(), "TTL") || strings.Contains(err.Error(), "CAPTURE") {
		t.Errorf("Err() = %v; want the TTL error only", err)
	}
}

func TestUndeclaredSettingPanics(t *testing.T) {
	v, err := Parse("test", nil, env(nil), testDefs)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "NOPE") {
			t.Errorf("Text(NOPE) recovered %v; want a panic naming NOPE", r)
		}
	}()
	v.Text("NOPE")
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0d90m", 90 * time.Minute, true},
		{"36h", 36 * time.Hour, true},
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"d", 0, false},
		{"xd", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"1dx", 0, false},
		{"99999d", 0, false}, // day count beyond 16 bits: a typo, not a TTL
		{"", 0, false},
		{"7", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{8 * 24 * time.Hour, "8d"},
		{36 * time.Hour, "36h"},
		{10 * time.Minute, "10m"},
		{90 * time.Minute, "1h30m"},
		{5 * time.Second, "5s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		got := FormatDuration(tt.in)
		if got != tt.want {
			t.Errorf("FormatDuration(%v) = %q; want %q", tt.in, got, tt.want)
		}
		if back, err := ParseDuration(got); err != nil || back != tt.in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v; want the input back", tt.in, back, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"512KiB", 512 << 10, true},
		{"512 KiB", 512 << 10, true},
		{"2MB", 2 << 20, true},
		{"3m", 3 << 20, true},
		{"100B", 100, true},
		{"KiB", 0, false},
		{"1.5MiB", 0, false},
		{"1GiB", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestPrintUsage(t *testing.T) {
	var b bytes.Buffer
	PrintUsage(&b, testDefs[:4])
	// The variable column is as wide as the longest name plus one; lines
	// without a default carry no trailing space.
	want := `  ADDR     -addr                (default :8080)
      listen address
  SECRET   (env only)
      env only
  TTL      -ttl                 (default 7d)
      how long
  CAPTURE  -capture             (default off)
      copy bodies
`
	if got := b.String(); got != want {
		t.Errorf("PrintUsage =\n%s\nwant\n%s", got, want)
	}
}

func TestFlags(t *testing.T) {
	given, err := Flags("test", []string{"-addr", ":2", "-capture", "-ttl="}, testDefs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ADDR": ":2", "CAPTURE": "true", "TTL": ""}
	if len(given) != len(want) {
		t.Errorf("Flags = %v; want %v (only the flags given)", given, want)
	}
	for k, v := range want {
		if got, ok := given[k]; !ok || got != v {
			t.Errorf("Flags[%s] = %q, %v; want %q", k, got, ok, v)
		}
	}
	if _, err := Flags("test", []string{"-help"}, testDefs); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Flags(-help) = %v; want flag.ErrHelp", err)
	}
	for _, args := range [][]string{{"-nope"}, {"stray"}, {"-secret", "s"}} {
		if _, err := Flags("test", args, testDefs); err == nil || !strings.Contains(err.Error(), "see --help") {
			t.Errorf("Flags(%q) = %v; want an error pointing to --help", args, err)
		}
	}
}

func TestMerge(t *testing.T) {
	other := []Setting{
		{Env: "ADDR", Flag: "addr", Default: ":9090", Help: "the other's default"},
		{Env: "WORKERS", Flag: "workers", Default: "1"},
	}
	got, err := Merge(testDefs, other)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testDefs)+1 || got[0].Default != ":8080" || got[len(got)-1].Env != "WORKERS" {
		t.Errorf("Merge = %+v; want testDefs (first entry wins) then WORKERS", got)
	}
	for _, bad := range [][]Setting{
		{{Env: "ADDR", Flag: "listen"}},   // one variable, two flags
		{{Env: "PORT", Flag: "addr"}},     // one flag, two variables
		{{Env: "SECRET", Flag: "secret"}}, // env only in one list, a flag in the other
	} {
		if _, err := Merge(testDefs, bad); err == nil {
			t.Errorf("Merge with %+v succeeded; want a conflict", bad[0])
		}
	}
}

func TestRequired(t *testing.T) {
	if err := Required(Need{Env: "A", Value: "x"}); err != nil {
		t.Errorf("nothing missing: %v", err)
	}
	err := Required(Need{Env: "A"}, Need{Env: "B", Value: "x"}, Need{Env: "C", Text: "C is required (or D)"})
	if err == nil || err.Error() != "config: A is required; C is required (or D)" {
		t.Errorf("Required = %v", err)
	}
}
