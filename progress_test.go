package wren

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressRate: the bar shows a rate and a time left only once they
// mean something; before, a rate over the microseconds after the first
// call read "282805 calls/s".
func TestProgressRate(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	p := newProgressClock(&out, 2, "task", 100, func() time.Time { return now })
	last := func() string {
		s := out.String()
		return s[strings.LastIndex(s, "\r")+1:]
	}
	now = t0.Add(4 * time.Microsecond)
	p.add(1)
	if l := last(); strings.Contains(l, "calls/s") || !strings.Contains(l, "1/2") || !strings.Contains(l, " 50%") {
		t.Fatalf("after the first call: %q", l)
	}
	now = t0.Add(4 * time.Second)
	p.add(1)
	if l := last(); !strings.Contains(l, "2/2") || !strings.Contains(l, "0.50 calls/s") || !strings.Contains(l, "[00:04<00:00") {
		t.Fatalf("after the second call: %q", l)
	}
	p.finish()
	p.finish()
	if !strings.HasSuffix(out.String(), "]\n") {
		t.Fatalf("finish: %q", out.String())
	}

	// A long job: the rate and the time left once a second has passed.
	out.Reset()
	p = newProgressClock(&out, 1000, "featurize", 120, func() time.Time { return now })
	t0 = now
	now = t0.Add(500 * time.Millisecond)
	p.add(100)
	if l := last(); strings.Contains(l, "calls/s") {
		t.Fatalf("after 0.5 s: %q", l)
	}
	now = t0.Add(2 * time.Second)
	p.add(300)
	if l := last(); !strings.Contains(l, "400/1000") || !strings.Contains(l, "200 calls/s") || !strings.Contains(l, "<00:03") {
		t.Fatalf("after 2 s: %q", l)
	}
	// Throttled: a call 10 ms later is not drawn, the last one is.
	now = now.Add(10 * time.Millisecond)
	n := out.Len()
	p.add(1)
	if out.Len() != n {
		t.Fatalf("redrawn after 10 ms: %q", out.String()[n:])
	}
	now = now.Add(time.Hour)
	p.add(599)
	if l := last(); !strings.Contains(l, "1000/1000") || !strings.Contains(l, "100% |") || !strings.Contains(l, "[1:00:02<00:00") {
		t.Fatalf("done: %q", l)
	}
	// Narrow terminals drop the bar, not the counts; zero calls is 100%.
	out.Reset()
	p = newProgressClock(&out, 0, "a-very-long-task-name", 30, func() time.Time { return now })
	p.finish()
	if l := out.String(); strings.Contains(l, "|") || !strings.Contains(l, "100%") || !strings.Contains(l, "0/0") {
		t.Fatalf("narrow, empty: %q", l)
	}
}
