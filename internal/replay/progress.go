package replay

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// barWidth is the number of cells in the terminal progress bar.
const barWidth = 30

// progress shows how far the replay is: a bar redrawn in place on a
// terminal, a plain line every few seconds otherwise (logs, CI).
type progress struct {
	w     io.Writer // nil: no display
	tty   bool
	every time.Duration
	sum   *Summary
	start time.Time

	readN atomic.Int64
	total atomic.Int64 // -1 while unknown
	frame int
}

func newProgress(w io.Writer, tty bool, every time.Duration, sum *Summary) *progress {
	p := &progress{w: w, tty: tty, every: every, sum: sum, start: time.Now()}
	p.total.Store(-1)
	return p
}

func (p *progress) setTotal(n int) { p.total.Store(int64(n)) }

// read counts a body handed to the workers.
func (p *progress) read() { p.readN.Add(1) }

// readDone marks the end of the input: the total is now known.
func (p *progress) readDone() {
	p.total.Store(p.readN.Load())
}

func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

// run draws until done is closed, then draws the final state once.
func (p *progress) run(done <-chan struct{}) {
	if p.w == nil {
		return
	}
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw(false)
		case <-done:
			p.draw(true)
			return
		}
	}
}

func (p *progress) draw(final bool) {
	done, ok, failed := p.sum.counts()
	total := int(p.total.Load())
	rate := 0.0
	if s := p.elapsed().Seconds(); s > 0 {
		rate = float64(done) / s
	}
	of := "?"
	if total >= 0 {
		of = fmt.Sprint(total)
	}
	stats := fmt.Sprintf("%d/%s %.0f/s ok=%d fail=%d", done, of, rate, ok, failed)
	if !p.tty {
		if final {
			return // the summary follows
		}
		fmt.Fprintf(p.w, "replay: %s\n", stats)
		return
	}
	// \r and "erase to end of line" redraw in place.
	line := "\r" + p.bar(done, total) + " " + stats + "\x1b[K"
	if final {
		line += "\n"
	}
	io.WriteString(p.w, line)
}

// bar renders [=====>    ]; with an unknown total a marker bounces instead.
func (p *progress) bar(done, total int) string {
	cells := make([]byte, barWidth)
	for i := range cells {
		cells[i] = ' '
	}
	switch {
	case total > 0:
		n := min(done*barWidth/total, barWidth)
		for i := range n {
			cells[i] = '='
		}
		if n < barWidth {
			cells[n] = '>'
		}
	case total == 0:
		for i := range cells {
			cells[i] = '='
		}
	default:
		p.frame++
		pos := p.frame % (2 * (barWidth - 3))
		if pos >= barWidth-3 {
			pos = 2*(barWidth-3) - pos
		}
		copy(cells[pos:], "<=>")
	}
	return "[" + string(cells) + "]"
}
