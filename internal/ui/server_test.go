package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/job"
)

func putJSON(t testing.TB, st blob.Store, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := blob.PutBytes(context.Background(), st, key, b, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// fakeJob writes a job's records as a driver and its workers would: the
// manifest, a status for each of calls [from, to) (failed ones with an
// error and a log), the driver's record, and, when the job ended, its
// summary.
func fakeJob(t testing.TB, st blob.Store, id, task string, calls int, created time.Time) {
	t.Helper()
	putJSON(t, st, job.ManifestKey(id), job.Manifest{Job: id, Task: task, Calls: calls, Codec: "json", Backend: "local", Created: created})
}

func fakeStatuses(t testing.TB, st blob.Store, id string, created time.Time, from, to int, failEvery int) {
	t.Helper()
	for i := from; i < to; i++ {
		base := created.Add(time.Duration(i) * time.Millisecond).UnixNano()
		s := job.Status{Call: i, OK: true, Worker: fmt.Sprintf("local-%d", i%3), Dispatched: base, Started: base + 1e5,
			ComputeStart: base + 2e5, ComputeEnd: base + 9e6, Finished: base + 1e7}
		if failEvery > 0 && i%failEvery == 0 {
			s.OK, s.Error = false, &job.Error{Kind: job.ErrorKind("error"), Message: fmt.Sprintf("call %d: boom", i)}
			s.Log = job.LogKey(id, i, 0)
			if err := blob.PutBytes(context.Background(), st, s.Log, []byte("printed by call "+fmt.Sprint(i)+"\n"), blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		putJSON(t, st, job.StatusKey(id, i), s)
	}
}

func fakeDriver(t testing.TB, st blob.Store, id, state string, done, failed int) {
	t.Helper()
	host, _ := os.Hostname()
	putJSON(t, st, job.DriverKey(id, 0), job.Driver{Epoch: 0, Host: host, PID: os.Getpid(), Started: time.Now(), Beat: time.Now(), State: state, Done: done, Failed: failed})
}

func get(t testing.TB, h http.Handler, url string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func decode[T any](t testing.TB, r *http.Response) T {
	t.Helper()
	var v T
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, b)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

type jobsAnswer struct {
	Jobs  []JobRow `json:"jobs"`
	Total int      `json:"total"`
}

// TestAPI: the jobs list and a job's page of an empty store, a finished
// job, a failed one and a running one; conditional requests; logs.
func TestAPI(t *testing.T) {
	st := memblob.New()
	srv := New(Options{Store: st, Refresh: time.Millisecond})
	h := srv.Handler()
	if a := decode[jobsAnswer](t, get(t, h, "/api/jobs")); a.Total != 0 || len(a.Jobs) != 0 {
		t.Fatalf("empty store: %+v", a)
	}
	if r := get(t, h, "/"); r.StatusCode != 200 || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d", r.StatusCode)
	}
	t0 := time.Now().Add(-time.Minute)
	fakeJob(t, st, "20261130-100000-aaaaaa", "demo.done", 10, t0)
	fakeStatuses(t, st, "20261130-100000-aaaaaa", t0, 0, 10, 0)
	fakeDriver(t, st, "20261130-100000-aaaaaa", job.StateDone, 10, 0)
	putJSON(t, st, job.SummaryKey("20261130-100000-aaaaaa"), wren.JobStats{Job: "20261130-100000-aaaaaa", Done: 10, Wall: 2 * time.Second})
	fakeJob(t, st, "20261130-100001-bbbbbb", "demo.failed", 9, t0)
	fakeStatuses(t, st, "20261130-100001-bbbbbb", t0, 0, 9, 4)
	fakeDriver(t, st, "20261130-100001-bbbbbb", job.StateDone, 9, 3)
	fakeJob(t, st, "20261130-100002-cccccc", "demo.running", 100, t0)
	fakeStatuses(t, st, "20261130-100002-cccccc", t0, 0, 30, 0)
	fakeDriver(t, st, "20261130-100002-cccccc", job.StateRunning, 0, 0)

	a := decode[jobsAnswer](t, get(t, h, "/api/jobs"))
	if a.Total != 3 || a.Jobs[0].ID != "20261130-100002-cccccc" || a.Jobs[2].ID != "20261130-100000-aaaaaa" {
		t.Fatalf("jobs, newest first: %+v", a)
	}
	want := map[string]string{"demo.done": "done", "demo.failed": "failed", "demo.running": "running"}
	for _, j := range a.Jobs {
		if j.State != want[j.Task] {
			t.Errorf("%s: state %s", j.Task, j.State)
		}
	}
	if a.Jobs[2].WallMS != 2000 || a.Jobs[0].Done != 30 {
		t.Fatalf("rows %+v", a.Jobs)
	}
	if f := decode[jobsAnswer](t, get(t, h, "/api/jobs?state=failed")); f.Total != 1 || f.Jobs[0].Task != "demo.failed" {
		t.Fatalf("filter by state: %+v", f)
	}
	if f := decode[jobsAnswer](t, get(t, h, "/api/jobs?task=run")); f.Total != 1 || f.Jobs[0].Task != "demo.running" {
		t.Fatalf("filter by task: %+v", f)
	}

	// A failed job's page: its errors, and a failed call's log.
	v := decode[JobView](t, get(t, h, "/api/job/20261130-100001-bbbbbb"))
	if v.State != "failed" || v.Failed != 3 || len(v.Errors) != 3 || v.Errors[1].Call != 4 || !strings.Contains(v.Errors[1].Message, "boom") {
		t.Fatalf("failed job: %+v", v)
	}
	if len(v.Timeline.Rows) != 9 || len(v.Timeline.Workers) != 3 || v.Timeline.Sampled || len(v.Phases) != 5 || v.Phases[3].P50 < 8 {
		t.Fatalf("timeline and phases: %+v %+v", v.Timeline, v.Phases)
	}
	r := get(t, h, "/api/job/20261130-100001-bbbbbb/logs/4")
	if b, _ := io.ReadAll(r.Body); !strings.Contains(string(b), "printed by call 4") {
		t.Fatalf("logs: %s", b)
	}

	// A running job: an unchanged answer is a 304; new statuses show, and
	// only they are read.
	r = get(t, h, "/api/job/20261130-100002-cccccc")
	etag := r.Header.Get("ETag")
	if v := decode[JobView](t, r); v.Done != 30 || v.State != "running" {
		t.Fatalf("running job: %+v", v.JobRow)
	}
	if r := get(t, h, "/api/job/20261130-100002-cccccc", "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged: %d", r.StatusCode)
	}
	before := srv.Requests()
	fakeStatuses(t, st, "20261130-100002-cccccc", t0, 30, 45, 0)
	time.Sleep(2 * time.Millisecond)
	r = get(t, h, "/api/job/20261130-100002-cccccc", "If-None-Match", etag)
	if v := decode[JobView](t, r); v.Done != 45 || len(v.Timeline.Rows) != 45 {
		t.Fatalf("after 15 more calls: %+v", v.JobRow)
	}
	after := srv.Requests()
	if g := after.Gets - before.Gets; g > 15+10 {
		t.Fatalf("%d reads to see 15 new statuses", g)
	}

	// Not found and bad input.
	for url, code := range map[string]int{
		"/api/job/20261130-999999-dddddd":            404,
		"/api/job/..%2fsecret":                       400,
		"/api/job/a%00b":                             400,
		"/api/job/20261130-100001-bbbbbb/logs/-1":    400,
		"/api/job/20261130-100001-bbbbbb/logs/x":     400,
		"/job/..%2f..%2fetc":                         400,
		"/static/../server.go":                       307, // cleaned to /server.go, not served
		"/api/job/20261130-100001-bbbbbb/logs/99999": 200, // no log kept: said so
	} {
		if r := get(t, h, url); r.StatusCode != code && !(code == 404 && r.StatusCode == 400) {
			t.Errorf("%s: %d, want %d", url, r.StatusCode, code)
		}
	}
	req := httptest.NewRequest("POST", "/api/jobs", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

// TestToken: with a token, nothing is served without it; ?token= sets a
// cookie and redirects to the page without it.
func TestToken(t *testing.T) {
	h := New(Options{Store: memblob.New(), Token: "s3cret"}).Handler()
	for _, url := range []string{"/", "/api/jobs", "/static/app.js", "/api/jobs?token=wrong"} {
		if r := get(t, h, url); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s without the token: %d", url, r.StatusCode)
		}
	}
	r := get(t, h, "/api/jobs?token=s3cret&state=done")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/api/jobs?state=done" {
		t.Fatalf("first visit: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	cookie := r.Cookies()[0]
	if !cookie.HttpOnly || cookie.Value != "s3cret" {
		t.Fatalf("cookie %+v", cookie)
	}
	if r := get(t, h, "/api/jobs", "Cookie", "wren_ui=s3cret"); r.StatusCode != 200 {
		t.Fatalf("with the cookie: %d", r.StatusCode)
	}
	if r := get(t, h, "/api/jobs", "Cookie", "wren_ui=s3cres"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong cookie: %d", r.StatusCode)
	}
}
