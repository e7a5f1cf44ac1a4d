package notify

import (
	"strconv"
	"time"
)

// The constructors below give each occurrence its id: the same for every
// process that tells it (so NOTIFY stores it once), another for the next.

// Paused is business.paused for a pause that began at since after Meta's
// error code/subcode (class: pkg/capi's); fix says what to do.
func Paused(business string, since time.Time, code, subcode int, class, fix string) Notification {
	s := since.UTC()
	return Notification{
		ID:   TypeBusinessPaused + ":" + business + ":" + strconv.FormatInt(s.UnixMilli(), 10),
		Type: TypeBusinessPaused, BusinessID: business, PausedSince: &s,
		Reason:    "Meta refused the business's requests; its conversions are parked until it is fixed and resumed. " + fix,
		MetaError: &MetaError{Code: code, Subcode: subcode, Class: class},
	}
}

// Resumed is business.resumed: an operator ended the pause at now.
func Resumed(business string, now time.Time) Notification {
	return Notification{
		ID:   TypeBusinessResumed + ":" + business + ":" + strconv.FormatInt(now.UnixMilli(), 10),
		Type: TypeBusinessResumed, BusinessID: business, Time: now.UTC(),
		Reason: "an operator resumed the business; its parked conversions are being sent",
	}
}

// Recovered is business.recovered: a request after the pause (begun at
// since; zero: unknown) was accepted at now.
func Recovered(business string, since, now time.Time) Notification {
	n := Notification{
		ID:   TypeBusinessRecovered + ":" + business + ":" + strconv.FormatInt(now.UnixMilli(), 10),
		Type: TypeBusinessRecovered, BusinessID: business, Time: now.UTC(),
		Reason: "Meta accepted the business's requests again after a pause; its parked conversions are being sent",
	}
	if !since.IsZero() {
		s := since.UTC()
		n.PausedSince = &s
		n.ID = TypeBusinessRecovered + ":" + business + ":" + strconv.FormatInt(s.UnixMilli(), 10)
	}
	return n
}

// DeadLettersRising is dead_letters.rising for the window that began at
// windowStart: count dead letters, the last for reason.
func DeadLettersRising(business string, windowStart time.Time, window time.Duration, count int64, threshold int, reason string) Notification {
	return Notification{
		ID:   TypeDeadLettersRising + ":" + business + ":" + strconv.FormatInt(windowStart.Unix(), 10),
		Type: TypeDeadLettersRising, BusinessID: business,
		Reason: "the business's conversions are being dead-lettered: see GET /v1/dead-letters?business_id=" + business,
		DeadLetters: &DeadLetters{Count: count, Threshold: threshold, WindowSeconds: int64(window / time.Second),
			LastReason: reason},
	}
}

// VersionExpiring is graph.version_expiring for version in state (expiring
// or expired) with its expiry. The id holds the day, so that senders
// starting together (within NOTIFY's hour-long window) tell it once.
func VersionExpiring(version, state string, expires time.Time, newest, advice string, now time.Time) Notification {
	g := &Graph{Version: version, State: state, Newest: newest}
	if !expires.IsZero() {
		g.Expires = expires.Format(time.DateOnly)
	}
	return Notification{
		ID:   TypeGraphVersionExpiring + ":" + version + ":" + now.UTC().Format(time.DateOnly),
		Type: TypeGraphVersionExpiring, Time: now.UTC(), Reason: advice, Graph: g,
	}
}
