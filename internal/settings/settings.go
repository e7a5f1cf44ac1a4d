// Package settings reads a service's configuration from environment
// variables and flags, the way both ingest and sender take it: every setting
// is an environment variable, most also have a flag that wins, and secrets
// have no flag because flags show in ps. Errors name the variable, never its
// value, since a mistyped secret must not reach a log.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// Setting describes one knob: its environment variable, its flag (empty for
// secrets, which are read from the environment only), its default and its
// one-line meaning for --help.
type Setting struct {
	Env, Flag, Default, Help string
	// Bool lets the flag be given bare (-capture means -capture=on).
	Bool bool
}

// value is a setting's text, settable as a flag.
type value struct {
	s    string
	bool bool
}

func (v *value) String() string     { return v.s }
func (v *value) Set(s string) error { v.s = s; return nil }
func (v *value) IsBoolFlag() bool   { return v.bool }

// Values holds the text of every setting after Parse. Its typed getters
// convert one setting each and remember the first malformed one; read them
// all, then check Err.
type Values struct {
	vals map[string]*value
	err  error
}

// Parse takes each setting's default from getenv (falling back to
// Setting.Default when the variable is empty), then lets args override
// those that have a flag. It returns flag.ErrHelp itself for -h/--help and
// an error saying "(see --help)" for an unknown flag or a stray argument.
// name is the flag set's name.
func Parse(name string, args []string, getenv func(string) string, defs []Setting) (*Values, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vs := &Values{vals: make(map[string]*value, len(defs))}
	for _, d := range defs {
		v := &value{s: getenv(d.Env), bool: d.Bool}
		if v.s == "" {
			v.s = d.Default
		}
		vs.vals[d.Env] = v
		if d.Flag != "" {
			fs.Var(v, d.Flag, d.Help)
		}
	}
	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	return vs, nil
}

// Flags parses args against the flags of defs, as Parse does, and returns
// the value of each flag given on the command line, by environment variable.
// A program that hands its settings on to other parsers (all-in-one) lays
// these over the environment.
func Flags(name string, args []string, defs []Setting) (map[string]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	envOf := make(map[string]string, len(defs))
	for _, d := range defs {
		if d.Flag != "" {
			fs.Var(&value{bool: d.Bool}, d.Flag, d.Help)
			envOf[d.Flag] = d.Env
		}
	}
	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[envOf[f.Name]] = f.Value.String() })
	return given, nil
}

// Merge joins setting lists, in order, each variable once (its first entry
// wins). It fails when two lists give one variable different flags, or two
// variables one flag: a command line could then mean different things to the
// services that share it.
func Merge(lists ...[]Setting) ([]Setting, error) {
	var out []Setting
	flagOf := map[string]string{} // env → flag
	envOf := map[string]string{}  // flag → env
	for _, l := range lists {
		for _, d := range l {
			if f, seen := flagOf[d.Env]; seen {
				if f != d.Flag {
					return nil, fmt.Errorf("settings: %s has flag -%s and -%s", d.Env, f, d.Flag)
				}
				continue
			}
			if e, taken := envOf[d.Flag]; taken && d.Flag != "" {
				return nil, fmt.Errorf("settings: flag -%s is both %s and %s", d.Flag, e, d.Env)
			}
			flagOf[d.Env], envOf[d.Flag] = d.Flag, d.Env
			out = append(out, d)
		}
	}
	return out, nil
}

// parseArgs parses args with fs: flag.ErrHelp itself for -h/--help, and an
// error pointing to --help for an unknown flag or a stray argument.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return fmt.Errorf("config: %w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config: unexpected argument %q (see --help)", fs.Arg(0))
	}
	return nil
}

// Err returns the first error a getter met, naming its variable, or nil.
func (vs *Values) Err() error { return vs.err }

// Text returns the setting's value with surrounding space trimmed.
func (vs *Values) Text(env string) string {
	v, ok := vs.vals[env]
	if !ok {
		panic("settings: " + env + " is not a declared setting")
	}
	return strings.TrimSpace(v.s)
}

func (vs *Values) fail(env, want string) {
	if vs.err == nil {
		vs.err = fmt.Errorf("config: %s: %s", env, want)
	}
}

// Duration returns a positive duration in Go syntax or days (see
// ParseDuration).
func (vs *Values) Duration(env string) time.Duration {
	d, err := ParseDuration(vs.Text(env))
	if err != nil || d <= 0 {
		vs.fail(env, "want a positive duration such as 7d, 36h or 90s")
	}
	return d
}

// Size returns a positive byte count (see ParseSize).
func (vs *Values) Size(env string) int64 {
	n, err := ParseSize(vs.Text(env))
	if err != nil || n <= 0 {
		vs.fail(env, "want a positive size such as 1048576, 512KiB or 1MiB")
	}
	return n
}

// Int returns a positive decimal integer.
func (vs *Values) Int(env string) int {
	n, err := strconv.Atoi(vs.Text(env))
	if err != nil || n <= 0 {
		vs.fail(env, "want a positive integer")
	}
	return n
}

// Bool accepts on/off, true/false, yes/no and 1/0, in any case. An empty
// value (-capture=) is an error rather than a silent off.
func (vs *Values) Bool(env string) bool {
	switch strings.ToLower(vs.Text(env)) {
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no":
		return false
	}
	vs.fail(env, "want on/off or true/false")
	return false
}

// Level returns a zap log level; empty means info.
func (vs *Values) Level(env string) zapcore.Level {
	l, err := zapcore.ParseLevel(vs.Text(env))
	if err != nil {
		vs.fail(env, "want debug, info, warn or error")
	}
	return l
}

// PrintUsage writes one entry per setting, in order: variable, flag (or
// "(env only)") and default on one line, the help indented below.
func PrintUsage(w io.Writer, defs []Setting) {
	width := 0
	for _, d := range defs {
		width = max(width, len(d.Env))
	}
	for _, d := range defs {
		name := "(env only)"
		if d.Flag != "" {
			name = "-" + d.Flag
		}
		def := ""
		if d.Default != "" {
			def = " (default " + d.Default + ")"
		}
		line := fmt.Sprintf("  %-*s %-20s%s", width+1, d.Env, name, def)
		fmt.Fprintf(w, "%s\n      %s\n", strings.TrimRight(line, " "), d.Help)
	}
}

// Need is a required setting: its variable, its value and what to say when
// it is missing ("" for "<ENV> is required").
type Need struct {
	Env, Value, Text string
}

// Required reports every need whose value is empty in one error, so that
// an operator fixes them all in one go rather than one per run. Nil when
// none is missing.
func Required(needs ...Need) error {
	var missing []string
	for _, n := range needs {
		if n.Value != "" {
			continue
		}
		t := n.Text
		if t == "" {
			t = n.Env + " is required"
		}
		missing = append(missing, t)
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("config: " + strings.Join(missing, "; "))
}

// MarkdownTable is defs as the README's settings tables show them: one row
// per setting with its variable, its flag ("env only" for secrets), its
// default and its help, the same text -help prints.
func MarkdownTable(defs []Setting) string {
	var b strings.Builder
	b.WriteString("| env | flag | default | meaning |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, d := range defs {
		flag := "env only"
		if d.Flag != "" {
			flag = "`-" + d.Flag + "`"
		}
		def := ""
		if d.Default != "" {
			def = "`" + cell(d.Default) + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.Env, flag, def, cell(d.Help))
	}
	return b.String()
}
