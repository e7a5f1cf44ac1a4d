package ingest

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// idChanger carries a conversation to a user's new ids (*attribution.Store).
type idChanger interface {
	ChangeID(ctx context.Context, c attribution.IDChange) (attribution.ChangeOutcome, error)
}

// Outcomes of ingest_id_changes_total.
const (
	idLinked     = "linked"      // the new ids find the conversation's click
	idNoContext  = "no_context"  // no click stored under the old ids: nothing to carry
	idOwnContext = "own_context" // the new ids have clicks of their own, kept
	idMalformed  = "malformed"   // ids the store cannot key
)

// idChangeMetrics counts WhatsApp's id-change system messages by type and
// outcome; the labels are fixed sets, never ids.
type idChangeMetrics struct{ vec *prometheus.CounterVec }

func newIDChangeMetrics(reg prometheus.Registerer) (idChangeMetrics, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_id_changes_total",
		Help: "WhatsApp system messages saying a user's id changed, by type (user_changed_number, user_changed_user_id) and outcome (linked, no_context, own_context, malformed).",
	}, []string{"type", "outcome"})
	if err := reg.Register(vec); err != nil {
		return idChangeMetrics{}, err
	}
	for _, t := range []string{webhook.SystemUserChangedNumber, webhook.SystemUserChangedUserID} {
		for _, o := range []string{idLinked, idNoContext, idOwnContext, idMalformed} {
			vec.WithLabelValues(t, o)
		}
	}
	return idChangeMetrics{vec}, nil
}

// changeIDs applies a delivery's id changes after its clicks were stored:
// each new id is made to find the conversation of the old ones
// (attribution.Store.ChangeID). A change the store cannot key is counted
// and logged by count; a store failure is returned for the caller to answer
// 503 (Meta retries, and applying a change twice is harmless).
func (s *Server) changeIDs(ctx context.Context, ch channel, changes []webhook.IDChange) error {
	if len(changes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	malformed := 0
	for _, c := range changes {
		out, err := s.ids.ChangeID(ctx, attribution.IDChange{Channel: attribution.WhatsApp, BusinessID: c.BusinessID, Old: c.Old, New: c.New})
		label := idLinked
		switch {
		case errors.Is(err, attribution.ErrInvalidIDChange):
			label = idMalformed
			malformed++
		case err != nil:
			return err
		case out == attribution.ChangeNoContext:
			label = idNoContext
		case out == attribution.ChangeOwnContext:
			label = idOwnContext
		}
		s.idm.vec.WithLabelValues(c.Type, label).Inc()
	}
	if malformed > 0 {
		s.log.Warn("id changes could not be keyed", zap.String("channel", ch.String()), zap.Int("malformed", malformed))
	}
	return nil
}
