package webhook

// SignatureHeader is the header Meta signs deliveries with.
const SignatureHeader = "X-Hub-Signature-256"

// Sign returns the X-Hub-Signature-256 value for body under secret:
// "sha256=" followed by the lowercase hex HMAC-SHA256 of the raw body.
func Sign(body, secret []byte) string {
	panic("TODO(webhook helper)")
}

// Verify checks header (the X-Hub-Signature-256 value) against body with each
// secret in turn, in constant time. It returns ErrSignature when none matches.
func Verify(body []byte, header string, secrets [][]byte) error {
	panic("TODO(webhook helper)")
}

// Challenge answers the GET subscription handshake: it returns the challenge
// and true when mode is "subscribe" and token equals verifyToken (compared in
// constant time), and "", false otherwise.
func Challenge(mode, token, challenge, verifyToken string) (string, bool) {
	panic("TODO(webhook helper)")
}
