package console

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Charts are inline SVG computed here, so the templates only place numbers
// (no script draws them, and the CSP needs no exception).

const (
	barWidth   = 320 // px of the longest bar
	barHeight  = 22  // px per row
	lineWidth  = 600
	lineHeight = 120
)

// bar is one row of a horizontal bar chart.
type bar struct {
	Label string
	Value int64
	Width int // px
	Y     int // px of the row's top
	Class string
}

// barChart is a horizontal bar chart; Height is the SVG's.
type barChart struct {
	Bars   []bar
	Height int
	Total  int64
}

// newBarChart draws values in the order given; classOf picks each bar's
// CSS class (colour) from its label.
func newBarChart(labels []string, values map[string]int64, classOf func(string) string) barChart {
	var max int64
	for _, l := range labels {
		max = maxInt64(max, values[l])
	}
	ch := barChart{Height: barHeight * len(labels)}
	for i, l := range labels {
		v := values[l]
		w := 0
		if max > 0 {
			w = int(float64(v) / float64(max) * barWidth)
		}
		if v > 0 && w < 2 {
			w = 2 // a non-zero count stays visible
		}
		ch.Bars = append(ch.Bars, bar{Label: l, Value: v, Width: w, Y: i * barHeight, Class: classOf(l)})
		ch.Total += v
	}
	return ch
}

// outcomeChart is outcomes by reason, largest first.
func outcomeChart(outcomes map[string]int64) barChart {
	labels := make([]string, 0, len(outcomes))
	for k := range outcomes {
		labels = append(labels, k)
	}
	sort.Slice(labels, func(i, j int) bool {
		if outcomes[labels[i]] != outcomes[labels[j]] {
			return outcomes[labels[i]] > outcomes[labels[j]]
		}
		return labels[i] < labels[j]
	})
	return newBarChart(labels, outcomes, outcomeClass)
}

// outcomeClass colours an outcome: sent green, dead letters red, the rest
// (duplicates, retries) grey.
func outcomeClass(label string) string {
	switch {
	case label == "sent":
		return "ok"
	case strings.HasPrefix(label, "dead_letter"):
		return "bad"
	}
	return "meh"
}

// line is one series of a line chart.
type line struct {
	Name   string
	Points string // SVG polyline points
	Total  float64
	Class  string
}

// lineChart is series over time on a common scale.
type lineChart struct {
	Lines         []line
	Width, Height int
	Max           float64
	From, To      string
}

// seriesOrder is the order (and colour) of the stats series.
var seriesOrder = []struct{ name, class string }{
	{"webhooks", "s1"}, {"conversions", "s2"}, {"sent", "ok"}, {"dead_letters", "bad"},
}

func newLineChart(st statsJSON) lineChart {
	ch := lineChart{Width: lineWidth, Height: lineHeight}
	n := 0
	for _, s := range seriesOrder {
		for _, v := range st.Series[s.name] {
			ch.Max = max(ch.Max, v)
		}
		n = max(n, len(st.Series[s.name]))
	}
	for _, s := range seriesOrder {
		vals, ok := st.Series[s.name]
		if !ok {
			continue
		}
		var pts []string
		var total float64
		for i, v := range vals {
			x := 0.0
			if n > 1 {
				x = float64(i) / float64(n-1) * lineWidth
			}
			y := float64(lineHeight)
			if ch.Max > 0 {
				y = lineHeight - v/ch.Max*(lineHeight-4)
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			total += v
		}
		ch.Lines = append(ch.Lines, line{Name: s.name, Points: strings.Join(pts, " "), Total: total, Class: s.class})
	}
	if !st.Start.IsZero() {
		step := time.Duration(st.StepSeconds) * time.Second
		ch.From = st.Start.UTC().Format("Jan 2 15:04")
		ch.To = st.Start.Add(time.Duration(max(n-1, 0))*step).UTC().Format("Jan 2 15:04") + " UTC"
	}
	return ch
}

// rates are the live per-second rates from the 1 h stats: the current
// (partial) step and the one before it, over the time they cover.
type rates struct {
	Webhooks    float64 `json:"webhooks_per_s"`
	Conversions float64 `json:"conversions_per_s"`
	Sent        float64 `json:"sent_per_s"`
	P50         float64 `json:"graph_latency_p50_ms"`
	P99         float64 `json:"graph_latency_p99_ms"`
	At          string  `json:"at"`
}

func liveRates(st statsJSON, now time.Time) rates {
	r := rates{P50: st.Latency.P50, P99: st.Latency.P99, At: now.UTC().Format(time.RFC3339)}
	step := time.Duration(st.StepSeconds) * time.Second
	if step <= 0 {
		step = time.Minute
	}
	rate := func(vals []float64) float64 {
		n := len(vals)
		if n == 0 {
			return 0
		}
		// The last step is the current one, partly over.
		cur := step
		if !st.Start.IsZero() {
			cur = now.Sub(st.Start.Add(time.Duration(n-1) * step))
			cur = min(max(cur, time.Second), step)
		}
		sum, span := vals[n-1], cur
		if n > 1 {
			sum, span = sum+vals[n-2], span+step
		}
		return sum / span.Seconds()
	}
	r.Webhooks = rate(st.Series["webhooks"])
	r.Conversions = rate(st.Series["conversions"])
	r.Sent = rate(st.Series["sent"])
	return r
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
