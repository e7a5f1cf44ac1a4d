package fakegraph

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// maxBody bounds a request body; 1,000 events fit easily.
const maxBody = 16 << 20

// maxEvents is Meta's batch limit: "You can send up to 1,000 events in data".
const maxEvents = 1000

// Event is one event the fake accepted, with the request it came in.
type Event struct {
	DatasetID     string
	Token         string
	EventID       string
	EventName     string
	EventTime     int64
	Channel       string // messaging_channel
	PartnerAgent  string
	TestEventCode string
	Received      time.Time       // when the request arrived, by the fake's clock
	Raw           json.RawMessage // the event object as sent
}

// handleEvents is POST /{version}/{dataset_id}/events.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, datasetID string) {
	s.mu.Lock()
	s.requests++
	if s.headerNames == nil {
		s.headerNames = map[string]int{}
	}
	for name := range r.Header {
		s.headerNames[name]++
	}
	s.inflight++
	s.peakInflight = max(s.peakInflight, s.inflight)
	s.mu.Unlock()
	status := s.answerEvents(w, r, datasetID)
	s.mu.Lock()
	s.inflight--
	if status != http.StatusOK {
		s.rejected++
	}
	s.mu.Unlock()
}

// PeakInFlight is the most /events requests that were being answered at
// once since the server started or was Reset.
func (s *Server) PeakInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakInflight
}

// answerEvents writes the response and returns its status (200 also for a
// dropped response: Meta accepted those events).
func (s *Server) answerEvents(w http.ResponseWriter, r *http.Request, datasetID string) int {
	// Read the body first: only then does net/http notice a client that hangs
	// up, which wait needs.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	s.noteArrival(body)
	if !s.wait(r, datasetID) {
		return 499 // client went away; nothing written
	}
	if f, ok := s.takeFailure(); ok {
		return s.writeFailure(w, f, datasetID)
	}
	if err != nil || len(body) > maxBody {
		return s.fail(w, http.StatusRequestEntityTooLarge, graphError{Message: "Request body too large or unreadable", Type: "OAuthException", Code: 1})
	}
	form, err := formFields(r, body)
	if err != nil {
		return s.fail(w, http.StatusBadRequest, invalidParam("body is not a valid form"))
	}
	token, gerr := s.authenticate(r, form)
	if gerr != nil {
		return s.fail(w, http.StatusBadRequest, *gerr)
	}
	if !s.datasetExists(datasetID) {
		return s.fail(w, http.StatusBadRequest, unsupported(http.MethodPost, datasetID))
	}
	req, gerr := parseEventsBody(r, body, form)
	if gerr != nil {
		return s.fail(w, http.StatusBadRequest, *gerr)
	}
	now := s.opts.Now()
	accepted := make([]Event, len(req.Data))
	for i, raw := range req.Data {
		ev, problem := checkEvent(raw, now)
		if problem == "" && s.isRejectedID(ev.EventID) {
			problem = "event_id is marked invalid by RejectEventID"
		}
		if problem != "" {
			e := invalidParam(fmt.Sprintf("event %d: %s", i, problem))
			if s.echoes() {
				// As an error that quotes the request would: the URL with its
				// access_token and appsecret_proof, and the token again.
				e.Message += " (request " + r.URL.String() + ")"
				e.UserMsg += " for access token " + token
			}
			if ev.badName {
				// Reported by integrators as Meta's subcode for a name not
				// allowed with business_messaging ("Messaging Event Invalid Event Type").
				e.Subcode = 2804066
			}
			return s.fail(w, http.StatusBadRequest, e)
		}
		ev.Event.DatasetID, ev.Event.Token = datasetID, token
		ev.Event.PartnerAgent, ev.Event.TestEventCode = req.PartnerAgent, req.TestEventCode
		ev.Event.Received = now
		accepted[i] = ev.Event
	}
	s.mu.Lock()
	s.events = append(s.events, accepted...)
	onAccept := s.faults.onAccept
	drop := s.faults.dropNext > 0
	if drop {
		s.faults.dropNext--
	}
	usage := s.faults.usagePercent
	s.mu.Unlock()
	if onAccept != nil {
		onAccept(append([]Event(nil), accepted...))
	}
	if drop {
		dropConnection(w)
		return http.StatusOK
	}
	if usage > 0 {
		w.Header().Set("X-Business-Use-Case-Usage", bucUsage(datasetID, usage, 0))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"events_received": len(accepted), "messages": []string{}, "fbtrace_id": s.traceID()})
	return http.StatusOK
}

func (s *Server) fail(w http.ResponseWriter, status int, e graphError) int {
	s.writeError(w, status, e)
	return status
}

func invalidParam(detail string) graphError {
	return graphError{Message: "Invalid parameter: " + detail, Type: "OAuthException", Code: 100,
		UserTitle: "Invalid Parameter", UserMsg: detail}
}

type eventsRequest struct {
	Data          []json.RawMessage
	PartnerAgent  string
	TestEventCode string
}

// parseEventsBody reads {"data":[...],"partner_agent","test_event_code"} from
// a JSON body, or the same fields from a form body where data is a JSON string
// (Meta's curl samples use -F 'data=[...]').
func parseEventsBody(r *http.Request, body []byte, form map[string]string) (eventsRequest, *graphError) {
	var top map[string]json.RawMessage
	if form != nil {
		top = map[string]json.RawMessage{}
		for _, k := range []string{"data", "partner_agent", "test_event_code"} {
			if v, ok := form[k]; ok {
				if k == "data" {
					top[k] = json.RawMessage(v)
				} else {
					top[k], _ = json.Marshal(v)
				}
			}
		}
	} else if err := json.Unmarshal(body, &top); err != nil {
		e := invalidParam("body is not a JSON object")
		return eventsRequest{}, &e
	}
	var req eventsRequest
	if _, ok := top["data"]; !ok {
		return req, &graphError{Message: "(#100) The parameter data is required", Type: "OAuthException", Code: 100}
	}
	if err := json.Unmarshal(top["data"], &req.Data); err != nil || req.Data == nil {
		e := invalidParam("data must be an array of events")
		return req, &e
	}
	if n := len(req.Data); n < 1 || n > maxEvents {
		e := invalidParam(fmt.Sprintf("data has %d events; it must have 1 to %d", n, maxEvents))
		return req, &e
	}
	for k, dst := range map[string]*string{"partner_agent": &req.PartnerAgent, "test_event_code": &req.TestEventCode} {
		if raw, ok := top[k]; ok && json.Unmarshal(raw, dst) != nil {
			e := invalidParam(k + " must be a string")
			return req, &e
		}
	}
	return req, nil
}

// formFields returns the fields of a form-encoded body, or nil for any other.
func formFields(r *http.Request, body []byte) (map[string]string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, nil
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k := range vals {
		out[k] = vals.Get(k)
	}
	return out, nil
}

// dropConnection closes the connection without a response: Meta took the
// events but the caller never hears so.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // aborts the response without writing it
}
