package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	jobpkg "github.com/wrenml/wren/job"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

// capture runs the command and returns what it printed on stdout.
func capture(t *testing.T, args ...string) string {
	t.Helper()
	out, err := captureErr(args...)
	if err != nil {
		t.Fatalf("wren %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// captureErr runs the command and returns what it printed on stdout, and
// its error.
func captureErr(args ...string) (string, error) {
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	err := run(context.Background(), args)
	w.Close()
	os.Stdout = old
	out, _ := io.ReadAll(r)
	return string(out), err
}

// shoutJob runs test.shout over inputs as job id in a store in dir.
func shoutJob(t *testing.T, dir, id string, inputs ...string) {
	t.Helper()
	ctx := context.Background()
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: dir, Parallelism: 1, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	j, err := shout.Map(ctx, ex, inputs, wren.WithJobID(id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Results(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBenchMapJSON(t *testing.T) {
	out := capture(t, "bench", "map", "-tasks", "20", "-task-ms", "2", "-parallel", "2")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	for _, k := range []string{"tasks", "wren_s", "pool_s", "efficiency", "overhead_ms_per_task"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing in %s", k, out)
		}
	}
	if m["tasks"].(float64) != 20 || m["wren_s"].(float64) <= 0 || m["pool_s"].(float64) <= 0 {
		t.Fatalf("implausible: %s", out)
	}
}

// TestBenchLambdaJSON: wren bench lambda reports the binaries a job ships
// and montecarlo-pi on a cold and a warm emulator container, then the
// runtime's invocation rate.
func TestBenchLambdaJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four programs and runs Lambda emulators")
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, os.Getenv(k)) // the bench sets them; restored after
	}
	out := capture(t, "bench", "lambda", "-emulators", "1", "-calls", "20")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got %q", out)
	}
	var bin, run map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &bin); err != nil {
		t.Fatalf("not JSON: %q", lines[0])
	}
	if err := json.Unmarshal([]byte(lines[1]), &run); err != nil {
		t.Fatalf("not JSON: %q", lines[1])
	}
	for _, k := range []string{"minimal_bytes", "montecarlo_pi_bytes", "montecarlo_pi_stripped_bytes", "runtime_bytes", "wren_cli_bytes",
		"raw_put_ms", "raw_get_ms", "upload_ms", "fetch_ms", "montecarlo_pi_cold_s", "montecarlo_pi_warm_s"} {
		if v, ok := bin[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v in %s", k, bin[k], lines[0])
		}
	}
	// The root links neither plots nor S3; stripping saves something.
	if bin["minimal_bytes"].(float64) >= bin["montecarlo_pi_bytes"].(float64)/2 || bin["montecarlo_pi_stripped_bytes"].(float64) >= bin["montecarlo_pi_bytes"].(float64) {
		t.Errorf("implausible sizes: %s", lines[0])
	}
	if run["calls"].(float64) != 20 || run["invocations_per_s"].(float64) <= 0 {
		t.Errorf("implausible: %s", lines[1])
	}
}

func TestBenchStoreJSON(t *testing.T) {
	out := capture(t, "bench", "store", "-store", t.TempDir(), "-size", "1MiB", "-reps", "2")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	for _, k := range []string{"put_mb_s", "get_mb_s", "raw_write_mb_s", "raw_read_mb_s", "put_vs_raw", "get_vs_raw"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v in %s", k, m[k], out)
		}
	}
}

func TestJobsCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: dir, Backend: wren.InProcess(2), Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	job, err := Spin.Map(ctx, ex, []time.Duration{1, 1, 1}, wren.WithJobID("job-one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Results(ctx); err != nil {
		t.Fatal(err)
	}
	// A second job whose driver died mid-way: its record says running, its
	// last heartbeat is old, a call has no status.
	job2, err := Spin.Map(ctx, ex, []time.Duration{1, 1, 1}, wren.WithJobID("job-two"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job2.Results(ctx); err != nil {
		t.Fatal(err)
	}
	dead := jobpkg.Driver{Epoch: 0, Host: "elsewhere", PID: 1, State: "running", Beat: time.Now().Add(-time.Hour)}
	b, _ := json.Marshal(dead)
	blob.PutBytes(ctx, ex.Store(), jobpkg.DriverKey("job-two", 0), b, blob.PutOptions{})
	ex.Store().Delete(ctx, jobpkg.StatusKey("job-two", 1))
	ls := capture(t, "jobs", "ls", "-store", dir)
	if !strings.Contains(ls, "job-one") || !strings.Contains(ls, "bench.spin") || !strings.Contains(ls, "STATE") {
		t.Fatalf("jobs ls:\n%s", ls)
	}
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "job-one" && (f[3] != "3" || f[4] != "done"):
			t.Fatalf("job-one: %q", line)
		case len(f) > 0 && f[0] == "job-two" && (f[3] != "2" || f[4] != "orphaned"):
			t.Fatalf("job-two: %q", line)
		}
	}
	if show := capture(t, "jobs", "show", "-store", dir, "job-two"); !strings.Contains(show, "orphaned") || !strings.Contains(show, `task.Attach(ctx, ex, "job-two")`) {
		t.Fatalf("jobs show of an orphaned job:\n%s", show)
	}
	png := filepath.Join(t.TempDir(), "tl.png")
	show := capture(t, "jobs", "show", "-store", dir, "-timeline", png, "job-one")
	if !strings.Contains(show, "ok:3") || !strings.Contains(show, "compute") || !strings.Contains(show, "3 done") {
		t.Fatalf("jobs show:\n%s", show)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Fatalf("timeline: %v", err)
	}
	clean := capture(t, "jobs", "clean", "-store", dir, "job-one", "job-two")
	if !strings.Contains(clean, "deleted job job-one") || !strings.Contains(clean, "deleted job job-two") {
		t.Fatalf("jobs clean: %s", clean)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "jobs")); len(left) != 0 {
		t.Fatalf("left after clean: %v", left)
	}
	if err := run(ctx, []string{"jobs", "clean", "-store", dir, "../x"}); err == nil {
		t.Fatal("clean of an escaping job ID succeeded")
	}
	if err := run(ctx, []string{"bench", "nope"}); err == nil {
		t.Fatal("unknown command succeeded")
	}
}

func TestBenchPSJSON(t *testing.T) {
	out := capture(t, "bench", "ps", "-shards", "1,2", "-seconds", "0.2", "-model", "65536", "-latency-pushes", "50", "-sparse-span", "8192", "-sparse-pairs", "256")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per shard count, got %q", out)
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["shards"].(float64) != float64(i+1) {
			t.Fatalf("line %d: shards = %v", i, m["shards"])
		}
		dense, ok := m["dense_push_floats_per_s"].(map[string]any)
		if !ok || len(dense) != 3 || dense["16384"].(float64) <= 0 {
			t.Fatalf("dense_push_floats_per_s = %v", m["dense_push_floats_per_s"])
		}
		for _, k := range []string{"sparse_push_pairs_per_s", "pull_floats_per_s", "raw_getset_floats_per_s", "raw_get_floats_per_s", "push_p50_us", "push_p99_us"} {
			if v, ok := m[k].(float64); !ok || v <= 0 {
				t.Errorf("%s = %v", k, m[k])
			}
		}
	}
}

func TestGistCommand(t *testing.T) {
	in := "../../featurize/testdata/gist/inputs/rgb32/brick.ppm"
	out := capture(t, "gist", "-raw", in)
	fields := strings.Split(strings.TrimSpace(out), ",")
	if len(fields) != 961 || fields[0] != in {
		t.Fatalf("want file and 960 values, got %d fields", len(fields))
	}
	// Same pixels as the LEAR reference: the first value agrees to 1e-5.
	if !strings.HasPrefix(fields[1], "0.02810") {
		t.Fatalf("dim0 = %s, reference 0.0281070601", fields[1])
	}
	gray := capture(t, "gist", "-gray", "-size", "64", "../../featurize/testdata/images/dev/coins.jpg")
	if n := len(strings.Split(strings.TrimSpace(gray), ",")); n != 513 {
		t.Fatalf("gray: %d fields, want 513", n)
	}
	if err := run(context.Background(), []string{"gist", "main.go"}); err == nil {
		t.Fatal("a Go file was featurized")
	}
}

func TestBenchGistJSON(t *testing.T) {
	out := capture(t, "bench", "gist", "-seconds", "0.1", "-images", "8", "-reps", "1", "-size", "32")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	rates, ok := m["images_per_s"].(map[string]any)
	if !ok || len(rates) != 3 || rates["32"].(float64) <= 0 {
		t.Fatalf("images_per_s = %v", m["images_per_s"])
	}
	for _, k := range []string{"parallel_images_per_s", "parallel_efficiency", "cores"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v", k, m[k])
		}
	}
}

// shout prints its input, for wren jobs logs.
var shout = wren.Register("test.shout", func(ctx context.Context, s string) (string, error) {
	fmt.Println("shouting", s)
	return s, nil
})

func TestJobsLogs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	shoutJob(t, dir, "loud", "hello", "world")
	all := capture(t, "jobs", "logs", "-store", dir, "loud")
	if !strings.Contains(all, "=== call 0, attempt 0\nshouting hello") || !strings.Contains(all, "=== call 1, attempt 0\nshouting world") {
		t.Fatalf("jobs logs:\n%s", all)
	}
	one := capture(t, "jobs", "logs", "-store", dir, "loud", "1")
	if strings.Contains(one, "hello") || !strings.Contains(one, "shouting world") {
		t.Fatalf("jobs logs loud 1:\n%s", one)
	}
	// A job that is not there, or a call it does not have, is an error (it
	// said "no output kept ... the calls printed nothing").
	for _, args := range [][]string{{"quiet"}, {"loud", "2"}, {"quiet", "0"}} {
		err := run(ctx, append([]string{"jobs", "logs", "-store", dir}, args...))
		if err == nil || !strings.Contains(err.Error(), map[bool]string{true: "no job quiet", false: "call \"2\""}[args[0] == "quiet"]) {
			t.Errorf("jobs logs %v: %v", args, err)
		}
	}
}

func TestBenchTuneJSON(t *testing.T) {
	out := capture(t, "bench", "tune", "-trials", "10", "-trial-ms", "5")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	for _, k := range []string{"trials", "wall_s", "ideal_s", "efficiency", "tpe_wall_s", "tpe_efficiency"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v", k, m[k])
		}
	}
	if m["trials"].(float64) != 10 || m["failed"].(float64) != 0 {
		t.Fatalf("%s", out)
	}
}

// TestDeployByName: wren deploy runs the deploy verb of the backend it is
// given, the configured one, or the one backend that has one; a backend
// without one says so.
func TestDeployByName(t *testing.T) {
	t.Setenv("WREN_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	os.WriteFile(os.Getenv("WREN_CONFIG"), nil, 0o644)
	for _, args := range [][]string{
		{"deploy", "-print-policy", "-store", "s3://my-bucket/wren"},
		{"deploy", "-backend", "lambda", "-print-policy", "-store", "s3://my-bucket/wren"},
	} {
		out := capture(t, args...)
		if !strings.Contains(out, `"arn:aws:s3:::my-bucket/wren/*"`) {
			t.Fatalf("wren %v:\n%s", args, out)
		}
	}
	if err := run(context.Background(), []string{"deploy", "-backend", "local", "-print-policy"}); err == nil || !strings.Contains(err.Error(), "nothing to deploy") {
		t.Fatalf("deploy of the local backend: %v", err)
	}
	if err := run(context.Background(), []string{"deploy", "-backend", "nope"}); err == nil || !strings.Contains(err.Error(), `no backend "nope"`) {
		t.Fatalf("deploy of an unknown backend: %v", err)
	}
	if err := run(context.Background(), []string{"deploy", "-print-policy", "-store", "./.wren"}); err == nil || !strings.Contains(err.Error(), "s3://bucket/prefix") {
		t.Fatalf("a policy for a local store: %v", err)
	}
}

// TestJobsHostileRecords: a store's job records are input like any other:
// a damaged manifest does not hide the other jobs from wren jobs ls (it
// failed the whole listing), and a manifest claiming 10^12 calls is shown
// without allocating for each (wren jobs show ran out of memory).
func TestJobsHostileRecords(t *testing.T) {
	dir := t.TempDir()
	shoutJob(t, dir, "real", "a")
	for id, manifest := range map[string]string{
		"damaged": "garbage{",
		"huge":    `{"job":"huge","task":"x","calls":1000000000000}`,
	} {
		os.MkdirAll(filepath.Join(dir, "jobs", id), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "jobs", id, "manifest.json"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := captureErr("jobs", "ls", "-store", dir)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 jobs unreadable") {
		t.Errorf("jobs ls over a damaged manifest: %v", err)
	}
	if !regexp.MustCompile(`(?m)^real +test\.shout +1 +1 +done`).MatchString(out) || !regexp.MustCompile(`(?m)^damaged .*unreadable`).MatchString(out) || !strings.Contains(out, "1000000000000") {
		t.Errorf("jobs ls:\n%s", out)
	}
	got := capture(t, "jobs", "show", "-store", dir, "huge")
	if !strings.Contains(got, "1000000000000 calls, 0 done") {
		t.Errorf("jobs show huge:\n%s", got)
	}
}
