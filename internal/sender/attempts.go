package sender

import (
	"errors"
	"strconv"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// logAttempt puts one Graph request in its business's attempt log
// (internal/trail attempts.go, written with the trail's flushes) and
// returns its id: this sender's instance and a sequence number, unique
// among the senders sharing the store.
func (s *Service) logAttempt(business, dataset string, start time.Time, took time.Duration, events int, resp capi.Response, err error) string {
	id := s.instance + "-" + strconv.FormatUint(s.reqSeq.Add(1), 10)
	if s.trailOff {
		return id
	}
	a := trail.Attempt{ID: id, At: trail.At(start), BusinessID: business, DatasetID: dataset, Events: events,
		LatencyMS: took.Milliseconds(), DryRun: s.cfg.DryRunFile != ""}
	var ae *capi.APIError
	switch {
	case err == nil:
		a.Status, a.FBTraceID, a.EventsReceived = 200, resp.FBTraceID, resp.EventsReceived
	case errors.As(err, &ae):
		a.Status, a.FBTraceID, a.Code, a.Subcode = ae.Status, ae.FBTraceID, ae.Code, ae.Subcode
		a.Class, a.Message = ae.Class().String(), capi.Scrub(ae.Message)
	default:
		a.Message = capi.Scrub(err.Error()) // no answer: the client's text, without the token
	}
	s.tw.Attempt(a)
	return id
}
