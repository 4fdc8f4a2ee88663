package wren

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws a job's bar on one line:
//
//	task  45% |█████████           | 450/1000 [00:05<00:06, 85.3 calls/s]
//
// The rate and the time left appear only once they mean something: at
// least rateAfter after the job started and two calls done (a rate over the
// microseconds after the first call said "282805 calls/s"). A nil *progress
// draws nothing. It is safe for concurrent use.
type progress struct {
	w     io.Writer
	n     int
	desc  string
	width int
	now   func() time.Time
	start time.Time

	mu       sync.Mutex
	done     int
	drawn    time.Time
	finished bool
}

// rateAfter is how long a job runs before its bar shows a rate.
const rateAfter = time.Second

// redrawEvery throttles the bar.
const redrawEvery = 100 * time.Millisecond

func newProgress(mode ProgressMode, w io.Writer, n int, desc string) *progress {
	width := 0
	switch mode {
	case ProgressOff:
		return nil
	case ProgressAuto:
		f, ok := w.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil
		}
	}
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = cols
		}
	}
	if width <= 0 {
		width = 100
	}
	p := newProgressClock(w, n, desc, width, time.Now)
	// Redraw now and then: the clock moves during long calls, and a
	// throttled update is not left undrawn.
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			p.mu.Lock()
			stop := p.finished
			if !stop {
				p.draw(p.now())
			}
			p.mu.Unlock()
			if stop {
				return
			}
		}
	}()
	return p
}

func newProgressClock(w io.Writer, n int, desc string, width int, now func() time.Time) *progress {
	p := &progress{w: w, n: n, desc: desc, width: width, now: now, start: now()}
	p.mu.Lock()
	p.draw(p.start)
	p.mu.Unlock()
	return p
}

func (p *progress) add(k int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first := p.done == 0
	p.done += k
	now := p.now()
	if first || p.done >= p.n || now.Sub(p.drawn) >= redrawEvery {
		p.draw(now)
	}
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.draw(p.now())
	p.finished = true
	io.WriteString(p.w, "\n")
}

// draw writes the bar; p.mu is held.
func (p *progress) draw(now time.Time) {
	if p.finished {
		return
	}
	p.drawn = now
	elapsed := now.Sub(p.start)
	frac := 1.0
	if p.n > 0 {
		frac = float64(p.done) / float64(p.n)
	}
	stats := fmt.Sprintf(" %d/%d [%s", p.done, p.n, clock(elapsed))
	if rate, ok := p.rate(elapsed); ok {
		left := "00:00"
		if p.done < p.n {
			left = clock(time.Duration(float64(p.n-p.done) / rate * float64(time.Second)))
		}
		stats += "<" + left + ", " + rateString(rate) + " calls/s"
	}
	stats += "]"
	head := fmt.Sprintf("%s %3d%% ", p.desc, int(frac*100))
	barWidth := p.width - len(head) - len(stats) - 3
	var b strings.Builder
	b.WriteString("\r")
	b.WriteString(head)
	if barWidth >= 10 {
		barWidth = min(barWidth, 60)
		full := int(frac * float64(barWidth))
		b.WriteString("|")
		b.WriteString(strings.Repeat("█", full))
		b.WriteString(strings.Repeat(" ", barWidth-full))
		b.WriteString("|")
	}
	b.WriteString(stats)
	io.WriteString(p.w, b.String())
}

// rate is calls per second, once it means something.
func (p *progress) rate(elapsed time.Duration) (float64, bool) {
	if elapsed < rateAfter || p.done < 2 {
		return 0, false
	}
	return float64(p.done) / elapsed.Seconds(), true
}

// clock formats a duration as mm:ss, or h:mm:ss past an hour.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

func rateString(r float64) string {
	switch {
	case r >= 10000:
		return fmt.Sprintf("%.0fk", r/1000)
	case r >= 1000:
		return fmt.Sprintf("%.1fk", r/1000)
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}
