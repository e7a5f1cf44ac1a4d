package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

const (
	testToken     = "EAABtestTOKEN-one-0001"
	testToken2    = "EAABtestTOKEN-two-0002"
	testAppSecret = "appsecret0123456789abcdefSECRET"
)

// secretsEqual compares secrets by value (cmp cannot see the field).
var secretsEqual = cmp.Comparer(func(a, b Secret) bool { return a.v == b.v })

func newTestRedis(t *testing.T) *redis.Client {
	t.Helper()
	return redistest.Start(t).Client(t)
}

func newTestStore(t *testing.T, rdb redis.UniversalClient, keyring string) *Store {
	t.Helper()
	var k *Keyring
	if keyring != "" {
		k = mustKeyring(t, keyring)
	}
	return NewStore(rdb, k)
}

func testBusiness(id string) Business {
	return Business{ID: id, Channel: WhatsApp, DatasetID: "900" + id, AccessToken: NewSecret(testToken),
		AppSecret: NewSecret(testAppSecret), TestEventCode: "TEST123", PhoneNumberIDs: []string{"55" + id},
		Enabled: true}
}

func TestStoreRoundTrip(t *testing.T) { forBackends(t, testStoreRoundTrip) }

func testStoreRoundTrip(t *testing.T, rdb *redis.Client) {
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return t0 }
	no := false
	want := testBusiness("111")
	want.RequireReferral, want.AutomaticEvents, want.PartnerAgent = &no, true, "acme"
	created, err := s.Put(ctx, want)
	if err != nil || !created {
		t.Fatalf("Put = %v, %v; want created", created, err)
	}
	got, err := s.Get(ctx, "111")
	if err != nil {
		t.Fatal(err)
	}
	want.CreatedAt, want.UpdatedAt = t0, t0
	if d := cmp.Diff(want, got, secretsEqual); d != "" {
		t.Fatalf("Get mismatch (-want +got):\n%s", d)
	}
	raw := rdb.HGetAll(ctx, bizKey("111")).Val()
	if strings.Contains(fmt.Sprint(raw), testToken) || strings.Contains(fmt.Sprint(raw), testAppSecret) {
		t.Fatalf("Redis holds a secret in the clear: %v", raw)
	}

	t1 := t0.Add(time.Hour)
	s.Now = func() time.Time { return t1 }
	want.AccessToken = NewSecret(testToken2)
	if created, err := s.Put(ctx, want); err != nil || created {
		t.Fatalf("replace: Put = %v, %v; want replaced", created, err)
	}
	got, _ = s.Get(ctx, "111")
	if got.AccessToken.Reveal() != testToken2 || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t1) {
		t.Fatalf("after replace: token %s created %v updated %v; want new token, %v, %v", got.AccessToken, got.CreatedAt, got.UpdatedAt, t0, t1)
	}
	if err := s.Create(ctx, want); !errors.Is(err, ErrExists) {
		t.Fatalf("Create of an existing record = %v; want ErrExists", err)
	}
	if err := s.Delete(ctx, "111"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "111"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v; want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "111"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v; want ErrNotFound", err)
	}
}

func TestStoreValidates(t *testing.T) { forBackends(t, testStoreValidates) }

func testStoreValidates(t *testing.T, rdb *redis.Client) {
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	tests := []struct {
		name, field string
		mut         func(*Business)
	}{
		{"id not numeric", "business_id", func(b *Business) { b.ID = "abc" }},
		{"channel", "channel", func(b *Business) { b.Channel = "sms" }},
		{"dataset", "dataset_id", func(b *Business) { b.DatasetID = "x1" }},
		{"token with newline", "access_token", func(b *Business) { b.AccessToken = NewSecret(testToken + "\n") }},
		{"bearer token", "access_token", func(b *Business) { b.AccessToken = NewSecret("Bearer-" + testToken) }},
		{"phones off WhatsApp", "phone_number_ids", func(b *Business) { b.Channel = Messenger }},
		{"phone twice", "phone_number_ids", func(b *Business) { b.PhoneNumberIDs = []string{"1", "1"} }},
		{"long test code", "test_event_code", func(b *Business) { b.TestEventCode = strings.Repeat("T", MaxTestEventCodeLen+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBusiness("111")
			tt.mut(&b)
			_, err := s.Put(t.Context(), b)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Put = %v; want a ValidationError on %s", err, tt.field)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("error %q quotes the token", err)
			}
		})
	}
}

func TestStoreListPaging(t *testing.T) { forBackends(t, testStoreListPaging) }

func testStoreListPaging(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("10%d", i)
		want = append(want, id)
		if _, err := s.Put(ctx, testBusiness(id)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor, pages := "", 0
	for {
		p, err := s.List(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, b := range p.Businesses {
			got = append(got, b.ID)
		}
		if pages == 1 {
			// a change behind the cursor and one ahead of it
			s.Delete(ctx, "100")
			s.Delete(ctx, "104")
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id == "104" })
	if !slices.Equal(got, want) || pages != 2 {
		t.Fatalf("paged ids = %v in %d pages; want %v in 2", got, pages, want)
	}
	for _, tt := range []struct {
		cursor string
		limit  int
		field  string
	}{{"x", 3, "cursor"}, {"", MaxPageSize + 1, "limit"}} {
		var ve *ValidationError
		if _, err := s.List(ctx, tt.cursor, tt.limit); !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("List(%q, %d) = %v; want a ValidationError on %s", tt.cursor, tt.limit, err, tt.field)
		}
	}
}

func TestStorePhones(t *testing.T) { forBackends(t, testStorePhones) }

func testStorePhones(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	a := testBusiness("111")
	a.PhoneNumberIDs = []string{"5001", "5002"}
	if _, err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if id, err := s.BusinessForPhone(ctx, "5002"); err != nil || id != "111" {
		t.Fatalf("BusinessForPhone(5002) = %q, %v; want 111", id, err)
	}
	b := testBusiness("222")
	b.PhoneNumberIDs = []string{"5002"}
	var pt *PhoneTakenError
	if _, err := s.Put(ctx, b); !errors.As(err, &pt) || pt.Owner != "111" || pt.PhoneNumberID != "5002" {
		t.Fatalf("Put of a taken phone = %v; want PhoneTakenError 5002 owned by 111", err)
	}
	a.PhoneNumberIDs = []string{"5001"}
	if _, err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BusinessForPhone(ctx, "5002"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a removed phone still resolves: %v", err)
	}
	if _, err := s.Put(ctx, b); err != nil {
		t.Fatalf("Put of the freed phone: %v", err)
	}
	if err := s.Delete(ctx, "222"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BusinessForPhone(ctx, "5002"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted business's phone still resolves: %v", err)
	}
}

func TestStoreChanges(t *testing.T) { forBackends(t, testStoreChanges) }

func testStoreChanges(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	s.changeLog = 3
	for _, id := range []string{"101", "102", "103", "101", "104"} {
		if _, err := s.Put(ctx, testBusiness(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.Delete(ctx, "102")
	v, ids, reset, err := s.Changes(ctx, 4)
	if err != nil || v != 6 || reset || !slices.Equal(ids, []string{"104", "102"}) {
		t.Fatalf("Changes(4) = %d, %v, %v, %v; want 6, [104 102]", v, ids, reset, err)
	}
	// 103 (version 3) was trimmed: a cache at version 1 missed it.
	if _, _, reset, _ := s.Changes(ctx, 1); !reset {
		t.Fatal("Changes(1) past the trimmed log: want reset")
	}
	if _, _, reset, _ := s.Changes(ctx, 7); !reset {
		t.Fatal("Changes from a version ahead of Redis (Redis lost the registry): want reset")
	}
}

// TestStoreOnCluster runs every write and read on Redis Cluster, which
// refuses a script or transaction over keys of several hash slots.
func TestStoreOnCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	t.Cleanup(func() { rdb.Close() })
	s := NewStore(rdb, mustKeyring(t, testKey("k2", 'b')+","+testKey("k1", 'a')))
	ctx := context.Background()
	for _, id := range []string{"101", "102"} {
		if _, err := s.Put(ctx, testBusiness(id)); err != nil {
			t.Fatalf("Put on cluster: %v", err)
		}
	}
	if _, err := s.Get(ctx, "101"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.List(ctx, "", 10); err != nil || len(p.Businesses) != 2 {
		t.Fatalf("List on cluster = %d, %v", len(p.Businesses), err)
	}
	if _, _, _, err := s.Changes(ctx, 0); err != nil {
		t.Fatalf("Changes on cluster: %v", err)
	}
	if _, err := s.RotateKey(ctx); err != nil {
		t.Fatalf("RotateKey on cluster: %v", err)
	}
	if err := s.Delete(ctx, "101"); err != nil {
		t.Fatalf("Delete on cluster: %v", err)
	}
}

func newTestServer(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t)
}
