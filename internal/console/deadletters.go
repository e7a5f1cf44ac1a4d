package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// reasons are the dead-letter reasons (internal/sender/dlq.go), forward
// (webhook bodies forwarding gave up on) included.
var reasons = []string{"invalid", "expired", "unattributed", "no_click_id", "rejected", "in_doubt", "forward"}

// dlFilter is the dead-letter page's selection.
type dlFilter struct {
	Reason, Business, Since, Cursor string
}

func (f dlFilter) query(limit int) url.Values {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range map[string]string{"reason": f.Reason, "business": f.Business, "since": f.Since, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// dlView is a page of dead letters.
type dlView struct {
	Filter  dlFilter
	Reasons []string
	Letters []deadLetterJSON
	Next    string
	Err     string
	Back    string // where the redrive form returns to
}

func (c *Console) listDeadLetters(r *http.Request, f dlFilter) dlView {
	v := dlView{Filter: f, Reasons: reasons, Back: r.URL.RequestURI()}
	var page deadLetterListJSON
	if err := c.api.get(r.Context(), "/v1/dead-letters", f.query(50), &page); err != nil {
		v.Err = err.Error()
		return v
	}
	v.Letters, v.Next = page.DeadLetters, page.NextCursor
	return v
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	f := dlFilter{Reason: q.Get("reason"), Business: strings.TrimSpace(q.Get("business")),
		Since: strings.TrimSpace(q.Get("since")), Cursor: q.Get("cursor")}
	c.render(w, r, http.StatusOK, "dead_letters", s, pageData{Title: "Dead letters", Nav: "dead-letters",
		Data: c.listDeadLetters(r, f)})
}

func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request, s session) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "a dead letter's sequence is a number")
		return
	}
	// Never reveal=1: the console shows personal ids masked, as the API
	// returns them by default.
	var dl deadLetterJSON
	if err := c.api.get(r.Context(), "/v1/dead-letters/"+strconv.FormatUint(seq, 10), nil, &dl); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "dead_letter", s, pageData{Title: "Dead letter " + strconv.FormatUint(seq, 10),
		Nav: "dead-letters", Data: struct {
			DL   deadLetterJSON
			Back string
		}{dl, r.URL.RequestURI()}})
}

// redrive posts the form's selection to POST /v1/dead-letters/redrive:
// the checked sequences, or (mode=filter) everything the filter matches.
func (c *Console) redrive(w http.ResponseWriter, r *http.Request, s session) {
	req := redriveRequest{DryRun: r.PostFormValue("dry_run") != "", Force: r.PostFormValue("force") != ""}
	if r.PostFormValue("mode") == "filter" {
		req.Reason, req.Business, req.Since = r.PostFormValue("reason"), r.PostFormValue("business"), r.PostFormValue("since")
		if req.Reason == "" && req.Business == "" {
			c.fail(w, r, http.StatusBadRequest, "to redrive by filter, choose a reason or a business first")
			return
		}
		req.Limit = 1000
	} else {
		for _, v := range r.PostForm["seq"] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				c.fail(w, r, http.StatusBadRequest, "a dead letter's sequence is a number")
				return
			}
			req.Seqs = append(req.Seqs, n)
		}
		if len(req.Seqs) == 0 {
			c.fail(w, r, http.StatusBadRequest, "no dead letter selected: tick the ones to redrive")
			return
		}
	}
	var res redriveJSON
	if _, err := c.api.do(r.Context(), http.MethodPost, "/v1/dead-letters/redrive", nil, req, &res); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	msg := "Redriven " + strconv.Itoa(res.Redriven) + " of " + strconv.Itoa(res.Matched) + " matching dead letter(s)."
	if res.DryRun {
		msg = "Dry run: " + strconv.Itoa(res.Matched) + " dead letter(s) match; nothing was redriven."
	}
	c.render(w, r, http.StatusOK, "result", s, pageData{Title: "Redrive", Nav: "dead-letters",
		Data: resultView{Message: msg, Back: localPath(r.PostFormValue("back"), basePath+"/dead-letters")}})
}

// localPath is p when it is a console path (no open redirect), else def.
func localPath(p, def string) string {
	if strings.HasPrefix(p, basePath+"/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n") {
		return p
	}
	return def
}
