//go:build !race

// The race detector slows this one tenfold; make test runs it without.

package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/job"
)

// TestLargeStores: 10,000 jobs list the newest 200 with the total; a job
// of 100,000 calls sends an even sample of at most MaxRows timeline rows.
func TestLargeStores(t *testing.T) {
	st := memblob.New()
	t0 := time.Now().Add(-time.Hour)
	for i := range 10000 {
		id := fmt.Sprintf("20261130-%06d-aaaaaa", i)
		fakeJob(t, st, id, "many", 1, t0.Add(time.Duration(i)*time.Millisecond))
		fakeDriver(t, st, id, job.StateDone, 1, 0)
	}
	h := New(Options{Store: st}).Handler()
	a := decode[jobsAnswer](t, get(t, h, "/api/jobs"))
	if a.Total != 10000 || len(a.Jobs) != 200 || a.Jobs[0].ID != "20261130-009999-aaaaaa" {
		t.Fatalf("10,000 jobs: total %d, %d rows, first %s", a.Total, len(a.Jobs), a.Jobs[0].ID)
	}
	big := "20261130-999999-bbbbbb"
	fakeJob(t, st, big, "big", 100000, t0)
	fakeStatuses(t, st, big, t0, 0, 100000, 0)
	fakeDriver(t, st, big, job.StateDone, 100000, 0)
	r := get(t, h, "/api/job/"+big)
	b, _ := io.ReadAll(r.Body)
	var v JobView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Done != 100000 || !v.Timeline.Sampled || len(v.Timeline.Rows) > MaxRows || len(v.Timeline.Rows) < MaxRows/2 || len(b) > 1<<20 {
		t.Fatalf("100,000 calls: done %d, %d rows (sampled %v), %d bytes", v.Done, len(v.Timeline.Rows), v.Timeline.Sampled, len(b))
	}
}
