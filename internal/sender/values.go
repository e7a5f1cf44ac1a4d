package sender

import (
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// parser converts setting values, keeping the first error. Errors name the
// setting, never its value (it may be a secret).
type parser struct {
	vals map[string]*textFlag
	err  error
}

func (p *parser) str(env string) string { return strings.TrimSpace(p.vals[env].v) }

func (p *parser) fail(env, what string) {
	if p.err == nil {
		p.err = &configError{env: env, what: what}
	}
}

type configError struct{ env, what string }

func (e *configError) Error() string { return "config: " + e.env + ": " + e.what }

func (p *parser) duration(env string) time.Duration {
	d, err := ParseDuration(p.str(env))
	if err != nil || d <= 0 {
		p.fail(env, "want a positive duration such as 10m, 36h or 8d")
	}
	return d
}

func (p *parser) integer(env string) int {
	n, err := strconv.Atoi(p.str(env))
	if err != nil || n <= 0 {
		p.fail(env, "want a positive integer")
	}
	return n
}

func (p *parser) boolean(env string) bool {
	switch strings.ToLower(p.str(env)) {
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no":
		return false
	}
	p.fail(env, "want true or false")
	return false
}

func (p *parser) level(env string) zapcore.Level {
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(p.str(env))); err != nil {
		p.fail(env, "want debug, info, warn or error")
	}
	return l
}

// ParseDuration is time.ParseDuration that also takes whole days ("8d"),
// the natural unit of TTLs.
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err == nil {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}

// fmtDuration prints whole days as "8d" and the rest as Go durations
// without zero tails ("10m", not "10m0s").
func fmtDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
