package fakegraph

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

func TestDatasetAPI(t *testing.T) {
	s := newTestServer(t, Options{Tokens: []string{"tok"}, StrictDatasets: true, Datasets: map[string]string{"page-known": "555"}})
	q := url.Values{"access_token": {"tok"}}
	get := func(business string) []string {
		t.Helper()
		a := do(t, http.MethodGet, s.URL()+"/"+NewestVersion+"/"+business+"/dataset", q, "", nil)
		var out struct{ Data []struct{ ID string } }
		if a.Status != http.StatusOK || json.Unmarshal(a.Body, &out) != nil {
			t.Fatalf("GET dataset: %d %s", a.Status, a.Body)
		}
		var ids []string
		for _, d := range out.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	create := func(business string) string {
		t.Helper()
		a := do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/"+business+"/dataset", q, "", nil)
		var out struct{ ID string }
		if a.Status != http.StatusOK || json.Unmarshal(a.Body, &out) != nil || out.ID == "" {
			t.Fatalf("POST dataset: %d %s", a.Status, a.Body)
		}
		return out.ID
	}
	if ids := get("102290129340398"); len(ids) != 0 {
		t.Errorf("GET before create = %v; want none", ids)
	}
	id := create("102290129340398")
	if again := create("102290129340398"); again != id {
		t.Errorf("second POST = %s; want the existing %s", again, id)
	}
	if ids := get("102290129340398"); len(ids) != 1 || ids[0] != id {
		t.Errorf("GET after create = %v; want [%s]", ids, id)
	}
	if ids := get("page-known"); len(ids) != 1 || ids[0] != "555" {
		t.Errorf("GET preset = %v; want [555]", ids)
	}
	other := NewServer(Options{Tokens: []string{"tok"}})
	defer other.Close()
	a := do(t, http.MethodPost, other.URL()+"/"+NewestVersion+"/102290129340398/dataset", q, "", nil)
	var created struct{ ID string }
	if json.Unmarshal(a.Body, &created); created.ID != id {
		t.Errorf("another server created %q; want the same id %s", created.ID, id)
	}
	if got, ok := s.DatasetID("102290129340398"); !ok || got != id {
		t.Errorf("DatasetID() = %s, %v", got, ok)
	}
	if calls := s.DatasetCalls(); len(calls) != 5 || calls[0].Method != http.MethodGet || calls[1].Method != http.MethodPost || calls[0].Token != "tok" {
		t.Errorf("DatasetCalls() = %+v", calls)
	}

	// StrictDatasets: /events only for datasets that exist.
	evq := func(dataset string) answer {
		body, _ := json.Marshal(map[string]any{"data": []any{event("whatsapp", "s1")}})
		return do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/"+dataset+"/events", q, "application/json", body)
	}
	a = evq("999")
	wantGraphError(t, a, http.StatusBadRequest, 100)
	if a.Error.Subcode != 33 {
		t.Errorf("unknown dataset: subcode %d; want 33", a.Error.Subcode)
	}
	for _, ds := range []string{id, "555"} {
		if a := evq(ds); a.Status != http.StatusOK {
			t.Errorf("events to dataset %s: %d %s", ds, a.Status, a.Body)
		}
	}
}

func TestDatasetNeedsToken(t *testing.T) {
	s := newTestServer(t, Options{AppSecret: "shh"})
	wantGraphError(t, do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/dataset", nil, "", nil), http.StatusBadRequest, 104)
	q := url.Values{"access_token": {DefaultToken}, "appsecret_proof": {proof(DefaultToken, "shh")}}
	if a := do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/dataset", q, "", nil); a.Status != http.StatusOK {
		t.Errorf("POST with proof: %d %s", a.Status, a.Body)
	}
	if len(s.DatasetCalls()) != 1 {
		t.Errorf("DatasetCalls() = %d; want only the authenticated call", len(s.DatasetCalls()))
	}
}

// RefuseDatasetRead answers GET as Meta does for a WABA; POST still returns
// the dataset, the same one each time.
func TestDatasetReadRefused(t *testing.T) {
	s := newTestServer(t, Options{Tokens: []string{"tok"}, RefuseDatasetRead: true})
	q := url.Values{"access_token": {"tok"}}
	wantGraphError(t, do(t, http.MethodGet, s.URL()+"/"+NewestVersion+"/104200000000001/dataset", q, "", nil), http.StatusBadRequest, 100)
	a := do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/104200000000001/dataset", q, "", nil)
	b := do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/104200000000001/dataset", q, "", nil)
	if a.Status != http.StatusOK || string(a.Body) != string(b.Body) {
		t.Errorf("POST twice: %d %s, then %s; want the same dataset", a.Status, a.Body, b.Body)
	}
}
