package featurize

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
)

// TestPlan: a plan featurizes a seeded sample, leaves nothing of it in the
// output, measures, and projects the whole job consistently: the images
// per call keep a call within a quarter of the call limit (or are 1) and
// give every worker a call; the archives' index it builds serves the run.
func TestPlan(t *testing.T) {
	ctx := context.Background()
	f := newArchiveFixture(t) // 12 images, 3 classes
	o, err := SynthesizeArchive(filepath.Join(f.root, "train"), LayoutILSVRCTrain, 3, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	o.Output, o.Size = filepath.Join(f.root, "plan-out"), 32
	p, err := Plan(ctx, f.ex, o, PlanOptions{Sample: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", p)
	if p.Images != 12 || p.Classes != 3 || p.SampleImages != 5 || p.SampleFailed != 0 || p.Indexed != 3 || p.Bytes <= p.SampleBytes || p.SampleBytes <= 0 {
		t.Fatalf("plan %+v", p)
	}
	if p.PerImage <= 0 || p.PerMB <= 0 || p.CallOverhead < 0 || p.Parallelism != 2 || p.Billing != nil {
		t.Fatalf("measured %+v", p)
	}
	if p.ImagesPerCall < 1 || p.ImagesPerCall > 6 || p.Calls != (12+p.ImagesPerCall-1)/p.ImagesPerCall || p.Wall != p.WallFor(p.ImagesPerCall) || p.Wall <= 0 {
		t.Fatalf("projection %+v", p)
	}
	st, _ := wren.OpenStore(ctx, o.Output)
	defer st.Close()
	if keys, _ := blob.Keys(ctx, st, "plan/"); len(keys) != 0 {
		t.Fatalf("the sample left %v", keys)
	}
	if keys, _ := blob.Keys(ctx, st, "shard-"); len(keys) != 0 {
		t.Fatalf("a plan wrote shards: %v", keys)
	}
	// The run after it uses the plan's images per call and its index.
	o.ImagesPerCall = p.ImagesPerCall
	rep, err := Run(ctx, f.ex, o)
	if err != nil || rep.Indexed != 0 || rep.Images != 12 || rep.Shards != p.Calls {
		t.Fatalf("run after the plan: %+v, %v", rep, err)
	}

	// A call limit: calls are sized to a quarter of it.
	o.MapOptions = []wren.MapOption{wren.WithTimeout(2 * time.Second)}
	o.Output = filepath.Join(f.root, "plan-limited")
	p, err = Plan(ctx, f.ex, o, PlanOptions{Sample: 100})
	if err != nil {
		t.Fatal(err)
	}
	if p.SampleImages != 12 || p.CallLimit != 2*time.Second {
		t.Fatalf("limited plan %+v", p)
	}
	if p.ImagesPerCall > 1 && p.CallTime > p.CallLimit/4 {
		t.Fatalf("calls of %d images take %v, over a quarter of the %v limit", p.ImagesPerCall, p.CallTime, p.CallLimit)
	}

	// A sample of one image: one call, the projection still whole.
	o.MapOptions, o.Output = nil, filepath.Join(f.root, "plan-one")
	if p, err = Plan(ctx, f.ex, o, PlanOptions{Sample: 1}); err != nil || p.SampleImages != 1 || p.Calls < 1 || p.PerImage <= 0 {
		t.Fatalf("a sample of 1: %+v, %v", p, err)
	}
	// Nothing to plan, and bad settings.
	empty := filepath.Join(f.root, "empty")
	os.MkdirAll(empty, 0o755)
	if _, err := Plan(ctx, f.ex, Options{Input: empty, Output: filepath.Join(f.root, "x")}, PlanOptions{}); !errors.Is(err, ErrPlan) {
		t.Fatalf("an empty input: %v", err)
	}
	if _, err := Plan(ctx, f.ex, Options{Input: empty, Output: filepath.Join(f.root, "x"), Size: 7}, PlanOptions{}); err == nil || !strings.Contains(err.Error(), "size") {
		t.Fatalf("size 7: %v", err)
	}
}

// TestPlanNothingDecodes: a sample in which every image fails is no plan
// (it projected "36m per MB read" from the failures' timings); the error
// names the first failure.
func TestPlanNothingDecodes(t *testing.T) {
	ctx := context.Background()
	f := newArchiveFixture(t)
	in := filepath.Join(f.root, "broken")
	if err := os.MkdirAll(filepath.Join(in, "cls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.jpg", "b.png", "c.jpg"} {
		if err := os.WriteFile(filepath.Join(in, "cls", name), []byte("not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Plan(ctx, f.ex, Options{Input: in, Output: filepath.Join(f.root, "broken-out"), Size: 32}, PlanOptions{Sample: 3})
	if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "none of the 3 sampled images") || !strings.Contains(err.Error(), "cls/") {
		t.Fatalf("a plan from 3 broken images: %v", err)
	}
}
