package ui

import (
	"fmt"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/sgd"
	"github.com/wrenml/wren/tune"
)

// fakeRun writes a training run's record as sgd.Train does.
func fakeRun(t testing.TB, st blob.Store, id, state string, points int, updated time.Time) {
	t.Helper()
	rec := sgd.RunRecord{Run: id, Model: "m-" + id, Kind: "linear", Loss: "softmax", Workers: 2, Epochs: 5, State: state,
		Started: updated.Add(-time.Minute), Updated: updated, Examples: 1000, ExamplesPerSecond: 500,
		WorkerStats: []sgd.WorkerStats{{Worker: 0, Examples: 500}, {Worker: 1, Examples: 500}}}
	for i := range points {
		rec.Curve = append(rec.Curve, sgd.Point{Time: time.Duration(i) * time.Second, Loss: 2 / float64(i+1), Accuracy: 0.5 + 0.04*float64(i)})
	}
	putJSON(t, st, sgd.RunsPrefix+id+".json", rec)
}

// fakeSweep writes a sweep's head and trials as tune.Sweep does.
func fakeSweep(t testing.TB, st blob.Store, name string, from, to int) {
	t.Helper()
	prefix := "tune/" + name
	putJSON(t, st, prefix+"/sweep.json", tune.Results{Prefix: prefix, Metric: "accuracy", Mode: tune.Max})
	for i := from; i < to; i++ {
		tr := tune.Trial{ID: i, Label: fmt.Sprintf("lr=%d", i), Num: map[string]float64{"lr": float64(i) / 10}, Str: map[string]string{"opt": "sgd"},
			Budget: 1, Metrics: tune.Metrics{"accuracy": 0.5 + float64(i)/100}, Duration: time.Second}
		if i == 2 {
			tr.Metrics, tr.Err = nil, "diverged"
		}
		putJSON(t, st, fmt.Sprintf("%s/trials/%06d-%d.json", prefix, tr.ID, tr.Budget), tr)
	}
}

type runsAnswer struct {
	Runs []RunRow `json:"runs"`
}

type sweepsAnswer struct {
	Sweeps []SweepRow `json:"sweeps"`
}

// TestTrainingAPI: training runs (done, running, and running but no
// longer updated: orphaned) and sweeps (trials read once each, the best
// by the sweep's mode, failed trials counted).
func TestTrainingAPI(t *testing.T) {
	st := memblob.New()
	srv := New(Options{Store: st})
	h := srv.Handler()
	if a := decode[runsAnswer](t, get(t, h, "/api/runs")); len(a.Runs) != 0 {
		t.Fatalf("no runs: %+v", a)
	}
	if a := decode[sweepsAnswer](t, get(t, h, "/api/sweeps")); len(a.Sweeps) != 0 {
		t.Fatalf("no sweeps: %+v", a)
	}
	now := time.Now()
	fakeRun(t, st, "aaaa01", "done", 5, now.Add(-time.Hour))
	fakeRun(t, st, "aaaa02", "running", 3, now)
	fakeRun(t, st, "aaaa03", "running", 2, now.Add(-10*time.Minute))
	a := decode[runsAnswer](t, get(t, h, "/api/runs"))
	states := map[string]string{}
	for _, r := range a.Runs {
		states[r.Run] = r.State
	}
	if len(a.Runs) != 3 || a.Runs[0].Run != "aaaa02" || states["aaaa01"] != "done" || states["aaaa02"] != "running" || states["aaaa03"] != "orphaned" {
		t.Fatalf("runs %+v", a.Runs)
	}
	if a.Runs[0].Points != 3 || a.Runs[0].Last.Accuracy != 0.58 {
		t.Fatalf("the running run's last point: %+v", a.Runs[0])
	}
	rec := decode[sgd.RunRecord](t, get(t, h, "/api/run/aaaa01"))
	if len(rec.Curve) != 5 || len(rec.WorkerStats) != 2 || rec.Model != "m-aaaa01" {
		t.Fatalf("run %+v", rec)
	}
	for url, code := range map[string]int{"/api/run/nope": 404, "/api/run/..%2fx": 400, "/api/run/a%2fb": 400, "/run/..%2f": 400,
		"/api/sweep/nope": 404, "/api/sweep/.x": 400, "/sweep/a%00": 400} {
		if r := get(t, h, url); r.StatusCode != code {
			t.Errorf("%s: %d, want %d", url, r.StatusCode, code)
		}
	}

	fakeSweep(t, st, "20261130-120000-abcd", 0, 5)
	s := decode[SweepView](t, get(t, h, "/api/sweep/20261130-120000-abcd"))
	if s.SweepRow.Trials != 5 || len(s.Trials) != 5 || s.Failed != 1 || !s.HasBest || s.Best != 0.54 || s.Mode != "max" {
		t.Fatalf("sweep %+v", s.SweepRow)
	}
	before := srv.Requests()
	fakeSweep(t, st, "20261130-120000-abcd", 5, 7)
	s = decode[SweepView](t, get(t, h, "/api/sweep/20261130-120000-abcd"))
	if len(s.Trials) != 7 || s.Best != 0.56 {
		t.Fatalf("after 2 more trials: %d trials, best %v", len(s.Trials), s.Best)
	}
	if g := srv.Requests().Gets - before.Gets; g != 2 {
		t.Fatalf("%d reads for 2 new trials", g)
	}
	if l := decode[sweepsAnswer](t, get(t, h, "/api/sweeps")); len(l.Sweeps) != 1 || l.Sweeps[0].Trials != 7 {
		t.Fatalf("sweeps %+v", l)
	}
}

// TestStages: a MapReduce job's stages and a sweep's jobs are shown
// together, and a sweep's job links to its sweep.
func TestStages(t *testing.T) {
	for id, want := range map[string]string{
		"mr-20261130-100000-abcd-map": "mr-20261130-100000-abcd", "mr-20261130-100000-abcd-reduce": "mr-20261130-100000-abcd",
		"tune-20261130-120000-aaaaaa-b3-12": "tune-20261130-120000-aaaaaa", "20261130-120000-aaaaaa": "",
		"tune-x-bq-1": "", "mr-x": "",
	} {
		if got := jobGroup(id); got != want {
			t.Errorf("jobGroup(%q) = %q, want %q", id, got, want)
		}
	}
	st := memblob.New()
	t0 := time.Now().Add(-time.Minute)
	for _, id := range []string{"mr-20261130-100000-abcd-map", "mr-20261130-100000-abcd-reduce", "tune-20261130-120000-aaaaaa-b1-1", "tune-20261130-120000-aaaaaa-b3-2"} {
		fakeJob(t, st, id, "t."+id[len(id)-3:], 4, t0)
		fakeStatuses(t, st, id, t0, 0, 4, 0)
		fakeDriver(t, st, id, job.StateDone, 4, 0)
	}
	fakeSweep(t, st, "20261130-120000-ffff", 0, 3)
	putJSON(t, st, "tune/20261130-120000-ffff/sweep.json", tune.Results{Prefix: "tune/20261130-120000-ffff", Metric: "accuracy", Jobs: "tune-20261130-120000-aaaaaa"})
	h := New(Options{Store: st}).Handler()
	v := decode[JobView](t, get(t, h, "/api/job/mr-20261130-100000-abcd-reduce"))
	if len(v.Stages) != 2 || v.Stages[0].ID != "mr-20261130-100000-abcd-map" || v.Stages[1].State != "done" || v.Sweep != "" || v.BytesRead != 0 {
		t.Fatalf("MapReduce stages %+v", v.Stages)
	}
	v = decode[JobView](t, get(t, h, "/api/job/tune-20261130-120000-aaaaaa-b3-2"))
	if len(v.Stages) != 2 || v.Sweep != "20261130-120000-ffff" {
		t.Fatalf("sweep job: stages %+v, sweep %q", v.Stages, v.Sweep)
	}
	s := decode[SweepView](t, get(t, h, "/api/sweep/20261130-120000-ffff"))
	if len(s.Jobs) != 2 || s.Jobs[1].ID != "tune-20261130-120000-aaaaaa-b3-2" {
		t.Fatalf("the sweep's jobs %+v", s.Jobs)
	}
	if v := decode[JobView](t, get(t, h, "/api/job/mr-20261130-100000-abcd-map")); len(v.Stages) != 2 {
		t.Fatalf("map stage: %+v", v.Stages)
	}
}
