package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

func TestLRUBounded(t *testing.T) {
	c := newLRU(3)
	for i := range 5 {
		c.put(strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	c.get("2") // most recent now
	c.put("5", "v5")
	if c.len() != 3 {
		t.Fatalf("len = %d; want 3", c.len())
	}
	for k, want := range map[string]bool{"2": true, "4": true, "5": true, "3": false, "0": false} {
		if _, ok := c.get(k); ok != want {
			t.Errorf("get(%s) present = %v; want %v", k, ok, want)
		}
	}
}

// blockingAPI answers Dataset API calls only once released, and records
// the credentials it was asked with.
type blockingAPI struct {
	release chan struct{}
	got     chan capi.Credentials
}

func (b *blockingAPI) Dataset(ctx context.Context, business, token string) (string, error) {
	return "", errors.New("want DatasetAs")
}

func (b *blockingAPI) DatasetAs(ctx context.Context, business string, cr capi.Credentials) (string, error) {
	b.got <- cr
	select {
	case <-b.release:
		return "ds-" + business, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// A slow Dataset API call does not hold resolve (the fetch loop) up: it
// answers errLookupPending, and the id once the call is done. The call
// carries the business's own app secret.
func TestResolveDoesNotWaitForSlowDatasetAPI(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	api := &blockingAPI{release: make(chan struct{}), got: make(chan capi.Credentials, 1)}
	d := newDatasets(Config{AccessToken: "tok", AppSecret: "sec"}, api, rdb, nil)
	ctx := t.Context()
	if _, err := d.resolve(ctx, "1001", ""); !errors.Is(err, errLookupPending) {
		t.Fatalf("resolve during a slow lookup = %v; want errLookupPending", err)
	}
	if cr := <-api.got; cr.Token != "tok" || cr.AppSecret != "sec" {
		t.Error("lookup not asked with the business's token and app secret")
	}
	close(api.release)
	for {
		ds, err := d.resolve(ctx, "1001", "")
		if errors.Is(err, errLookupPending) {
			continue
		}
		if err != nil || ds.id != "ds-1001" {
			t.Fatalf("resolve = %+v, %v; want ds-1001", ds.id, err)
		}
		break
	}
	if v := rdb.Get(ctx, "ds:{1001}").Val(); v != "ds-1001" {
		t.Errorf("ds:{1001} = %q; want the id cached in Redis", v)
	}
}

func TestPauseRecord(t *testing.T) {
	long := strings.Repeat("é", 400)
	r := newPauseRecord(&capi.APIError{Status: 400, Code: 190, Subcode: 463, Message: long}, time.UnixMilli(1234), "v27.0")
	if r.Since != 1234 || r.Code != 190 || r.Subcode != 463 || r.Class != "setup_fault" || len(r.Message) > pauseRecordMessageMax || !utf8.ValidString(r.Message) {
		t.Errorf("record = %+v", r)
	}
	b, _ := json.Marshal(r)
	if got, ok := ParsePauseRecord(string(b)); !ok || got != r {
		t.Errorf("ParsePauseRecord(%s) = %+v, %v", b, got, ok)
	}
	if _, ok := ParsePauseRecord("1"); ok {
		t.Error(`the old "1" parsed as a record`)
	}
}

type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

type failingSource struct{ err error }

func (f failingSource) Business(context.Context, string) (registry.Business, error) {
	return registry.Business{}, f.err
}

// A store that refuses the registry's commands (the all-in-one's embedded
// store before it had hashes) holds no registry: the defaults apply and
// that is said once. Redis away is an error (retried), not the defaults.
func TestRegistryRefusedByStore(t *testing.T) {
	told := 0
	d := newDatasets(Config{AccessToken: "tok"}, nil, nil, failingSource{fmt.Errorf("registry: get business 1: %w", replyErr("ERR unknown command 'hgetall'"))})
	d.onUnusable = func(error) { told++ }
	for range 2 {
		if ds, err := d.resolve(t.Context(), "1001", ""); err != nil || ds.token != "tok" {
			t.Fatalf("resolve = %v; want the default token", err)
		}
	}
	if told != 1 {
		t.Errorf("told %d times; want once", told)
	}
	d = newDatasets(Config{AccessToken: "tok"}, nil, nil, failingSource{errors.New("dial tcp: connection refused")})
	if _, err := d.resolve(t.Context(), "1001", ""); err == nil {
		t.Error("Redis away: resolve fell back to the defaults; want an error")
	}
}
