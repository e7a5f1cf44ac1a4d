package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

func TestMeasureMemoryStoresWhatIngestWould(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	mix, _ := ParseMix("whatsapp=1,messenger=1")
	g := NewBodyGen(2)
	const n = 3000
	res, err := MeasureMemory(t.Context(), rdb, g, mix, 10, n)
	if err != nil {
		t.Fatal(err)
	}
	// One key per context plus one phone_number_id alias per WhatsApp
	// business.
	if want := int64(n + 2); res.Keys != want {
		t.Errorf("keys = %d; want %d", res.Keys, want)
	}
	if res.After <= res.Before || res.PerContext() <= 0 {
		t.Errorf("used_memory %d → %d: did not grow", res.Before, res.After)
	}
	// The stored contexts are the generated clicks.
	store := attribution.NewStore(rdb, 0)
	for _, seq := range []uint64{10, 11, 10 + n - 1} {
		ch := mix.Channel(seq)
		business, _ := g.Business(ch, seq)
		c, err := store.Get(t.Context(), attribution.Key{Channel: ch, BusinessID: business, UserID: g.User(ch, seq)})
		if err != nil {
			t.Fatalf("seq %d: Get = %v", seq, err)
		}
		if c.AdID != g.AdID(seq) || (ch == "whatsapp" && c.ClickID != g.ClickID(seq)) {
			t.Errorf("seq %d: stored ad %q clid %q; want %q %q", seq, c.AdID, c.ClickID, g.AdID(seq), g.ClickID(seq))
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=300,usec=900,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=7,usec=70\r\ncmdstat_set:calls=4,usec=8\r\n"
	got := parseCommandStats(info)
	if got["evalsha"] != 300 || got["set"] != 4 || got["info"] != 7 {
		t.Fatalf("parseCommandStats = %v", got)
	}
	s := CommandsPer(map[string]int64{"evalsha": 100, "info": 1}, got, 200)
	if want := "1.02 (evalsha 1.00, set 0.02)"; s != want {
		t.Errorf("CommandsPer = %q; want %q", s, want)
	}
}

func TestScrapeSumsAndStoreBatching(t *testing.T) {
	body := "# HELP ingest_store_batch_requests x\n# TYPE ingest_store_batch_requests histogram\n" +
		`ingest_store_batch_requests_bucket{le="1"} 3` + "\n" +
		"ingest_store_batch_requests_sum 120\ningest_store_batch_requests_count 30\nother_total 5\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	got, err := ScrapeSums(t.Context(), srv.URL, batchSum, batchCount)
	if err != nil || got[batchSum] != 120 || got[batchCount] != 30 || len(got) != 2 {
		t.Fatalf("ScrapeSums = %v, %v", got, err)
	}
	before := map[string]float64{batchSum: 20, batchCount: 10}
	if per := storeBatching(before, got); per != 5 {
		t.Errorf("storeBatching = %v; want 5 webhooks per write", per)
	}
	if per := storeBatching(got, got); per != 0 {
		t.Errorf("storeBatching without writes = %v; want 0", per)
	}
}
