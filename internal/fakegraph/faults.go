package fakegraph

import (
	"fmt"
	"net/http"
	"time"
)

// faults are the injected misbehaviours; guarded by Server.mu.
type faults struct {
	failNext     []failure
	rejectIDs    map[string]bool
	latency      time.Duration
	jitter       func(time.Duration) time.Duration
	hang         map[string]bool
	unhang       chan struct{} // closed by ClearFaults: hung requests end
	hanging      int
	onAccept     func([]Event)
	dropNext     int
	usagePercent int
	regainMins   int
	echo         bool
}

type failure struct{ status, code, subcode int }

// FailNext makes the next n /events requests fail with HTTP status and Graph
// error code, before any other check, in Meta's shapes:
//   - code 0: a non-Graph body (a proxy's error page), e.g. FailNext(1, 502, 0);
//   - 1, 2: server errors with is_transient true;
//   - 4, 17, 32, 341, 613, 80000-80014: throttling, with X-App-Usage (code 4)
//     or X-Business-Use-Case-Usage at call_count 100 and
//     estimated_time_to_regain_access from SetRegainAccess;
//   - 190: an expired token; 100: an invalid parameter;
//   - 3: the app lacks the capability; 10 and 200-299: a permission missing;
//   - 368: temporarily blocked for a policy violation;
//   - others: a generic message.
//
// Calls add up: FailNext(1, 500, 2) then FailNext(1, 400, 4) fails twice.
func (s *Server) FailNext(n, status, code int) { s.FailNextSubcode(n, status, code, 0) }

// FailNextSubcode is FailNext with an error_subcode; code 100 with subcode 33
// is Graph's "object does not exist, cannot be loaded due to missing
// permissions, or does not support this operation".
func (s *Server) FailNextSubcode(n, status, code, subcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults.failNext = append(s.faults.failNext, failure{status, code, subcode})
	}
}

// RejectEventID makes any event with this event_id invalid, so a batch that
// carries it is rejected whole with code 100 naming its index.
func (s *Server) RejectEventID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.rejectIDs == nil {
		s.faults.rejectIDs = map[string]bool{}
	}
	s.faults.rejectIDs[id] = true
}

// AllowEventID undoes RejectEventID.
func (s *Server) AllowEventID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults.rejectIDs, id)
}

// Latency delays every /events answer by d (0 turns it off). A client that
// gives up meanwhile gets nothing and nothing is recorded.
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// LatencyJitter makes each /events answer wait f(d) instead of the Latency
// d (a load generator's log-normal around d, say); nil removes it.
func (s *Server) LatencyJitter(f func(time.Duration) time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.jitter = f
}

// HangDataset makes every /events request to datasetID hang until the
// client gives up (its timeout) or the server closes; nothing is recorded.
// A hung business, while the others answer.
func (s *Server) HangDataset(datasetID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.hang == nil {
		s.faults.hang = map[string]bool{}
		s.faults.unhang = make(chan struct{})
	}
	s.faults.hang[datasetID] = true
}

// OnAccept sets a hook called with the events of each accepted request after
// they are recorded and before the 200 response is written (nil removes it).
// Crash tests kill the sender here: Meta has the events, the sender no answer.
func (s *Server) OnAccept(fn func([]Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.onAccept = fn
}

// DropNext makes the next n valid /events requests be accepted and recorded
// and then answered by closing the connection: the response is lost.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropNext += n
}

// SetUsage makes successful /events answers carry X-Business-Use-Case-Usage
// with call_count percent (0 removes the header), to test slowing down.
func (s *Server) SetUsage(percent int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.usagePercent = percent
}

// SetRegainAccess sets estimated_time_to_regain_access (minutes) on injected
// throttle errors; default 0.
func (s *Server) SetRegainAccess(minutes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.regainMins = minutes
}

// EchoRequest makes rejections of invalid events quote the request (its URL
// with access_token and appsecret_proof, and the token), as an error that
// echoes the request would: the client must never store or log them.
func (s *Server) EchoRequest(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.echo = on
}

func (s *Server) echoes() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.echo
}

// Hanging is how many /events requests hang now (HangDataset).
func (s *Server) Hanging() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.hanging
}

// ClearFaults removes every injected fault. Requests hanging end without an
// answer written (the client sees an empty response).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.unhang != nil {
		close(s.faults.unhang)
	}
	hanging := s.faults.hanging
	s.faults = faults{hanging: hanging}
}

func (s *Server) takeFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults.failNext) == 0 {
		return failure{}, false
	}
	f := s.faults.failNext[0]
	s.faults.failNext = s.faults.failNext[1:]
	return f, true
}

func (s *Server) isRejectedID(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return id != "" && s.faults.rejectIDs[id]
}

// wait sleeps the configured latency; false if the client went away first
// (always, for a hung dataset).
func (s *Server) wait(r *http.Request, datasetID string) bool {
	s.mu.Lock()
	d, jitter, hang, unhang := s.faults.latency, s.faults.jitter, s.faults.hang[datasetID], s.faults.unhang
	if hang {
		s.faults.hanging++
		defer func() {
			s.mu.Lock()
			s.faults.hanging--
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	if jitter != nil && d > 0 {
		d = jitter(d)
	}
	if d <= 0 && !hang {
		return true
	}
	var fire <-chan time.Time
	if !hang {
		t := time.NewTimer(d)
		defer t.Stop()
		fire = t.C
	}
	select {
	case <-fire:
		return true
	case <-unhang:
		return false
	case <-r.Context().Done():
		return false
	case <-s.closed:
		return false
	}
}

func isThrottle(code int) bool {
	switch code {
	case 4, 17, 32, 341, 613:
		return true
	}
	return code >= 80000 && code <= 80014
}

func (s *Server) writeFailure(w http.ResponseWriter, f failure, datasetID string) int {
	if f.code == 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", f.status, http.StatusText(f.status))
		return f.status
	}
	e := graphError{Type: "OAuthException", Code: f.code}
	switch {
	case f.code == 1:
		e.Message, e.IsTransient = "An unknown error occurred", true
	case f.code == 2:
		e.Message, e.IsTransient = "An unexpected error has occurred. Please retry your request later.", true
	case f.code == 190:
		e.Message, e.Subcode = "Error validating access token: Session has expired.", 463
	case f.code == 100 && f.subcode == 33:
		e = unsupported(http.MethodPost, datasetID)
	case f.code == 100:
		e = invalidParam("injected failure")
	case f.code == 3:
		e.Message = "(#3) Application does not have the capability to make this API call."
	case f.code == 10:
		e.Message = "(#10) Application does not have permission for this action"
	case f.code >= 200 && f.code <= 299:
		e.Message = fmt.Sprintf("(#%d) Requires business_management permission to manage the object", f.code)
	case f.code == 368:
		e.Message = "The action attempted has been deemed abusive or is otherwise disallowed"
	case f.code == 4:
		e.Message = "(#4) Application request limit reached"
		w.Header().Set("X-App-Usage", `{"call_count":100,"total_cputime":20,"total_time":20}`)
	case isThrottle(f.code):
		e.Message = fmt.Sprintf("(#%d) There have been too many calls. Wait a bit and try again.", f.code)
		s.mu.Lock()
		regain := s.faults.regainMins
		s.mu.Unlock()
		w.Header().Set("X-Business-Use-Case-Usage", bucUsage(datasetID, 100, regain))
	default:
		e.Message = fmt.Sprintf("(#%d) Injected failure", f.code)
	}
	if f.subcode != 0 {
		e.Subcode = f.subcode
	}
	s.writeError(w, f.status, e)
	return f.status
}

// bucUsage is an X-Business-Use-Case-Usage value as "Rate Limits" shows it.
func bucUsage(objectID string, percent, regainMinutes int) string {
	return fmt.Sprintf(`{%q:[{"type":"ads_management","call_count":%d,"total_cputime":%d,"total_time":%d,"estimated_time_to_regain_access":%d}]}`,
		objectID, percent, percent/4, percent/4, regainMinutes)
}
