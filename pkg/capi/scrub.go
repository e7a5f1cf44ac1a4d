package capi

import (
	"regexp"
	"strings"
)

// Secrets Meta may echo back in an error message (an error that quotes the
// request URL or its parameters), which must never reach a log line or a
// dead letter header:
//   - access_token=… and appsecret_proof=… in a query string or a form, and
//     the same as JSON fields ("access_token": "…");
//   - a Bearer credential;
//   - anything that looks like a Meta access token: user, page and system
//     user tokens start "EAA" and run on in base62 for a hundred characters
//     or more (Access Token Guide), so EAA and 20 more alphanumerics;
//   - a bare 64-digit hex string: an appsecret_proof (HMAC-SHA256) out of
//     its parameter.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(access_token|appsecret_proof|client_secret)(=|%3D)[^&\s"'<>]*`),
	regexp.MustCompile(`(?i)("(?:access_token|appsecret_proof|client_secret)"\s*:\s*)"[^"]*"`),
	regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`EAA[A-Za-z0-9]{20,}`),
	regexp.MustCompile(`\b[0-9a-fA-F]{64}\b`),
}

// Redacted replaces a secret in scrubbed text.
const Redacted = "[redacted]"

// Scrub returns s without the secrets Meta may echo back (see
// secretPatterns) and without any of known (the token and secrets of the
// request, wherever they appear). Every Graph error text the client hands
// out goes through it; the sender applies it again to what it stores.
func Scrub(s string, known ...string) string {
	for _, k := range known {
		if len(k) >= 4 { // a short value would mask ordinary words
			s = strings.ReplaceAll(s, k, Redacted)
		}
	}
	for i, re := range secretPatterns {
		switch i {
		case 0, 1, 2:
			s = re.ReplaceAllString(s, "${1}${2}"+Redacted)
		default:
			s = re.ReplaceAllString(s, Redacted)
		}
	}
	return s
}
