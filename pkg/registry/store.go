package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// Store keeps the registry in Redis (key layout in keys.go).
type Store struct {
	rdb  redis.UniversalClient
	keys *Keyring
	// Now defaults to time.Now; tests set it.
	Now func() time.Time

	put, del, swap *redis.Script
	changeLog      int // ChangeLogSize; tests make it small
}

// NewStore returns a store on rdb. keys may be nil: records without
// secrets can then be stored, and ErrNoKey names REGISTRY_KEY for the rest.
func NewStore(rdb redis.UniversalClient, keys *Keyring) *Store {
	return &Store{rdb: rdb, keys: keys, Now: time.Now,
		put: redis.NewScript(putScript), del: redis.NewScript(deleteScript), swap: redis.NewScript(swapScript),
		changeLog: ChangeLogSize}
}

// Keyring is the store's keyring (nil when REGISTRY_KEY is not set).
func (s *Store) Keyring() *Keyring { return s.keys }

// record is a Business as stored in the data field; secrets are sealed.
type record struct {
	Channel         Channel  `json:"channel"`
	DatasetID       string   `json:"dataset_id,omitempty"`
	AccessToken     string   `json:"access_token,omitempty"`
	AppSecret       string   `json:"app_secret,omitempty"`
	TestEventCode   string   `json:"test_event_code,omitempty"`
	PhoneNumberIDs  []string `json:"phone_number_ids,omitempty"`
	RequireReferral *bool    `json:"require_referral,omitempty"`
	AutomaticEvents bool     `json:"automatic_events,omitempty"`
	Attribution     string   `json:"attribution,omitempty"` // "" = last_touch: older records read the same
	Enabled         bool     `json:"enabled"`
	PartnerAgent    string   `json:"partner_agent,omitempty"`
}

// The names secrets are bound to in their additional data.
const (
	fieldAccessToken = "access_token"
	fieldAppSecret   = "app_secret"
)

func (s *Store) encode(b *Business) (string, error) {
	r := record{Channel: b.Channel, DatasetID: b.DatasetID, TestEventCode: b.TestEventCode,
		PhoneNumberIDs: b.PhoneNumberIDs, RequireReferral: b.RequireReferral,
		AutomaticEvents: b.AutomaticEvents, Enabled: b.Enabled, PartnerAgent: b.PartnerAgent}
	if b.Attribution == FirstTouch {
		r.Attribution = string(FirstTouch)
	}
	var err error
	if b.AccessToken.IsSet() {
		if r.AccessToken, err = s.keys.seal(b.ID, fieldAccessToken, b.AccessToken.v); err != nil {
			return "", err
		}
	}
	if b.AppSecret.IsSet() {
		if r.AppSecret, err = s.keys.seal(b.ID, fieldAppSecret, b.AppSecret.v); err != nil {
			return "", err
		}
	}
	out, err := json.Marshal(r)
	return string(out), err
}

func (s *Store) decode(id string, h map[string]string) (Business, error) {
	b, _, err := s.decodeKey(id, h)
	return b, err
}

// decodeKey is decode, also returning on failure the id of the key a
// secret is sealed with ("" when the record itself is unreadable).
func (s *Store) decodeKey(id string, h map[string]string) (Business, string, error) {
	var r record
	if err := json.Unmarshal([]byte(h[fieldData]), &r); err != nil {
		return Business{}, "", fmt.Errorf("registry: business %s: unreadable record: %w", id, err)
	}
	b := Business{ID: id, Channel: r.Channel, DatasetID: r.DatasetID, TestEventCode: r.TestEventCode,
		PhoneNumberIDs: r.PhoneNumberIDs, RequireReferral: r.RequireReferral,
		AutomaticEvents: r.AutomaticEvents, Attribution: Attribution(r.Attribution), Enabled: r.Enabled, PartnerAgent: r.PartnerAgent,
		CreatedAt: unixMilli(h[fieldCreate]), UpdatedAt: unixMilli(h[fieldUpdate])}
	if r.AccessToken != "" {
		v, keyID, err := s.keys.open(id, fieldAccessToken, r.AccessToken)
		if err != nil {
			return Business{}, keyID, err
		}
		b.AccessToken = Secret{v}
	}
	if r.AppSecret != "" {
		v, keyID, err := s.keys.open(id, fieldAppSecret, r.AppSecret)
		if err != nil {
			return Business{}, keyID, err
		}
		b.AppSecret = Secret{v}
	}
	return b, "", nil
}

func unixMilli(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Put creates or replaces b (the whole record; CreatedAt is kept on a
// replace). It reports whether the record was created.
func (s *Store) Put(ctx context.Context, b Business) (created bool, err error) {
	return s.write(ctx, b, "put")
}

// Create stores b only if no record has its id, else ErrExists.
func (s *Store) Create(ctx context.Context, b Business) error {
	_, err := s.write(ctx, b, "create")
	return err
}

func (s *Store) write(ctx context.Context, b Business, mode string) (bool, error) {
	if err := b.Validate(); err != nil {
		return false, err
	}
	data, err := s.encode(&b)
	if err != nil {
		return false, err
	}
	// Confirmed by REDIS_MIN_REPLICAS replicas before the API answers.
	cmd, err := replicas.RunScript(ctx, s.rdb, s.put, scriptKeys(b.ID), b.ID, data, strings.Join(b.PhoneNumberIDs, ","),
		s.Now().UnixMilli(), mode, s.changeLog)
	var res []any
	if err == nil {
		res, err = cmd.Slice()
	}
	if err != nil {
		return false, fmt.Errorf("registry: put business %s: %w", b.ID, err)
	}
	code, _ := res[0].(int64)
	detail, _ := res[1].(string)
	switch code {
	case -1:
		return false, fmt.Errorf("%w: %s", ErrExists, b.ID)
	case -2:
		phone, owner, _ := strings.Cut(detail, ",")
		return false, &PhoneTakenError{PhoneNumberID: phone, Owner: owner}
	}
	return code == 1, nil
}

// Get returns the record of id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Business, error) {
	if err := ValidID("business_id", id); err != nil {
		return Business{}, err
	}
	h, err := s.rdb.HGetAll(ctx, bizKey(id)).Result()
	if err != nil {
		return Business{}, fmt.Errorf("registry: get business %s: %w", id, err)
	}
	if len(h) == 0 {
		return Business{}, ErrNotFound
	}
	return s.decode(id, h)
}

// Delete removes the record of id, or answers ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ValidID("business_id", id); err != nil {
		return err
	}
	cmd, err := replicas.RunScript(ctx, s.rdb, s.del, scriptKeys(id), id, "", "", "", "", s.changeLog)
	var n int64
	if err == nil {
		n, err = cmd.Int64()
	}
	if err != nil {
		return fmt.Errorf("registry: delete business %s: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// BusinessForPhone returns the id of the WhatsApp business that lists
// phoneNumberID, or ErrNotFound.
func (s *Store) BusinessForPhone(ctx context.Context, phoneNumberID string) (string, error) {
	id, err := s.rdb.HGet(ctx, keyPhones, phoneNumberID).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("registry: phone lookup: %w", err)
	}
	return id, nil
}

// Paging limits of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page is one page of List.
type Page struct {
	Businesses []Business
	// Unreadable are the page's records that could not be decoded (a
	// secret sealed with a key REGISTRY_KEY no longer lists, a corrupt
	// record), in id order like Businesses: one such record must not hide
	// the others.
	Unreadable []Unreadable
	Next       string // the cursor of the next page; "" on the last page
}

// Unreadable is a record List could not decode.
type Unreadable struct {
	ID    string
	KeyID string // the key id its secret is sealed with; "" when not known
	Err   error  // why (ErrDecrypt, ErrNoKey or a decoding error; no secret)
}

// List returns up to limit records with ids after cursor, in lexicographic
// id order ("" starts at the beginning; limit <= 0 is DefaultPageSize).
// Paging is stable under concurrent changes: a record created behind the
// cursor is not seen, nothing is seen twice.
func (s *Store) List(ctx context.Context, cursor string, limit int) (Page, error) {
	ids, next, err := s.listIDs(ctx, cursor, limit)
	if err != nil {
		return Page{}, err
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, bizKey(id))
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("registry: list: %w", err)
	}
	page := Page{Next: next, Businesses: make([]Business, 0, len(ids))}
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue // deleted between the index read and this one
		}
		b, keyID, err := s.decodeKey(ids[i], c.Val())
		if err != nil {
			page.Unreadable = append(page.Unreadable, Unreadable{ID: ids[i], KeyID: keyID, Err: err})
			continue
		}
		page.Businesses = append(page.Businesses, b)
	}
	return page, nil
}

func (s *Store) listIDs(ctx context.Context, cursor string, limit int) (ids []string, next string, err error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if limit > MaxPageSize {
		return nil, "", &ValidationError{"limit", fmt.Sprintf("at most %d", MaxPageSize)}
	}
	min := "-"
	if cursor != "" {
		if err := ValidID("cursor", cursor); err != nil {
			return nil, "", &ValidationError{"cursor", "not a cursor from next_cursor"}
		}
		min = "(" + cursor
	}
	ids, err = s.rdb.ZRangeByLex(ctx, keyIndex, &redis.ZRangeBy{Min: min, Max: "+", Count: int64(limit) + 1}).Result()
	if err != nil {
		return nil, "", fmt.Errorf("registry: list: %w", err)
	}
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	return ids, next, nil
}

// Changes returns the registry's version and the ids changed after since.
// reset says the change log no longer reaches back to since (or Redis lost
// the registry's version): the caller must drop everything it holds.
func (s *Store) Changes(ctx context.Context, since int64) (version int64, ids []string, reset bool, err error) {
	var vc, fc *redis.StringCmd
	var zc *redis.StringSliceCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		vc, fc = p.Get(ctx, keyVersion), p.Get(ctx, keyFloor)
		zc = p.ZRangeByScore(ctx, keyChanges, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(since, 10), Max: "+inf"})
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, false, fmt.Errorf("registry: changes: %w", err)
	}
	version, _ = strconv.ParseInt(vc.Val(), 10, 64)
	floor, _ := strconv.ParseInt(fc.Val(), 10, 64)
	if version < since || since < floor {
		return version, nil, true, nil
	}
	return version, zc.Val(), false, nil
}
