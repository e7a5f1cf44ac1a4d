package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStoreRefusesSecretsWithoutKey(t *testing.T) {
	forBackends(t, testStoreRefusesSecretsWithoutKey)
}

func testStoreRefusesSecretsWithoutKey(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, "")
	_, err := s.Put(ctx, testBusiness("111"))
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "REGISTRY_KEY") {
		t.Fatalf("Put with secrets and no key = %v; want ErrNoKey naming REGISTRY_KEY", err)
	}
	if n := rdb.Exists(ctx, bizKey("111")).Val(); n != 0 {
		t.Fatal("the refused record was stored")
	}
	plain := Business{ID: "222", Channel: Messenger, DatasetID: "9", Enabled: true}
	if _, err := s.Put(ctx, plain); err != nil {
		t.Fatalf("Put without secrets and no key: %v", err)
	}
	if _, err := newTestStore(t, rdb, testKey("k1", 'a')).Put(ctx, testBusiness("111")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "111"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Get of a sealed record without a key = %v; want ErrNoKey", err)
	}
}

func TestStoreWrongKey(t *testing.T) { forBackends(t, testStoreWrongKey) }

func testStoreWrongKey(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	if _, err := newTestStore(t, rdb, testKey("k1", 'a')).Put(ctx, testBusiness("111")); err != nil {
		t.Fatal(err)
	}
	for _, kr := range []string{testKey("k1", 'b'), testKey("k2", 'a')} {
		_, err := newTestStore(t, rdb, kr).Get(ctx, "111")
		if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "k1") {
			t.Errorf("Get with keyring %s = %v; want ErrDecrypt naming key id k1", kr[:2], err)
		}
	}
}

// TestStoreBindsSecretsToRecord copies a sealed value into another record
// and into another field, as someone with write access to Redis could: it
// must not decrypt there.
func TestStoreBindsSecretsToRecord(t *testing.T) { forBackends(t, testStoreBindsSecretsToRecord) }

func testStoreBindsSecretsToRecord(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	a, b := testBusiness("111"), testBusiness("222")
	b.AccessToken, b.AppSecret = NewSecret(testToken2), Secret{}
	for _, x := range []Business{a, b} {
		if _, err := s.Put(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	sealedA := between(rdb.HGet(ctx, bizKey("111"), fieldData).Val(), `"access_token":"`, `"`)
	dataB := rdb.HGet(ctx, bizKey("222"), fieldData).Val()
	sealedB := between(dataB, `"access_token":"`, `"`)
	rdb.HSet(ctx, bizKey("222"), fieldData, strings.Replace(dataB, sealedB, sealedA, 1))
	if _, err := s.Get(ctx, "222"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Get of a record holding another's token = %v; want ErrDecrypt", err)
	}
	dataA := rdb.HGet(ctx, bizKey("111"), fieldData).Val()
	sealedSecret := between(dataA, `"app_secret":"`, `"`)
	rdb.HSet(ctx, bizKey("111"), fieldData, strings.Replace(dataA, sealedSecret, sealedA, 1))
	if _, err := s.Get(ctx, "111"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Get of a record whose app_secret holds its token = %v; want ErrDecrypt", err)
	}
}

func between(s, start, end string) string {
	_, rest, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(rest, end)
	return v
}

func TestRotateKey(t *testing.T) { forBackends(t, testRotateKey) }

func testRotateKey(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	k1, k2 := testKey("k1", 'a'), testKey("k2", 'b')
	old := newTestStore(t, rdb, k1)
	ids := []string{"101", "102", "103"}
	for _, id := range ids {
		if _, err := old.Put(ctx, testBusiness(id)); err != nil {
			t.Fatal(err)
		}
	}
	noSecrets := Business{ID: "104", Channel: Messenger, Enabled: true}
	if _, err := old.Put(ctx, noSecrets); err != nil {
		t.Fatal(err)
	}

	both := newTestStore(t, rdb, k2+","+k1)
	if _, err := both.Put(ctx, Business{ID: "105", Channel: Instagram, AccessToken: NewSecret(testToken2), Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if b, err := both.Get(ctx, id); err != nil || b.AccessToken.Reveal() != testToken {
			t.Fatalf("Get(%s) with the old key listed second = %v; want the token", id, err)
		}
	}
	if _, err := newTestStore(t, rdb, k2).Get(ctx, "101"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("before rotation, Get with only the new key = %v; want ErrDecrypt", err)
	}

	res, err := both.RotateKey(ctx)
	if err != nil || res != (RotateResult{Records: 5, Reencrypted: 3}) {
		t.Fatalf("RotateKey = %+v, %v; want 5 records, 3 re-encrypted", res, err)
	}
	for _, id := range ids {
		if d := rdb.HGet(ctx, bizKey(id), fieldData).Val(); strings.Contains(d, "enc1:k1:") || !strings.Contains(d, "enc1:k2:") {
			t.Fatalf("record %s after rotation: %s; want every secret under k2", id, d)
		}
	}
	if res, err := both.RotateKey(ctx); err != nil || res.Reencrypted != 0 {
		t.Fatalf("second RotateKey = %+v, %v; want nothing to do", res, err)
	}
	onlyNew := newTestStore(t, rdb, k2)
	for _, id := range append(ids, "104", "105") {
		b, err := onlyNew.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s) after dropping the old key: %v", id, err)
		}
		if id <= "103" && (b.AccessToken.Reveal() != testToken || b.AppSecret.Reveal() != testAppSecret) {
			t.Fatalf("Get(%s) after rotation lost a secret", id)
		}
	}
}

func TestRotateKeyReportsUnreadable(t *testing.T) { forBackends(t, testRotateKeyReportsUnreadable) }

func testRotateKeyReportsUnreadable(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	if _, err := newTestStore(t, rdb, testKey("k0", 'z')).Put(ctx, testBusiness("101")); err != nil {
		t.Fatal(err)
	}
	if _, err := newTestStore(t, rdb, testKey("k1", 'a')).Put(ctx, testBusiness("102")); err != nil {
		t.Fatal(err)
	}
	res, err := newTestStore(t, rdb, testKey("k2", 'b')+","+testKey("k1", 'a')).RotateKey(ctx)
	if err == nil || !strings.Contains(err.Error(), "business 101") || !strings.Contains(err.Error(), "k0") || res.Reencrypted != 1 {
		t.Fatalf("RotateKey = %+v, %v; want 102 rotated and an error naming business 101 and key id k0", res, err)
	}
}
