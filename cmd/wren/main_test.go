package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

// capture runs the command and returns what it printed on stdout.
func capture(t *testing.T, args ...string) string {
	t.Helper()
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	err := run(context.Background(), args)
	w.Close()
	os.Stdout = old
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatalf("wren %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
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
	ls := capture(t, "jobs", "ls", "-store", dir)
	if !strings.Contains(ls, "job-one") || !strings.Contains(ls, "bench.spin") {
		t.Fatalf("jobs ls:\n%s", ls)
	}
	show := capture(t, "jobs", "show", "-store", dir, "job-one")
	if !strings.Contains(show, "ok:3") {
		t.Fatalf("jobs show:\n%s", show)
	}
	clean := capture(t, "jobs", "clean", "-store", dir, "job-one")
	if !strings.Contains(clean, "deleted job job-one") {
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
