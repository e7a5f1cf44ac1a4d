package replay

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Summary is the outcome of a replay.
type Summary struct {
	DryRun bool
	// Bodies is how many bodies were handled; each is OK or Failed.
	Bodies, OK, Failed int
	// Statuses counts bodies by the HTTP status of their last attempt.
	Statuses map[int]int
	// NotSent counts bodies refused before sending (not JSON, unknown
	// shape, unreadable); NoResponse those that got no HTTP answer.
	NotSent, NoResponse int
	// Retried counts bodies that took more than one attempt.
	Retried int
	// Failures lists the first failures, in the order they happened.
	Failures []Failure
	Elapsed  time.Duration

	mu  sync.Mutex
	max int
}

// Failure is one body that was not accepted, and why (never its content).
type Failure struct {
	Source string
	Reason string
}

func (f Failure) String() string { return f.Source + ": " + f.Reason }

func newSummary(maxFailures int, dryRun bool) *Summary {
	return &Summary{DryRun: dryRun, Statuses: map[int]int{}, max: maxFailures}
}

func (s *Summary) add(source string, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Bodies++
	if o.status != 0 {
		s.Statuses[o.status]++
	}
	if o.attempts > 1 {
		s.Retried++
	}
	if o.ok {
		s.OK++
		return
	}
	s.Failed++
	switch {
	case o.notSent:
		s.NotSent++
	case o.status == 0:
		s.NoResponse++
	}
	if len(s.Failures) < s.max {
		s.Failures = append(s.Failures, Failure{Source: source, Reason: o.reason})
	}
}

// counts returns done, ok and failed for the progress display.
func (s *Summary) counts() (done, ok, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Bodies, s.OK, s.Failed
}

// WriteTo prints the summary for a person: totals, status codes, and the
// first failures with their file:line.
func (s *Summary) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	secs := s.Elapsed.Seconds()
	perSec := 0.0
	if secs > 0 {
		perSec = float64(s.Bodies) / secs
	}
	if s.DryRun {
		fmt.Fprintf(&b, "replay (dry run): %d bodies: %d ok, %d failed\n", s.Bodies, s.OK, s.Failed)
	} else {
		fmt.Fprintf(&b, "replay: %d bodies in %s (%.1f/s): %d ok, %d failed\n",
			s.Bodies, s.Elapsed.Round(time.Millisecond), perSec, s.OK, s.Failed)
	}
	if len(s.Statuses) > 0 {
		codes := make([]int, 0, len(s.Statuses))
		for c := range s.Statuses {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		b.WriteString("  status:")
		for _, c := range codes {
			fmt.Fprintf(&b, " %d=%d", c, s.Statuses[c])
		}
		b.WriteByte('\n')
	}
	if s.NotSent > 0 {
		fmt.Fprintf(&b, "  not sent (bad input): %d\n", s.NotSent)
	}
	if s.NoResponse > 0 {
		fmt.Fprintf(&b, "  no response: %d\n", s.NoResponse)
	}
	if s.Retried > 0 {
		fmt.Fprintf(&b, "  retried: %d\n", s.Retried)
	}
	if s.Failed > 0 {
		if s.Failed > len(s.Failures) {
			fmt.Fprintf(&b, "failures (first %d of %d):\n", len(s.Failures), s.Failed)
		} else {
			b.WriteString("failures:\n")
		}
		for _, f := range s.Failures {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
