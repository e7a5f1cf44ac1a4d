package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/audit"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// ctm registry rotate-key re-encrypts under the first key and records
// itself in the audit log, naming key ids, never a key or a secret.
func TestRotateKeyAudited(t *testing.T) {
	mr := miniredis.RunT(t)
	key := func(id string, b byte) string {
		return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
	}
	oldKeys, err := registry.ParseKeyring(key("k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	const token = "EAAsecretTokenThatMustNotBeAudited"
	if _, err := registry.NewStore(rdb, oldKeys).Put(t.Context(), registry.Business{ID: "1001", Channel: registry.Messenger,
		DatasetID: "7001", Enabled: true, AccessToken: registry.NewSecret(token)}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": "redis://" + mr.Addr(), registry.KeyEnv: key("k2", 2) + "," + key("k1", 1)}
	var out bytes.Buffer
	if err := rotateKey(t.Context(), func(k string) string { return env[k] }, t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "re-encrypted 1") {
		t.Fatalf("rotate-key said %q; want one record re-encrypted", out.String())
	}
	entries, err := audit.NewStore(rdb, 0).List(t.Context(), 0, 10)
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit log: %v, %v; want the rotation", entries, err)
	}
	e := entries[0]
	text := strings.Join(e.Changes, "; ")
	if e.Actor != audit.ActorCLI || e.Action != "registry.rotate_key" || !strings.Contains(text, "current key id: k2") {
		t.Errorf("audit entry %+v; want the CLI's rotation naming key id k2", e)
	}
	if strings.Contains(text, token) || strings.Contains(text, env[registry.KeyEnv][3:20]) {
		t.Errorf("audit entry holds a secret: %q", text)
	}
}
