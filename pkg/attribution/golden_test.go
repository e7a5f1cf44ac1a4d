package attribution

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestStoredGolden pins the stored representation: keys, packed values and
// expiries. A layout change must be deliberate (go test -update) because
// contexts written by the old code are still in Redis when the new one reads
// them.
func quoteBytes(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= ' ' && c <= '~' && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestStoredGolden(t *testing.T) {
	s, mr := newTestStore(t, 0)
	older := waTouch(testUser, "ARAolderClick_x8GJ2k1", t0.Add(-90*time.Minute))
	record(t, s,
		waTouch(testUser, testClid, t0),
		older,
		Touch{Key: Key{Channel: WhatsApp, BusinessID: testWABA, UserID: "4915123456789"}, // On-Premises: no phone id
			ClickID: "ARAsecondClickId_x8GJ2k1", AdID: "1234567890", SourceType: "post",
			SourceURL: "https://www.facebook.com/100000000000001/posts/1", Time: t0.Add(time.Second)},
		Touch{Key: Key{Channel: Messenger, BusinessID: "1067280970047460", UserID: "6254557967970212"},
			AdID: "6045246247433", SourceType: "ADS", Ref: "summer_sale", Time: t0.Add(1500 * time.Millisecond)},
		Touch{Key: Key{Channel: Instagram, BusinessID: "17841405822304914", UserID: "1254459154682919"},
			AdID: "120212345678905555", SourceType: "ADS", Time: t0.Add(-time.Hour)},
	)

	var b bytes.Buffer
	fmt.Fprintf(&b, "# key | ttl | value bytes (printable ASCII as is, else \\xNN); see codec.go\n")
	fmt.Fprintf(&b, "#   decoded context, for review\n")
	for _, k := range mr.Keys() {
		v, err := mr.Get(k)
		if err != nil {
			t.Fatalf("Get(%s): %v", k, err)
		}
		fmt.Fprintf(&b, "%s | %v | %s\n", k, mr.TTL(k), quoteBytes(v))
		if k[0] == 'c' {
			var c Context
			parts := strings.Split(strings.Trim(k, "c:{}"), ":")
			c.Channel = map[string]string{"w": WhatsApp, "m": Messenger, "i": Instagram}[parts[0]]
			c.BusinessID, c.UserID = parts[1], parts[2]
			if ck, _ := contextKey(c.Key); ck != k {
				t.Errorf("key %s parses to %v, whose key is %s", k, c.Key, ck)
			}
			if err := decodeContext(v, &c); err != nil {
				t.Fatalf("decode %s: %v", k, err)
			}
			j, _ := json.Marshal(c)
			fmt.Fprintf(&b, "#   %s\n", j)
		}
	}

	path := filepath.Join("testdata", "stored.golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("stored representation changed; if deliberate, run go test ./pkg/attribution -update\ngot:\n%s\nwant:\n%s", b.Bytes(), want)
	}
}
