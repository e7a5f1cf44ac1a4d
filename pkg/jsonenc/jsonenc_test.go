package jsonenc

import (
	"encoding/json"
	"testing"
)

// AppendString writes the bytes encoding/json writes, for strings and
// byte slices alike.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\n\r\t\b\f\x01\x1f", "<a>&", "\u2028\u2029", "é🇧🇷", "\xff\xfe bad", "\U000e0067"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s; want %s", s, got, want)
		}
		if got := AppendString(nil, []byte(s)); string(got) != string(want) {
			t.Errorf("AppendString([]byte %q) = %s; want %s", s, got, want)
		}
	})
}

func TestAppendStringDoesNotAllocate(t *testing.T) {
	b := make([]byte, 0, 256)
	s := "a \"quoted\" é 🇧🇷 \u2028 value"
	if n := testing.AllocsPerRun(100, func() { b = AppendString(b[:0], s) }); n != 0 {
		t.Errorf("AppendString allocates %v times; want 0", n)
	}
}
