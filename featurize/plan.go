package featurize

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/worker"
)

// PlanOptions adjust Plan.
type PlanOptions struct {
	// Sample is how many images to featurize to measure; 0 means 200.
	Sample int
	// Seed picks the sample.
	Seed uint64
}

// JobPlan is what a featurize job would take, projected from a sample of its
// input featurized on the executor's backend.
type JobPlan struct {
	Images  int   `json:"images"`  // images in the input
	Bytes   int64 `json:"bytes"`   // their bytes
	Classes int   `json:"classes"` // classes found
	Indexed int   `json:"indexed"` // archive ranges indexed to list the input (kept for the run)
	// The sample: images featurized, their bytes, and the job's wall time.
	SampleImages int           `json:"sample_images"`
	SampleBytes  int64         `json:"sample_bytes"`
	SampleFailed int           `json:"sample_failed"`
	SampleWall   time.Duration `json:"sample_wall"`
	// Measured: one worker's time per image (read, decode, crop, scale,
	// GIST) and per MB read, and a call's fixed time (invocation, setup,
	// writing its shard).
	PerImage     time.Duration `json:"per_image"`
	PerMB        time.Duration `json:"per_mb"`
	CallOverhead time.Duration `json:"call_overhead"`
	// JobOverhead is the sample job's wall time beyond its longest call:
	// submitting, starting workers, collecting results.
	JobOverhead time.Duration `json:"job_overhead"`
	// The projected job: calls of ImagesPerCall images (chosen so a call
	// takes at most a quarter of CallLimit, and every worker gets one),
	// Parallelism at once.
	Parallelism   int           `json:"parallelism"`
	CallLimit     time.Duration `json:"call_limit"` // the backend's (0: none)
	ImagesPerCall int           `json:"images_per_call"`
	Calls         int           `json:"calls"`
	CallTime      time.Duration `json:"call_time"`
	Wall          time.Duration `json:"wall"`
	// Billing is the projected bill on a backend that bills (AWS Lambda);
	// SampleBilling the sample's own.
	Billing       *worker.Billing `json:"billing,omitempty"`
	SampleBilling *worker.Billing `json:"sample_billing,omitempty"`
}

// WallFor projects the wall time of a run with images per call: the job's
// overhead, then waves of Parallelism calls of CallOverhead plus per
// images' time.
func (p *JobPlan) WallFor(per int) time.Duration {
	if per <= 0 || p.Images == 0 {
		return 0
	}
	calls := (p.Images + per - 1) / per
	waves := (calls + p.Parallelism - 1) / max(p.Parallelism, 1)
	return p.JobOverhead + time.Duration(waves)*(p.CallOverhead+time.Duration(per)*p.PerImage)
}

// String is the plan as a person reads it.
func (p *JobPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "input: %d images, %.1f MB, %d classes", p.Images, float64(p.Bytes)/1e6, p.Classes)
	if p.Indexed > 0 {
		fmt.Fprintf(&b, " (%d archive ranges indexed now, kept for the run)", p.Indexed)
	}
	fmt.Fprintf(&b, "\nsample: %d images (%.1f MB, %d failed) in %v\n", p.SampleImages, float64(p.SampleBytes)/1e6, p.SampleFailed, p.SampleWall.Round(time.Millisecond))
	fmt.Fprintf(&b, "measured: %v an image, %v per MB read, %v fixed per call, %v per job\n", p.PerImage.Round(time.Microsecond), p.PerMB.Round(time.Microsecond), p.CallOverhead.Round(time.Microsecond), p.JobOverhead.Round(time.Millisecond))
	limit := "no call limit"
	if p.CallLimit > 0 {
		limit = fmt.Sprintf("call limit %v", p.CallLimit)
	}
	fmt.Fprintf(&b, "projected: %d calls of %d images (%v each; %s) on %d workers: %v wall", p.Calls, p.ImagesPerCall, p.CallTime.Round(time.Millisecond), limit, p.Parallelism, p.Wall.Round(time.Millisecond))
	if p.Billing != nil {
		fmt.Fprintf(&b, ", %.1f GB-s at %d MB, $%.4f", p.Billing.GBSeconds, p.Billing.MemoryMB, p.Billing.USD)
	}
	return b.String()
}

// ErrPlan reports a plan that cannot be made.
var ErrPlan = errors.New("featurize: cannot plan")

// Plan featurizes a seeded sample of job's input on ex (into "plan/" under
// the output, deleted after) and projects the whole job: its wall time at
// the executor's parallelism, the images per call that keep a call well
// inside the backend's call limit, and, on a backend that bills, its cost.
// Archives are indexed as Run would (the index is kept for it).
func Plan(ctx context.Context, ex *wren.Executor, job Options, po PlanOptions) (*JobPlan, error) {
	job, gopts, in, out, err := open(ctx, job)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	defer out.Close()
	gopts = gopts.withDefaults()
	if po.Sample <= 0 {
		po.Sample = 200
	}
	il, err := listInput(ctx, ex, in, out, job)
	if err != nil {
		return nil, err
	}
	p := &JobPlan{Images: len(il.files), Classes: len(il.classes), Indexed: il.indexed, Parallelism: max(ex.Parallelism(), 1)}
	for _, s := range il.sizes {
		p.Bytes += s
	}
	if p.Images == 0 {
		return p, fmt.Errorf("%w: no images under %s", ErrPlan, in.URL())
	}
	// The sample, spread over one wave of calls.
	pick := rand.New(rand.NewPCG(po.Seed, 0x91a4)).Perm(p.Images)[:min(po.Sample, p.Images)]
	slices.Sort(pick)
	per := (len(pick) + p.Parallelism - 1) / p.Parallelism
	prefix := fmt.Sprintf("plan/%d/", time.Now().UnixNano())
	var tasks []shardTask
	for lo := 0; lo < len(pick); lo += per {
		t := shardTask{Input: in.URL(), Output: out.URL(), Prefix: prefix, Shard: len(tasks), Size: job.Size, GIST: gopts, MaxPixels: job.MaxPixels, MaxBytes: job.MaxBytes}
		for _, i := range pick[lo:min(lo+per, len(pick))] {
			t.Files = append(t.Files, il.files[i])
			t.Labels = append(t.Labels, il.labels[i])
			if il.spans != nil {
				t.Spans = append(t.Spans, il.spans[i])
			}
			p.SampleBytes += il.sizes[i]
		}
		tasks = append(tasks, t)
	}
	p.SampleImages = len(pick)
	defer blob.DeletePrefix(context.WithoutCancel(ctx), out, prefix)
	start := time.Now()
	j, err := featurizeShard.Map(ctx, ex, tasks, job.MapOptions...)
	if err != nil {
		return nil, err
	}
	defer j.Clean(context.WithoutCancel(ctx))
	results, err := j.Results(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: the sample's job: %v", ErrPlan, err)
	}
	p.SampleWall = time.Since(start)
	var first *Failure
	for _, r := range results {
		p.SampleFailed += len(r.Failed)
		if first == nil && len(r.Failed) > 0 {
			first = &r.Failed[0]
		}
	}
	if p.SampleFailed >= p.SampleImages && first != nil {
		// Timings of failures are no plan for featurizing images.
		return nil, fmt.Errorf("%w: none of the %d sampled images could be featurized (first: %s: %s)", ErrPlan, p.SampleImages, first.File, first.Reason)
	}
	st := j.Stats()
	p.SampleBilling = st.Billing
	var compute, longest time.Duration
	var fixed []time.Duration
	for _, cs := range st.PerCall {
		compute += cs.Compute
		fixed = append(fixed, cs.Start+cs.Setup+cs.Output)
		longest = max(longest, cs.Start+cs.Setup+cs.Compute+cs.Output)
	}
	p.JobOverhead = max(0, p.SampleWall-longest)
	if len(fixed) == 0 {
		return nil, fmt.Errorf("%w: the sample's calls reported no timings", ErrPlan)
	}
	slices.Sort(fixed)
	p.CallOverhead = fixed[len(fixed)/2]
	p.PerImage = compute / time.Duration(p.SampleImages)
	if p.SampleBytes > 0 {
		p.PerMB = time.Duration(float64(compute) / (float64(p.SampleBytes) / 1e6))
	}
	// Images per call: a quarter of the call limit (a minute where there
	// is none), and enough calls for every worker.
	if p.CallLimit, err = ex.CallLimit(ctx, job.MapOptions...); err != nil {
		p.CallLimit = 0
	}
	target := time.Minute
	if p.CallLimit > 0 {
		target = p.CallLimit / 4
	}
	p.ImagesPerCall = 1
	if p.PerImage > 0 {
		p.ImagesPerCall = max(1, int((target-p.CallOverhead)/p.PerImage))
	}
	p.ImagesPerCall = min(p.ImagesPerCall, (p.Images+p.Parallelism-1)/p.Parallelism)
	p.Calls = (p.Images + p.ImagesPerCall - 1) / p.ImagesPerCall
	p.CallTime = p.CallOverhead + time.Duration(p.ImagesPerCall)*p.PerImage
	p.Wall = p.WallFor(p.ImagesPerCall)
	if b, ok := ex.Backend().(worker.Biller); ok {
		p.Billing = b.Bill(worker.Usage{
			Invocations: int64(p.Calls), Billed: time.Duration(p.Calls) * p.CallTime.Round(time.Millisecond), Calls: p.Calls,
			Compute: time.Duration(p.Calls*p.ImagesPerCall) * p.PerImage, Fixed: time.Duration(p.Calls) * p.CallOverhead,
		})
	}
	return p, nil
}
