package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultTokenEnv is the variable a CAPI_DATASETS_FILE entry's token comes
// from when the entry names none; ParseDatasetsFile then leaves the record's
// own token unset, so the business keeps following CAPI_ACCESS_TOKEN.
const DefaultTokenEnv = "CAPI_ACCESS_TOKEN"

// datasetsFileKeys are the keys an entry of CAPI_DATASETS_FILE may have.
var datasetsFileKeys = []string{"dataset_id", "access_token_env"}

// ParseDatasetsFile reads the CAPI_DATASETS_FILE format,
//
//	{"<business_id>": {"dataset_id": "...", "access_token_env": "ENV_NAME"}}
//
// strictly: an unknown key is an error naming it (with the key it was
// probably meant to be), and an inline "access_token" is refused with what
// to do instead, as a token belongs in the environment or the registry, not
// in a file. The file has no channel, so every record gets channel; records
// are enabled. The token is read from the named variable with getenv; a
// named variable that is empty is an error (naming the variable, not its
// value). Errors are prefixed with "CAPI_DATASETS_FILE".
func ParseDatasetsFile(data []byte, channel Channel, getenv func(string) string) ([]Business, error) {
	const name = "CAPI_DATASETS_FILE"
	want := `want {"<business_id>": {"dataset_id": "...", "access_token_env": "ENV_NAME"}}`
	if !channel.Valid() {
		return nil, fmt.Errorf("%s: channel must be whatsapp, messenger or instagram", name)
	}
	var raw map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, want, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%s: %s: data after the object", name, want)
	}
	ids := make([]string, 0, len(raw))
	for id := range raw {
		ids = append(ids, id)
	}
	slices.Sort(ids) // errors and records in a stable order
	out := make([]Business, 0, len(raw))
	for _, id := range ids {
		if err := ValidID("business_id", id); err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", name, id, err)
		}
		b, err := parseDatasetsEntry(id, raw[id], channel, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: business %s: %w", name, id, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func parseDatasetsEntry(id string, msg json.RawMessage, channel Channel, getenv func(string) string) (Business, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(msg, &fields); err != nil || fields == nil {
		return Business{}, errors.New(`want an object {"dataset_id": "...", "access_token_env": "ENV_NAME"}`)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(datasetsFileKeys, k) {
			continue
		}
		if k == "access_token" {
			return Business{}, fmt.Errorf(`inline "access_token" is not allowed: put the token in an environment variable and name it with "access_token_env", or store it encrypted in the registry (PUT /v1/businesses/%s)`, id)
		}
		msg := fmt.Sprintf("unknown key %q (known keys: %s)", k, strings.Join(datasetsFileKeys, ", "))
		if s := suggestKey(k); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return Business{}, errors.New(msg)
	}
	var e struct {
		DatasetID string `json:"dataset_id"`
		TokenEnv  string `json:"access_token_env"`
	}
	if err := json.Unmarshal(msg, &e); err != nil {
		return Business{}, errors.New(`dataset_id and access_token_env must be strings`)
	}
	b := Business{ID: id, Channel: channel, DatasetID: e.DatasetID, Enabled: true}
	if e.TokenEnv != "" && e.TokenEnv != DefaultTokenEnv {
		tok := getenv(e.TokenEnv)
		if tok == "" {
			return Business{}, fmt.Errorf("access_token_env names %s, which is not set", e.TokenEnv)
		}
		b.AccessToken = Secret{tok}
	}
	if err := b.Validate(); err != nil {
		return Business{}, err
	}
	return b, nil
}

// suggestKey returns the known key k was probably meant to be: the same
// letters without case, '_' and '-'.
func suggestKey(k string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	for _, known := range datasetsFileKeys {
		if norm(k) == norm(known) {
			return known
		}
	}
	return ""
}

// ImportResult says what Import did with each business.
type ImportResult struct {
	Created []string // ids stored
	Skipped []string // ids already in the registry, left as they are
}

// Import creates each of bs that the registry does not hold yet and skips
// the ones it does, so that importing the same file twice, or after a
// business was edited through the API, changes nothing. It stops at the
// first error.
func (s *Store) Import(ctx context.Context, bs []Business) (ImportResult, error) {
	var res ImportResult
	for _, b := range bs {
		err := s.Create(ctx, b)
		switch {
		case errors.Is(err, ErrExists):
			res.Skipped = append(res.Skipped, b.ID)
		case err != nil:
			return res, err
		default:
			res.Created = append(res.Created, b.ID)
		}
	}
	return res, nil
}
