package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
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

// dataset is where one business's events go, and the token that posts them.
type dataset struct {
	id, token string
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

// datasets finds each business's dataset and token: the message's
// dataset_id, else CAPI_DATASETS_FILE, else the Dataset API (once per
// business, cached in Redis as ds:{business} and in memory). Without a token
// or an API (a dry run) the dataset is "dryrun-<business>".
type datasets struct {
	file  map[string]DatasetConfig
	token string // default token
	api   DatasetAPI
	rdb   redis.UniversalClient
	sf    singleflight.Group
	mu    sync.Mutex
	mem   map[string]string
}

func newDatasets(cfg Config, api DatasetAPI, rdb redis.UniversalClient) *datasets {
	return &datasets{file: cfg.Datasets, token: cfg.AccessToken, api: api, rdb: rdb, mem: map[string]string{}}
}

// resolve returns business's dataset; override is the message's dataset_id.
func (d *datasets) resolve(ctx context.Context, business, override string) (dataset, error) {
	token := d.token
	e, listed := d.file[business]
	if listed {
		token = e.Token
	}
	switch {
	case override != "":
		return dataset{override, token}, nil
	case listed && e.DatasetID != "":
		return dataset{e.DatasetID, token}, nil
	case token == "" || d.api == nil:
		return dataset{"dryrun-" + business, token}, nil
	}
	d.mu.Lock()
	id, ok := d.mem[business]
	d.mu.Unlock()
	if ok {
		return dataset{id, token}, nil
	}
	v, err, _ := d.sf.Do(business, func() (any, error) { return d.lookup(ctx, business, token) })
	if err != nil {
		return dataset{}, err
	}
	id = v.(string)
	d.mu.Lock()
	d.mem[business] = id
	d.mu.Unlock()
	return dataset{id, token}, nil
}

func (d *datasets) lookup(ctx context.Context, business, token string) (string, error) {
	key := "ds:{" + business + "}"
	id, err := d.rdb.Get(ctx, key).Result()
	if err == nil && id != "" {
		return id, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("dataset cache: %w", err)
	}
	id, err = d.api.Dataset(ctx, business, token)
	if err != nil {
		return "", err
	}
	if err := d.rdb.Set(ctx, key, id, datasetCacheTTL).Err(); err != nil {
		return "", fmt.Errorf("dataset cache: %w", err)
	}
	return id, nil
}
