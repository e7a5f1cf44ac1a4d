package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// statsView is one window of /v1/stats drawn, or why it could not be.
type statsView struct {
	Err      string
	Window   string
	Outcomes barChart
	Series   lineChart
	Stats    statsJSON
}

func (c *Console) stats(r *http.Request, window string) (statsJSON, statsView) {
	var st statsJSON
	v := statsView{Window: window}
	if err := c.api.get(r.Context(), "/v1/stats", url.Values{"window": {window}}, &st); err != nil {
		v.Err = err.Error()
		return st, v
	}
	v.Stats, v.Outcomes, v.Series = st, outcomeChart(st.Outcomes), newLineChart(st)
	return st, v
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s session) {
	hourStats, hour := c.stats(r, "1h")
	_, day := c.stats(r, "24h")
	d := struct {
		Live      rates
		Hour, Day statsView
	}{Hour: hour, Day: day}
	if hour.Err == "" {
		d.Live = liveRates(hourStats, c.now())
	}
	c.render(w, r, http.StatusOK, "overview", s, pageData{Title: "Overview", Nav: "overview", Data: d})
}

// live answers the overview's refresh loop: the rates as JSON.
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if _, ok := c.sessionOf(r); !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"not logged in"}` + "\n"))
		return
	}
	st, v := c.stats(r, "1h")
	if v.Err != "" {
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": v.Err})
		return
	}
	_ = json.NewEncoder(w).Encode(liveRates(st, c.now()))
}

// bizRow is a business with its health, as the tables show it.
type bizRow struct {
	B           businessJSON
	HealthErr   string
	Contexts    int64
	Conversions int64
	Sent        int64
	Dead        map[string]int64
	DeadTotal   int64
	Paused      *pauseJSON
	LastError   string
	LastOK      apiTime
}

func newBizRow(b businessJSON) bizRow {
	row := bizRow{B: b}
	h := b.Health
	switch {
	case h == nil:
		row.HealthErr = "no health in the answer"
	case !h.Available && h.Reason != "":
		row.HealthErr = h.Reason
	default:
		row.Contexts, row.Conversions, row.Sent = h.Contexts24h, h.Conversions24h, h.Sent24h
		row.Dead, row.DeadTotal = h.deadLetters(), sumCounts(h.deadLetters())
		row.Paused, row.LastOK = h.Paused, apiTime{h.lastAccepted()}
		switch {
		case h.LastError != nil && h.LastError.Message != "":
			row.LastError = "Meta " + strconv.Itoa(h.LastError.Code) + ": " + h.LastError.Message
		case h.Paused != nil && h.Paused.Message != "":
			row.LastError = "Meta " + strconv.Itoa(h.Paused.Code) + ": " + h.Paused.Message
		}
	}
	return row
}

func (c *Console) businesses(w http.ResponseWriter, r *http.Request, s session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := struct {
		Q, Err, Next, Cursor string
		Rows                 []bizRow
	}{Q: q, Cursor: r.URL.Query().Get("cursor")}
	if q != "" {
		var b businessJSON
		if err := c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(q), nil, &b); err != nil {
			d.Err = err.Error()
		} else {
			d.Rows = append(d.Rows, newBizRow(b))
		}
	} else {
		var page businessListJSON
		if err := c.api.get(r.Context(), "/v1/businesses", url.Values{"cursor": {d.Cursor}, "limit": {"50"}}, &page); err != nil {
			d.Err = err.Error()
		}
		d.Next = page.NextCursor
		// The list has no health; each business's record has.
		for _, b := range page.Businesses {
			if b.Unreadable {
				row := newBizRow(b)
				row.HealthErr = "unreadable record: " + b.Error
				d.Rows = append(d.Rows, row)
				continue
			}
			var full businessJSON
			if err := c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(b.BusinessID), nil, &full); err != nil {
				row := newBizRow(b)
				row.HealthErr = err.Error()
				d.Rows = append(d.Rows, row)
				continue
			}
			d.Rows = append(d.Rows, newBizRow(full))
		}
	}
	c.render(w, r, http.StatusOK, "businesses", s, pageData{Title: "Businesses", Nav: "businesses", Data: d})
}

func (c *Console) business(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	var b businessJSON
	if err := c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(id), nil, &b); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	row := newBizRow(b)
	d := struct {
		Row    bizRow
		Funnel barChart
		DL     dlView
		DryRun bool // its newest Graph request was a dry run: nothing reaches Meta
		Parked parkedJSON
		PErr   string
	}{Row: row}
	if err := c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(id)+"/parked", url.Values{"limit": {"50"}}, &d.Parked); err != nil {
		d.PErr = err.Error()
	}
	var last attemptsJSON
	if c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(id)+"/attempts", url.Values{"limit": {"1"}}, &last) == nil &&
		len(last.Attempts) == 1 && last.Attempts[0].DryRun {
		d.DryRun = true
	}
	d.Funnel = newBarChart([]string{"clicks stored", "conversions", "sent"},
		map[string]int64{"clicks stored": row.Contexts, "conversions": row.Conversions, "sent": row.Sent},
		func(l string) string {
			if l == "sent" {
				return "ok"
			}
			return "s1"
		})
	d.DL = c.listDeadLetters(r, dlFilter{Business: id})
	c.render(w, r, http.StatusOK, "business", s, pageData{Title: "Business " + id, Nav: "businesses", Data: d})
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	var res resumeJSON
	st, err := c.api.do(r.Context(), http.MethodPost, "/v1/businesses/"+url.PathEscape(id)+"/resume", nil, nil, &res)
	if err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	msg := "Business " + id + " was not paused and had nothing parked."
	if st == http.StatusAccepted {
		msg = "Business " + id + " resumed: " + strconv.Itoa(res.Parked) + " parked message(s) are being sent back."
	}
	c.render(w, r, http.StatusOK, "result", s, pageData{Title: "Resume", Nav: "businesses",
		Data: resultView{Message: msg, Back: basePath + "/businesses/" + url.PathEscape(id)}})
}

// trailFinal are the states an event stays in; the page refreshes itself
// while the event is in any other.
var trailFinal = map[string]bool{"sent": true, "duplicate": true, "dead_letter": true, "in_doubt": true}

func (c *Console) event(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	d := struct {
		Business, EventID, Err string
		Trail                  *trailJSON
		Refresh                bool
	}{Business: strings.TrimSpace(q.Get("business")), EventID: strings.TrimSpace(q.Get("event_id"))}
	if d.Business != "" && d.EventID != "" {
		var t trailJSON
		err := c.api.get(r.Context(), "/v1/events/"+url.PathEscape(d.Business)+"/"+url.PathEscape(d.EventID), nil, &t)
		if err != nil {
			d.Err = err.Error()
		} else {
			d.Trail, d.Refresh = &t, !trailFinal[t.State]
		}
	} else if d.Business != "" || d.EventID != "" {
		d.Err = "give both the business id and the event_id"
	}
	c.render(w, r, http.StatusOK, "event", s, pageData{Title: "Event lookup", Nav: "events", Data: d})
}

// apiFail shows an API error as the page: its status and message.
func (c *Console) apiFail(w http.ResponseWriter, r *http.Request, s session, err error) {
	status := http.StatusBadGateway
	if ae, ok := err.(*apiError); ok && ae.Status >= 400 && ae.Status < 500 {
		status = ae.Status
	}
	c.render(w, r, status, "error", s, pageData{Title: http.StatusText(status), Error: err.Error()})
}

// resultView is the page after an action.
type resultView struct {
	Message string
	Back    string
}
