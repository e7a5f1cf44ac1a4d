package fakegraph

import (
	"maps"
	"regexp"
)

// Events returns the accepted events in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// CountByEventID counts accepted events per event_id ("" for events sent
// without one). A count above 1 is a duplicate Meta would have counted twice:
// Meta does not deduplicate business messaging events.
func (s *Server) CountByEventID() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.events))
	for _, e := range s.events {
		out[e.EventID]++
	}
	return out
}

// Requests counts POST /events requests received, whatever their outcome.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// HeaderNames counts, per header name (canonical form: "Traceparent"),
// the /events requests that carried it: what a client told Meta besides
// the body, such as a trace context that must stay inside the pipeline.
func (s *Server) HeaderNames() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.headerNames)
}

// Rejected counts /events requests answered with an error (validation,
// authentication, injected failures) or abandoned by the client during
// Latency. Dropped responses (DropNext) count as accepted.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Reset forgets accepted events, request counters and Dataset API calls;
// tokens, datasets and faults stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.requests, s.rejected, s.datasetCalls, s.peakInflight, s.headerNames = nil, 0, 0, nil, s.inflight, nil
	if s.arrivals != nil {
		s.arrivals = map[string]int{}
	}
}

// arrivedID finds the event ids in a request body, answered or not.
var arrivedID = regexp.MustCompile(`"event_id"\s*:\s*"([^"]*)"`)

// RecordArrivals makes the server note the event ids of every /events
// request whose body arrived, before any latency, hang or check: the events
// a sender "may have delivered to Meta" although none was accepted.
func (s *Server) RecordArrivals() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arrivals == nil {
		s.arrivals = map[string]int{}
	}
}

// Arrivals counts, per event id, the requests that carried it to the
// server (RecordArrivals), accepted or not.
func (s *Server) Arrivals() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.arrivals)
}

func (s *Server) noteArrival(body []byte) {
	s.mu.Lock()
	on := s.arrivals != nil
	s.mu.Unlock()
	if !on {
		return
	}
	ms := arrivedID.FindAllSubmatch(body, -1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		s.arrivals[string(m[1])]++
	}
}

// Accepted counts the accepted events (len(Events()), without the copy).
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}
