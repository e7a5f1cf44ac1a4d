package console

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeAPI serves the admin API's shapes of api-wave4.md from memory, with
// the bearer token check, until the real endpoints are wired: businesses
// with health, trails, dead letters (a redrive marks the event sent),
// stats, resume.
type fakeAPI struct {
	token string
	mu    sync.Mutex
	biz   map[string]map[string]any // business_id → record with health
	order []string
	trail map[string]map[string]any // business/event → trail
	dead  []map[string]any          // newest last
	calls []string                  // "METHOD path?query" of each call
	redrv []map[string]any          // the redrive bodies
}

func newFakeAPI(token string) *fakeAPI {
	f := &fakeAPI{token: token, biz: map[string]map[string]any{}, trail: map[string]map[string]any{}}
	now := time.Now().UTC()
	f.addBusiness("1001", "whatsapp", nil, 40, 12, 9, map[string]int64{"rejected": 1})
	f.addBusiness("2002", "messenger", map[string]any{"since": now.Add(-20 * time.Minute).UnixMilli(), "code": 190,
		"class": "token", "message": "Error validating access token: Session has expired"}, 5, 3, 0, nil)
	f.trail["1001/ord-1"] = map[string]any{"business_id": "1001", "event_id": "ord-1", "state": "dead_letter",
		"attempts": 1, "first_seen_at": now.Add(-5 * time.Minute).Format(time.RFC3339Nano), "updated_at": now.Format(time.RFC3339Nano),
		"event_name": "Purchase", "channel": "whatsapp",
		"dead_letter": map[string]any{"reason": "rejected", "error": "Meta 100: Invalid parameter <script>alert(1)</script>", "seq": 42}}
	f.dead = append(f.dead, map[string]any{"seq": 42, "time": now.Add(-time.Minute).Format(time.RFC3339Nano), "reason": "rejected",
		"business_id": "1001", "event_id": "ord-1", "channel": "whatsapp", "error": "Meta 100: Invalid parameter <script>alert(1)</script>",
		"message": map[string]any{"event_id": "ord-1", "event_name": "Purchase", "channel": "whatsapp", "business_id": "1001", "user_id": "…1234"}})
	return f
}

func (f *fakeAPI) addBusiness(id, channel string, paused map[string]any, contexts, conversions, sent int64, dead map[string]int64) {
	if dead == nil {
		dead = map[string]int64{}
	}
	h := map[string]any{"available": true, "paused": paused, "sent_24h": sent, "conversions_24h": conversions,
		"contexts_24h": contexts, "dead_letters_24h": dead, "last_accepted_at": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)}
	f.biz[id] = map[string]any{"business_id": id, "channel": channel, "dataset_id": "70" + id, "enabled": true, "health": h}
	f.order = append(f.order, id)
}

func (f *fakeAPI) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeFake(w, 401, map[string]any{"error": "missing or wrong bearer token"})
		return
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/stats":
		f.stats(w, r)
	case r.Method == "GET" && r.URL.Path == "/v1/businesses":
		var list []map[string]any
		for _, id := range f.order {
			b := map[string]any{}
			for k, v := range f.biz[id] {
				if k != "health" {
					b[k] = v
				}
			}
			list = append(list, b)
		}
		writeFake(w, 200, map[string]any{"businesses": list, "next_cursor": ""})
	case r.Method == "GET" && len(p) == 3 && p[1] == "businesses":
		if b, ok := f.biz[p[2]]; ok {
			writeFake(w, 200, b)
			return
		}
		writeFake(w, 404, map[string]any{"error": "no business " + p[2]})
	case r.Method == "POST" && len(p) == 4 && p[1] == "businesses" && p[3] == "resume":
		b, ok := f.biz[p[2]]
		if !ok {
			writeFake(w, 404, map[string]any{"error": "no business " + p[2]})
			return
		}
		h := b["health"].(map[string]any)
		if h["paused"] == nil {
			w.WriteHeader(204)
			return
		}
		h["paused"] = nil
		writeFake(w, 202, map[string]any{"business_id": p[2], "was_paused": true, "parked": 2})
	case r.Method == "GET" && len(p) == 4 && p[1] == "events":
		if t, ok := f.trail[p[2]+"/"+p[3]]; ok {
			writeFake(w, 200, t)
			return
		}
		writeFake(w, 404, map[string]any{"error": "no trail for this event: it was never seen, or SENT_TTL passed"})
	case r.Method == "GET" && r.URL.Path == "/v1/dead-letters":
		q := r.URL.Query()
		out := []map[string]any{}
		for i := len(f.dead) - 1; i >= 0; i-- {
			d := f.dead[i]
			if (q.Get("reason") == "" || d["reason"] == q.Get("reason")) && (q.Get("business") == "" || d["business_id"] == q.Get("business")) {
				c := map[string]any{}
				for k, v := range d {
					if k != "message" {
						c[k] = v
					}
				}
				out = append(out, c)
			}
		}
		writeFake(w, 200, map[string]any{"dead_letters": out, "next_cursor": ""})
	case r.Method == "GET" && len(p) == 3 && p[1] == "dead-letters":
		for _, d := range f.dead {
			if strconv.Itoa(d["seq"].(int)) == p[2] {
				writeFake(w, 200, d)
				return
			}
		}
		writeFake(w, 404, map[string]any{"error": "no dead letter " + p[2]})
	case r.Method == "POST" && r.URL.Path == "/v1/dead-letters/redrive":
		f.redrive(w, r)
	default:
		writeFake(w, 404, map[string]any{"error": "not found"})
	}
}

func (f *fakeAPI) stats(w http.ResponseWriter, r *http.Request) {
	window, step, n := r.URL.Query().Get("window"), 60, 60
	if window == "24h" {
		step, n = 3600, 24
	}
	series := map[string][]float64{}
	for i, name := range []string{"webhooks", "conversions", "sent", "dead_letters"} {
		vals := make([]float64, n)
		for j := range vals {
			// A day's swell with some noise, smaller down the funnel.
			vals[j] = math.Round(float64(4-i) * (3 + 2*math.Sin(float64(j)/6+float64(i)/2) + float64((j*7+i*3)%5)/2))
		}
		series[name] = vals
	}
	now := time.Now().UTC()
	start := now.Truncate(time.Duration(step) * time.Second).Add(-time.Duration(n-1) * time.Duration(step) * time.Second)
	writeFake(w, 200, map[string]any{"window": window, "step_seconds": step, "start": start.Format(time.RFC3339Nano), "series": series,
		"outcomes":         map[string]int64{"sent": 120, "duplicate": 3, "retry": 10, "dead_letter:rejected": 2, "dead_letter:unattributed": 1},
		"graph_latency_ms": map[string]float64{"p50": 210, "p99": 480}})
}

func (f *fakeAPI) redrive(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason, Business string
		Seqs             []int
		DryRun           bool `json:"dry_run"`
	}
	var raw map[string]any
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&raw); err != nil {
		writeFake(w, 400, map[string]any{"error": "body is not JSON"})
		return
	}
	f.redrv = append(f.redrv, raw)
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &req)
	var keep []map[string]any
	matched, redriven := 0, 0
	for _, d := range f.dead {
		m := (req.Reason == "" || d["reason"] == req.Reason) && (req.Business == "" || d["business_id"] == req.Business) &&
			(len(req.Seqs) == 0 || slices.Contains(req.Seqs, d["seq"].(int)))
		if !m {
			keep = append(keep, d)
			continue
		}
		matched++
		if req.DryRun {
			keep = append(keep, d)
			continue
		}
		redriven++
		key := d["business_id"].(string) + "/" + d["event_id"].(string)
		t := f.trail[key]
		delete(t, "dead_letter")
		t["state"], t["attempts"] = "sent", t["attempts"].(int)+1
		t["sent"] = map[string]any{"dataset_id": "7001", "at": time.Now().UTC().Format(time.RFC3339Nano), "fbtrace_id": "AbCfake", "events_received": 1}
	}
	f.dead = keep
	writeFake(w, 200, map[string]any{"matched": matched, "redriven": redriven, "dry_run": req.DryRun})
}

func writeFake(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
