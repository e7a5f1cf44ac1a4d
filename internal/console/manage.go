package console

import (
	"net/http"
	"net/url"
	"strings"
)

// saveSettings applies the business page's settings form through
// PATCH /v1/businesses/{id}. The token and app secret fields are
// write-only: left blank, they are not sent and the stored ones stay; the
// page never holds them.
func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, "the form could not be read: "+err.Error())
		return
	}
	f := r.PostForm
	patch := map[string]any{
		"dataset_id":       strings.TrimSpace(f.Get("dataset_id")),
		"test_event_code":  strings.TrimSpace(f.Get("test_event_code")),
		"attribution":      f.Get("attribution"),
		"automatic_events": f.Get("automatic_events") == "on",
		"enabled":          f.Get("enabled") == "on",
	}
	for _, k := range []string{"access_token", "app_secret"} {
		if v := strings.TrimSpace(f.Get(k)); v != "" {
			patch[k] = v
		}
	}
	c.patch(w, r, s, id, patch, "Business "+id+" saved.")
}

// setEnabled enables or disables a business (the page's one-click form).
func (c *Console) setEnabled(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	on := r.PostFormValue("enabled") == "true"
	msg := "Business " + id + " disabled: its conversions are parked, not sent, until it is enabled again."
	if on {
		msg = "Business " + id + " enabled: its parked conversions are being sent."
	}
	c.patch(w, r, s, id, map[string]any{"enabled": on}, msg)
}

func (c *Console) patch(w http.ResponseWriter, r *http.Request, s session, id string, body map[string]any, msg string) {
	if _, err := c.api.do(r.Context(), http.MethodPatch, "/v1/businesses/"+url.PathEscape(id), nil, body, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "result", s, pageData{Title: "Business " + id, Nav: "businesses",
		Data: resultView{Message: msg, Back: basePath + "/businesses/" + url.PathEscape(id)}})
}

// createBusiness registers a business from the businesses page's form
// through PUT /v1/businesses/{id}; an id already registered is refused
// (edit it on its page), so that the form never replaces a record.
func (c *Console) createBusiness(w http.ResponseWriter, r *http.Request, s session) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, "the form could not be read: "+err.Error())
		return
	}
	f := r.PostForm
	id := strings.TrimSpace(f.Get("business_id"))
	if id == "" {
		c.fail(w, r, http.StatusBadRequest, "business id: required (the WABA, page or Instagram account id)")
		return
	}
	var existing businessJSON
	if err := c.api.get(r.Context(), "/v1/businesses/"+url.PathEscape(id), nil, &existing); err == nil {
		c.fail(w, r, http.StatusConflict, "business "+id+" is registered already: edit it on its page")
		return
	} else if !notFound(err) {
		c.apiFail(w, r, s, err)
		return
	}
	body := map[string]any{
		"channel":          f.Get("channel"),
		"test_event_code":  strings.TrimSpace(f.Get("test_event_code")),
		"attribution":      f.Get("attribution"),
		"automatic_events": f.Get("automatic_events") == "on",
		"enabled":          f.Get("enabled") == "on",
	}
	for _, k := range []string{"dataset_id", "access_token", "app_secret"} {
		if v := strings.TrimSpace(f.Get(k)); v != "" {
			body[k] = v
		}
	}
	if _, err := c.api.do(r.Context(), http.MethodPut, "/v1/businesses/"+url.PathEscape(id), nil, body, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "result", s, pageData{Title: "Business " + id, Nav: "businesses",
		Data: resultView{Message: "Business " + id + " registered.", Back: basePath + "/businesses/" + url.PathEscape(id)}})
}
