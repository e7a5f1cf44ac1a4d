package console

import (
	"net/http"
	"net/url"
	"strconv"
)

// attemptsJSON is GET /v1/businesses/{id}/attempts's answer.
type attemptsJSON struct {
	Attempts []struct {
		ID             string  `json:"id"`
		At             apiTime `json:"at"`
		DatasetID      string  `json:"dataset_id"`
		Events         int     `json:"events"`
		Status         int     `json:"status"`
		LatencyMS      int64   `json:"latency_ms"`
		FBTraceID      string  `json:"fbtrace_id"`
		EventsReceived int     `json:"events_received"`
		Code           int     `json:"code"`
		Subcode        int     `json:"subcode"`
		Class          string  `json:"class"`
		Message        string  `json:"message"`
		DryRun         bool    `json:"dry_run"`
	} `json:"attempts"`
	Kept string `json:"kept"`
}

// parkedJSON is GET /v1/businesses/{id}/parked's answer.
type parkedJSON struct {
	Total  int `json:"total"`
	Parked []struct {
		Seq         uint64  `json:"seq"`
		EventID     string  `json:"event_id"`
		PublishedAt apiTime `json:"published_at"`
		ParkedAt    apiTime `json:"parked_at"`
	} `json:"parked"`
}

// attemptsPageSize is how many requests a page shows.
const attemptsPageSize = 100

// attempts shows a business's Graph requests, newest first; an event's
// trail links to its request here (#req-<id>).
func (c *Console) attempts(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	d := struct {
		Business, Err string
		Log           attemptsJSON
		Next, Prev    int
		More          bool
	}{Business: id, Prev: offset - attemptsPageSize, Next: offset + attemptsPageSize}
	if offset > 0 {
		d.Prev = max(d.Prev, 0)
	}
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(attemptsPageSize)}}
	if err := c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(id)+"/attempts", q, &d.Log); err != nil {
		d.Err = err.Error()
	}
	d.More = len(d.Log.Attempts) == attemptsPageSize
	c.render(w, r, http.StatusOK, "attempts", s, pageData{Title: "Graph requests of " + id, Nav: "businesses", Data: d})
}
