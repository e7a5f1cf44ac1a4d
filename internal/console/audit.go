package console

import (
	"net/http"
	"net/url"
	"strconv"
)

// auditJSON is GET /v1/audit's answer.
type auditJSON struct {
	Entries []struct {
		Time    apiTime  `json:"time"`
		Actor   string   `json:"actor"`
		Action  string   `json:"action"`
		Target  string   `json:"target"`
		Status  int      `json:"status"`
		Changes []string `json:"changes"`
	} `json:"entries"`
}

// auditPageSize is how many entries a page of the audit log shows.
const auditPageSize = 100

// audit shows the audit log, newest first, a page at a time.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s session) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	var a auditJSON
	d := struct {
		Err        string
		Log        auditJSON
		Next, Prev int
		More       bool
	}{Prev: max(offset-auditPageSize, 0)}
	if err := c.api.get(r.Context(), "/v1/audit", url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(auditPageSize)}}, &a); err != nil {
		d.Err = err.Error()
	}
	d.Log = a
	d.More, d.Next = len(a.Entries) == auditPageSize, offset+auditPageSize
	if offset == 0 {
		d.Prev = -1
	}
	c.render(w, r, http.StatusOK, "audit", s, pageData{Title: "Audit log", Nav: "audit", Data: d})
}
