package sender

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// DefaultTokenEnv is the environment variable a CAPI_DATASETS_FILE entry's
// token comes from when the entry names none.
const DefaultTokenEnv = "CAPI_ACCESS_TOKEN"

// datasetCacheTTL bounds how long a dataset id found with the Dataset API is
// trusted in Redis; a business's dataset practically never changes.
const datasetCacheTTL = 30 * 24 * time.Hour

// DatasetAPI resolves a business's dataset (capi.Client.Dataset).
type DatasetAPI interface {
	Dataset(ctx context.Context, businessID, token string) (string, error)
}

// dataset is where one business's events go, and what they are sent with.
// Requests are grouped by id and token (pipeline.go).
type dataset struct {
	id, token string
	// secret keys appsecret_proof ("" for none); testCode and agent are the
	// requests' test_event_code and partner_agent.
	secret, testCode, agent string
}

// creds are the credentials of ds's requests.
func (ds dataset) creds() capi.Credentials {
	return capi.Credentials{Token: ds.token, AppSecret: ds.secret, TestEventCode: ds.testCode, PartnerAgent: ds.agent}
}

// readDatasets reads CAPI_DATASETS_FILE and the tokens and app secrets its
// entries name. Decoding is strict: a misspelt "app_secret_env" would
// otherwise leave the business's requests without the proof Meta requires.
func readDatasets(path string, getenv func(string) string) (map[string]DatasetConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: CAPI_DATASETS_FILE: %w", err)
	}
	var raw map[string]struct {
		DatasetID    string `json:"dataset_id"`
		TokenEnv     string `json:"access_token_env"`
		AppSecretEnv string `json:"app_secret_env"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("config: CAPI_DATASETS_FILE: want {\"<business_id>\": {\"dataset_id\": ..., \"access_token_env\": ..., \"app_secret_env\": ...}}: %w", err)
	}
	out := make(map[string]DatasetConfig, len(raw))
	for id, e := range raw {
		if id == "" {
			return nil, errors.New("config: CAPI_DATASETS_FILE: empty business id")
		}
		if e.TokenEnv == "" {
			e.TokenEnv = DefaultTokenEnv
		}
		d := DatasetConfig{DatasetID: e.DatasetID, TokenEnv: e.TokenEnv, Token: getenv(e.TokenEnv), AppSecretEnv: e.AppSecretEnv}
		if e.AppSecretEnv != "" {
			d.AppSecret = getenv(e.AppSecretEnv)
		}
		out[id] = d
	}
	return out, nil
}

// datasets finds each business's dataset and what its requests are sent
// with (token, app secret, test event code, partner agent): from the
// business registry when it holds the business, else from
// CAPI_DATASETS_FILE, else the defaults (CAPI_ACCESS_TOKEN, CAPI_APP_SECRET,
// CAPI_TEST_EVENT_CODE, CAPI_PARTNER_AGENT). The dataset is the message's
// dataset_id, else the record's or the file's, else the Dataset API's
// (once per business, cached in Redis as ds:{business} and in memory).
// Without a token or an API (a dry run) the dataset is "dryrun-<business>".
//
// Only dataset ids are kept in memory, never credentials: they are read
// from the registry's cache on every resolve, so that a changed token is
// used by the next request.
type datasets struct {
	file                           map[string]DatasetConfig
	token, secret, testCode, agent string // the defaults
	api                            DatasetAPI
	rdb                            redis.UniversalClient
	reg                            BusinessSource // nil: no registry
	lookupTimeout                  time.Duration
	// onUnusable is told, once, that the store refuses the registry's
	// commands (an error reply: a store without hashes); the registry is
	// then treated as empty.
	onUnusable func(error)
	unusable   sync.Once

	mu       sync.Mutex
	mem      *lru                 // business → dataset id found with the Dataset API
	inflight map[string]*dsLookup // Dataset API lookups under way or not yet taken
}

// BusinessSource is the business registry as the sender reads it
// (*registry.Cache).
type BusinessSource interface {
	Business(ctx context.Context, id string) (registry.Business, error)
}

// datasetMemory bounds the dataset ids kept in memory: a sender serving
// tens of thousands of businesses keeps the recently used ones; the others
// are read again from Redis (ds:{business}) when they come back.
const datasetMemory = 50_000

// lookupWait is how long resolve waits for a Dataset API call before it
// hands the business's events back (they come again after lookupRetry): a
// slow Dataset API for one business must not hold up the fetch loop, and
// so every other business's events.
const (
	lookupWait  = 200 * time.Millisecond
	lookupRetry = time.Second
)

// dsLookup is one Dataset API lookup (Redis's cache first).
type dsLookup struct {
	done chan struct{}
	id   string
	err  error
	at   time.Time // when it ended
}

func newDatasets(cfg Config, api DatasetAPI, rdb redis.UniversalClient, reg BusinessSource) *datasets {
	return &datasets{file: cfg.Datasets, token: cfg.AccessToken, secret: cfg.AppSecret, testCode: cfg.TestEventCode,
		agent: cfg.PartnerAgent, api: api, rdb: rdb, reg: reg, lookupTimeout: max(cfg.HTTPTimeout, time.Second),
		mem: newLRU(datasetMemory), inflight: map[string]*dsLookup{}}
}

// heldError: the business's conversions cannot be sent as it is set up now
// (disabled in the registry, or its record's secrets cannot be opened).
// They are parked, never dropped, and go back when that changes.
type heldError struct{ reason string }

func (e *heldError) Error() string { return "sender: business held: " + e.reason }

// errLookupPending: the business's Dataset API lookup is still under way.
var errLookupPending = errors.New("sender: dataset lookup under way")

// record returns business's registry record; found is false when the
// registry is off, does not hold it, or the id cannot be a registry id.
func (d *datasets) record(ctx context.Context, business string) (registry.Business, bool, error) {
	if d.reg == nil || registry.ValidID("business_id", business) != nil {
		return registry.Business{}, false, nil
	}
	b, err := d.reg.Business(ctx, business)
	switch {
	case err == nil:
		return b, true, nil
	case errors.Is(err, registry.ErrNotFound):
		return registry.Business{}, false, nil
	case errors.Is(err, registry.ErrNoKey):
		return registry.Business{}, false, &heldError{"its registry record holds encrypted secrets and REGISTRY_KEY is not set on this sender; set it (the same key as ingest's)"}
	case errors.Is(err, registry.ErrDecrypt):
		return registry.Business{}, false, &heldError{"its registry record's secrets do not open with this sender's REGISTRY_KEY (" + err.Error() + ")"}
	}
	if reply := redis.Error(nil); errors.As(err, &reply) {
		// The store answered, refusing the commands: it cannot hold a
		// registry, so no business is in it. (Redis away is retried.)
		d.unusable.Do(func() {
			if d.onUnusable != nil {
				d.onUnusable(err)
			}
		})
		return registry.Business{}, false, nil
	}
	return registry.Business{}, false, fmt.Errorf("registry: %w", err)
}

// held reports why business's conversions are held, or nil when they may
// be sent (a registry failure is not a hold: it is reported as err).
func (d *datasets) held(ctx context.Context, business string) (*heldError, error) {
	b, found, err := d.record(ctx, business)
	var he *heldError
	switch {
	case errors.As(err, &he):
		return he, nil
	case err != nil:
		return nil, err
	case found && !b.Enabled:
		return &heldError{"disabled in the registry (enabled: false); its conversions are parked until it is enabled again"}, nil
	}
	return nil, nil
}

// requireReferral is the registry's require_referral override of
// business, or nil for REQUIRE_REFERRAL's answer.
func (d *datasets) requireReferral(ctx context.Context, business string) *bool {
	b, found, err := d.record(ctx, business)
	if err != nil || !found {
		return nil
	}
	return b.RequireReferral
}

// resolve returns business's dataset; override is the message's dataset_id.
func (d *datasets) resolve(ctx context.Context, business, override string) (dataset, error) {
	ds := dataset{token: d.token, secret: d.secret, testCode: d.testCode, agent: d.agent}
	b, found, err := d.record(ctx, business)
	if err != nil {
		return dataset{}, err
	}
	if found {
		if !b.Enabled {
			return dataset{}, &heldError{"disabled in the registry (enabled: false); its conversions are parked until it is enabled again"}
		}
		if b.AccessToken.IsSet() {
			ds.token = b.AccessToken.Reveal()
		}
		if b.AppSecret.IsSet() {
			ds.secret = b.AppSecret.Reveal()
		}
		if b.TestEventCode != "" {
			ds.testCode = b.TestEventCode
		}
		if b.PartnerAgent != "" {
			ds.agent = b.PartnerAgent
		}
		ds.id = b.DatasetID
	} else if e, listed := d.file[business]; listed {
		ds.token = e.Token
		if e.AppSecretEnv != "" {
			ds.secret = e.AppSecret
		}
		ds.id = e.DatasetID
	}
	switch {
	case override != "":
		ds.id = override
		return ds, nil
	case ds.id != "":
		return ds, nil
	case ds.token == "" || d.api == nil:
		ds.id = "dryrun-" + business
		return ds, nil
	}
	ds.id, err = d.datasetID(ctx, business, ds)
	return ds, err
}

// datasetID returns business's dataset found with the Dataset API (Redis's
// cache first), asked with ds's token and app secret. A lookup runs on its
// own: when it takes longer than lookupWait, errLookupPending tells the
// caller to hand the events back, and the answer is there when they come.
func (d *datasets) datasetID(ctx context.Context, business string, ds dataset) (string, error) {
	d.mu.Lock()
	if id, ok := d.mem.get(business); ok {
		d.mu.Unlock()
		return id, nil
	}
	l := d.inflight[business]
	if l == nil {
		l = &dsLookup{done: make(chan struct{})}
		d.sweepLookups(time.Now())
		d.inflight[business] = l
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.lookupTimeout)
		go func() {
			defer cancel()
			id, err := d.lookup(lctx, business, ds)
			d.mu.Lock()
			l.id, l.err, l.at = id, err, time.Now()
			if err == nil {
				d.mem.put(business, id)
				delete(d.inflight, business)
			}
			d.mu.Unlock()
			close(l.done)
		}()
	}
	d.mu.Unlock()
	select {
	case <-l.done:
	case <-time.After(lookupWait):
		return "", errLookupPending
	case <-ctx.Done():
		return "", ctx.Err()
	}
	d.mu.Lock()
	if d.inflight[business] == l {
		delete(d.inflight, business) // a failure is answered once; the next resolve asks again
	}
	d.mu.Unlock()
	return l.id, l.err
}

// sweepLookups forgets failed lookups nobody came back for; d.mu is held.
func (d *datasets) sweepLookups(now time.Time) {
	if len(d.inflight) < 1000 {
		return
	}
	for b, l := range d.inflight {
		if !l.at.IsZero() && now.Sub(l.at) > time.Minute {
			delete(d.inflight, b)
		}
	}
}

// credentialDatasetAPI is a DatasetAPI that signs with a business's own
// app secret (capi.Client).
type credentialDatasetAPI interface {
	DatasetAs(ctx context.Context, businessID string, cr capi.Credentials) (string, error)
}

func (d *datasets) lookup(ctx context.Context, business string, ds dataset) (string, error) {
	key := "ds:{" + business + "}"
	id, err := d.rdb.Get(ctx, key).Result()
	if err == nil && id != "" {
		return id, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("dataset cache: %w", err)
	}
	if api, ok := d.api.(credentialDatasetAPI); ok {
		id, err = api.DatasetAs(ctx, business, ds.creds())
	} else {
		id, err = d.api.Dataset(ctx, business, ds.token)
	}
	if err != nil {
		return "", err
	}
	if err := d.rdb.Set(ctx, key, id, datasetCacheTTL).Err(); err != nil {
		return "", fmt.Errorf("dataset cache: %w", err)
	}
	return id, nil
}

// lru is a least-recently-used map of strings with a fixed capacity; the
// caller locks it.
type lru struct {
	cap int
	ll  *list.List // front: most recent; values *lruEntry
	m   map[string]*list.Element
}

type lruEntry struct{ k, v string }

func newLRU(n int) *lru { return &lru{cap: n, ll: list.New(), m: map[string]*list.Element{}} }

func (c *lru) get(k string) (string, bool) {
	e, ok := c.m[k]
	if !ok {
		return "", false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*lruEntry).v, true
}

func (c *lru) put(k, v string) {
	if e, ok := c.m[k]; ok {
		e.Value.(*lruEntry).v = v
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&lruEntry{k, v})
	if c.ll.Len() > c.cap {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*lruEntry).k)
	}
}

func (c *lru) len() int { return c.ll.Len() }
