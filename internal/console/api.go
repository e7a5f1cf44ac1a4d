package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/admin"
)

// maxAnswerBytes bounds one admin API answer the console reads: a page of
// 1,000 dead letters is well under it.
const maxAnswerBytes = 8 << 20

// apiClient calls the admin API in process: the console holds the admin
// token and never hands it to the browser, and every page is built from the
// same answers a script would get (api-wave4's JSON).
type apiClient struct {
	h       http.Handler
	token   string
	timeout time.Duration
}

// apiError is a non-2xx answer of the admin API: its status and its
// {"error": ...} text, shown to the operator as is (escaped).
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("admin API answered %d: %s", e.Status, e.Message)
}

// notFound reports whether err is the API's 404.
func notFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// do sends method path (with query q and a JSON body when in is not nil)
// to the API and decodes a 2xx answer into out (when not nil).
func (a *apiClient) do(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("console: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	// In process: the listener's limit on wrong tokens (admin.Check) is for
	// clients, and this request carries the process's own token.
	req, err := http.NewRequestWithContext(admin.InProcess(ctx), method, u, body)
	if err != nil {
		return 0, fmt.Errorf("console: request: %w", err)
	}
	req.RemoteAddr = "127.0.0.1:0" // in process
	req.Host = "console.internal"
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := newRecorder()
	a.h.ServeHTTP(rec, req)
	if rec.overflow {
		return rec.status(), fmt.Errorf("console: %s %s: answer larger than %d bytes", method, path, maxAnswerBytes)
	}
	st := rec.status()
	if st < 200 || st > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(rec.buf.String())
		if json.Unmarshal(rec.buf.Bytes(), &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = http.StatusText(st)
		}
		return st, &apiError{Status: st, Message: msg}
	}
	if out != nil && rec.buf.Len() > 0 {
		if err := json.Unmarshal(rec.buf.Bytes(), out); err != nil {
			return st, fmt.Errorf("console: %s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	return st, nil
}

func (a *apiClient) get(ctx context.Context, path string, q url.Values, out any) error {
	_, err := a.do(ctx, http.MethodGet, path, q, nil, out)
	return err
}

// recorder is an in-memory http.ResponseWriter.
type recorder struct {
	h        http.Header
	code     int
	buf      bytes.Buffer
	overflow bool
}

func newRecorder() *recorder { return &recorder{h: http.Header{}} }

func (r *recorder) Header() http.Header { return r.h }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.buf.Len()+len(p) > maxAnswerBytes {
		r.overflow = true
		return 0, errors.New("console: answer too large")
	}
	return r.buf.Write(p)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// apiTime is a time of the API: RFC 3339 text, or Unix milliseconds (the
// pause record's since).
type apiTime struct{ time.Time }

// UnmarshalJSON accepts RFC 3339, Unix milliseconds, null and "".
func (t *apiTime) UnmarshalJSON(b []byte) error {
	s := string(b)
	switch {
	case s == "null" || s == `""`:
		return nil
	case strings.HasPrefix(s, `"`):
		v, err := time.Parse(time.RFC3339Nano, strings.Trim(s, `"`))
		if err != nil {
			return fmt.Errorf("time %s: %w", s, err)
		}
		t.Time = v
	default:
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("time %s: %w", s, err)
		}
		t.Time = time.UnixMilli(ms)
	}
	return nil
}

// The answers of api-wave4.md the console reads.

type statsJSON struct {
	Window      string               `json:"window"`
	StepSeconds int                  `json:"step_seconds"`
	Start       apiTime              `json:"start"`
	Series      map[string][]float64 `json:"series"`
	Outcomes    map[string]int64     `json:"outcomes"`
	Latency     struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"graph_latency_ms"`
}

type pauseJSON struct {
	Since   apiTime `json:"since"`
	Code    int     `json:"code"`
	Subcode int     `json:"subcode"`
	Class   string  `json:"class"`
	Message string  `json:"message"`
}

type metaErrorJSON struct {
	At      apiTime `json:"at"`
	Code    int     `json:"code"`
	Subcode int     `json:"subcode"`
	Message string  `json:"message"`
}

type healthJSON struct {
	Available bool       `json:"available"`
	Reason    string     `json:"reason"`
	Paused    *pauseJSON `json:"paused"`
	// The names differ between the registry API's first Health and
	// api-wave4.md; either is read.
	LastAccepted    apiTime          `json:"last_accepted"`
	LastAcceptedAt  apiTime          `json:"last_accepted_at"`
	LastError       *metaErrorJSON   `json:"last_error"`
	Sent24h         int64            `json:"sent_24h"`
	Conversions24h  int64            `json:"conversions_24h"`
	Contexts24h     int64            `json:"contexts_24h"`
	DeadLettered24h map[string]int64 `json:"dead_lettered_24h"`
	DeadLetters24h  map[string]int64 `json:"dead_letters_24h"`
}

// lastAccepted is Meta's last 2xx for the business, under either name.
func (h *healthJSON) lastAccepted() time.Time {
	if !h.LastAcceptedAt.IsZero() {
		return h.LastAcceptedAt.Time
	}
	return h.LastAccepted.Time
}

// deadLetters is the dead letters of 24 h by reason, under either name.
func (h *healthJSON) deadLetters() map[string]int64 {
	if len(h.DeadLetters24h) > 0 {
		return h.DeadLetters24h
	}
	return h.DeadLettered24h
}

type businessJSON struct {
	BusinessID string `json:"business_id"`
	Channel    string `json:"channel"`
	DatasetID  string `json:"dataset_id"`
	Enabled    bool   `json:"enabled"`
	// The editable settings (manage.go); secrets only as set or not.
	TestEventCode   string      `json:"test_event_code"`
	Attribution     string      `json:"attribution"`
	AutomaticEvents bool        `json:"automatic_events"`
	AccessTokenSet  bool        `json:"access_token_set"`
	AppSecretSet    bool        `json:"app_secret_set"`
	UpdatedAt       apiTime     `json:"updated_at"`
	Health          *healthJSON `json:"health"`
	// An unreadable record in the list: only the id, the key its secret
	// is sealed with and why.
	Unreadable bool   `json:"unreadable"`
	KeyID      string `json:"key_id"`
	Error      string `json:"error"`
}

type businessListJSON struct {
	Businesses []businessJSON `json:"businesses"`
	NextCursor string         `json:"next_cursor"`
}

type trailJSON struct {
	BusinessID  string  `json:"business_id"`
	EventID     string  `json:"event_id"`
	State       string  `json:"state"`
	Attempts    int     `json:"attempts"`
	FirstSeenAt apiTime `json:"first_seen_at"`
	UpdatedAt   apiTime `json:"updated_at"`
	EventName   string  `json:"event_name"`
	Channel     string  `json:"channel"`
	Sent        *struct {
		DatasetID      string  `json:"dataset_id"`
		At             apiTime `json:"at"`
		FBTraceID      string  `json:"fbtrace_id"`
		EventsReceived int     `json:"events_received"`
		RequestID      string  `json:"request_id"`
	} `json:"sent"`
	DeadLetter *struct {
		Reason string `json:"reason"`
		Error  string `json:"error"`
		Seq    uint64 `json:"seq"`
	} `json:"dead_letter"`
	History []struct {
		At        apiTime `json:"at"`
		State     string  `json:"state"`
		Cause     string  `json:"cause"`
		RequestID string  `json:"request_id"`
		DLQSeq    uint64  `json:"dlq_seq"`
		By        string  `json:"by"`
	} `json:"history"`
	RetryAt apiTime `json:"retry_at"`
	Reason  string  `json:"reason"`
}

type deadLetterJSON struct {
	Seq        uint64          `json:"seq"`
	Time       apiTime         `json:"time"`
	Reason     string          `json:"reason"`
	BusinessID string          `json:"business_id"`
	EventID    string          `json:"event_id"`
	Channel    string          `json:"channel"`
	Error      string          `json:"error"`
	Message    json.RawMessage `json:"message"`
}

type deadLetterListJSON struct {
	DeadLetters []deadLetterJSON `json:"dead_letters"`
	NextCursor  string           `json:"next_cursor"`
}

type redriveRequest struct {
	Reason   string   `json:"reason,omitempty"`
	Business string   `json:"business,omitempty"`
	Seqs     []uint64 `json:"seqs,omitempty"`
	Since    string   `json:"since,omitempty"`
	Limit    int      `json:"limit,omitempty"`
	DryRun   bool     `json:"dry_run"`
	Force    bool     `json:"force"`
}

type redriveJSON struct {
	Matched  int  `json:"matched"`
	Redriven int  `json:"redriven"`
	DryRun   bool `json:"dry_run"`
}

type resumeJSON struct {
	WasPaused bool   `json:"was_paused"`
	Parked    int    `json:"parked"`
	Note      string `json:"note"`
}
