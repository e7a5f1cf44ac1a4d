package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// Sink is the cheapest Graph API that still answers the sender correctly:
// POST /{version}/{dataset}/events gets {"events_received": n} and the event
// ids go to the attached Tracker. It checks nothing, unlike
// internal/fakegraph, whose encoding/json validation of every event costs
// CPU the sender then cannot use on a 2-core machine; comparing runs against
// both shows how much of the sender's number is the fake's.
type Sink struct {
	srv     *httptest.Server
	tracker atomic.Pointer[Tracker]
	parsers fastjson.ParserPool
	bufs    sync.Pool
}

// NewSink starts a Sink on a loopback port; Close it when done.
func NewSink() *Sink {
	s := &Sink{}
	s.bufs.New = func() any { return new([]byte) }
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the base URL to give the sender as GRAPH_API_BASE.
func (s *Sink) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Sink) Close() { s.srv.Close() }

// Attach routes accepted event ids to t (nil: nowhere).
func (s *Sink) Attach(t *Tracker) { s.tracker.Store(t) }

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || strings.HasSuffix(r.URL.Path, "/dataset") {
		// The Dataset API: every business has dataset 1 (the harness maps
		// datasets in a file, so this is only a fallback). The sender asks
		// with POST /{business_id}/dataset (Meta does not support GET for
		// every object), which is not an events request.
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"1"}`) //nolint:errcheck // the client sees a short answer
		return
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b, err := readAll(r.Body, (*bp)[:0])
	*bp = b
	if err != nil {
		http.Error(w, `{"error":{"message":"unreadable body","code":1}}`, http.StatusBadRequest)
		return
	}
	p := s.parsers.Get()
	defer s.parsers.Put(p)
	v, err := p.ParseBytes(b)
	if err != nil {
		http.Error(w, `{"error":{"message":"body is not JSON","code":100}}`, http.StatusBadRequest)
		return
	}
	data := v.GetArray("data")
	ids := make([]string, 0, len(data))
	for _, ev := range data {
		ids = append(ids, string(ev.GetStringBytes("event_id")))
	}
	if t := s.tracker.Load(); t != nil {
		t.Accept(time.Now(), ids...)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"events_received":`+strconv.Itoa(len(data))+`,"messages":[],"fbtrace_id":"sink"}`) //nolint:errcheck // as above
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
