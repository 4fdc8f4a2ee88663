package featurize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
)

// Options describe a featurization of an image tree or of image archives.
type Options struct {
	// Input is the store URL of the tree (blob.Open, or a directory path):
	// <class>/<image> keys below it. Files directly below it have no class
	// and are skipped. With an archive Layout, the *.tar objects below it.
	Input string
	// Layout is how Input holds the images: LayoutTree (the default),
	// LayoutILSVRCTrain, LayoutILSVRCVal, LayoutWebDataset, or LayoutAuto
	// (archives, the layout told from the first).
	Layout string
	// Archives, with an archive layout, are the keys of the archives under
	// Input; nil means every *.tar object under it.
	Archives []string
	// Labels (LayoutILSVRCVal) is the key under Input of the validation
	// labels: LOC_val_solution.csv, or the devkit's
	// ILSVRC2012_validation_ground_truth.txt (with Synsets giving the IDs).
	Labels string
	// Synsets is the key under Input of a synset table: LOC_synset_mapping.txt
	// ("<synset> <words>" lines; the class list is its synsets, sorted, and
	// classes.txt gets their words), or "<ILSVRC2012_ID> <synset> [words]"
	// lines (the devkit's table as text, needed by its ground truth).
	Synsets string
	// Index is the store URL the archives' indexes are kept in ("index/"
	// below it); "" means Output. Point a second run (another size, say) at
	// the first's output to use its indexes.
	Index string
	// Output is the store URL (or directory) the shards are written to.
	Output string
	// Size is the side images are cropped and scaled to; 0 means 256.
	Size int
	// ImagesPerCall is the number of images per call and shard; 0 means 200.
	ImagesPerCall int
	// GIST selects the descriptor (Size is taken from the field above).
	GIST GISTOptions
	// MaxPixels caps an image's decoded size; 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxBytes caps an image file's size; 0 means 64 MiB.
	MaxBytes int64
	// MapOptions adjust the map (progress, timeouts, ...).
	MapOptions []wren.MapOption
	// KeepJob keeps the wren job's objects (inputs, outputs, statuses) in the
	// executor's store after the run; by default they are deleted once the
	// results are read (the shards hold everything).
	KeepJob bool
	// OnJob, when set, receives the wren job once it is submitted, for
	// progress, stats or a timeline plot.
	OnJob func(*wren.Job[ShardResult])
}

// Failure is an image that could not be featurized, and why.
type Failure struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// Report summarises a run.
type Report struct {
	Images    int       `json:"images"`   // images featurized (this run and resumed shards)
	Failed    []Failure `json:"failed"`   // images that could not be featurized
	Shards    int       `json:"shards"`   // shards in the output
	Resumed   int       `json:"resumed"`  // shards found complete and skipped
	Classes   []string  `json:"classes"`  // class names in label order
	Dim       int       `json:"dim"`      // descriptor length
	JobID     string    `json:"job"`      // the wren job, if any call ran
	CallFails []string  `json:"call_err"` // calls that failed as a whole (after retries)
	Indexed   int       `json:"indexed"`  // archive ranges this run indexed (the rest came from the kept index)
}

// shardTask is the input of one call.
type shardTask struct {
	Input, Output string
	Prefix        string `json:",omitempty"` // of the shard's objects in Output (Plan's samples)
	Shard         int
	Files         []string
	Spans         []span `json:",omitempty"` // archive inputs: where each file's bytes are
	Labels        []int32
	Size          int
	GIST          GISTOptions
	MaxPixels     int64
	MaxBytes      int64
}

// ShardResult is what a call returns (and stores as shard-NNNNN.json).
type ShardResult struct {
	Shard  int       `json:"shard"`
	Images int       `json:"images"`
	Dim    int       `json:"dim"`
	Failed []Failure `json:"failed"`
	// FilesSHA256 is the hash of the shard's file list (FilesHash): a
	// resumed run checks it before it trusts the shard.
	FilesSHA256 string `json:"files_sha256"`
}

// FilesHash returns the hex SHA-256 of a list of keys, one a line.
func FilesHash(files []string) string {
	h := sha256.New()
	for _, f := range files {
		io.WriteString(h, f)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RunKey is the object in the output that records what the shards under
// it were made from; a rerun into the same output resumes only when it
// matches.
const RunKey = "featurize.json"

// runRecord is what RunKey holds.
type runRecord struct {
	Input         string      `json:"input"` // informative: the tree may move
	Layout        string      `json:"layout,omitempty"`
	Files         int         `json:"files"`
	FilesSHA256   string      `json:"files_sha256"`
	Labels        string      `json:"labels_sha256,omitempty"`
	Classes       []string    `json:"classes"`
	Size          int         `json:"size"`
	ImagesPerCall int         `json:"images_per_call"`
	GIST          GISTOptions `json:"gist"`
	Dim           int         `json:"dim"`
	MaxPixels     int64       `json:"max_pixels"`
	MaxBytes      int64       `json:"max_bytes"`
}

// ErrMismatch reports an output made from other images or options than the
// run asked to resume.
var ErrMismatch = errors.New("featurize: the output was made differently")

// diff names the first setting in which a run differs from the one that
// made the output, or returns "".
func (r runRecord) diff(now runRecord) string {
	switch {
	case r.Layout != now.Layout:
		return fmt.Sprintf("the layout (%q then, %q now)", r.Layout, now.Layout)
	case r.Files != now.Files || r.FilesSHA256 != now.FilesSHA256:
		return fmt.Sprintf("the input tree (%d files then, %d now; file lists differ)", r.Files, now.Files)
	case r.Labels != "" && r.Labels != now.Labels:
		return "the labels (the same files have other classes)"
	case !slices.Equal(r.Classes, now.Classes):
		return fmt.Sprintf("the classes (%d then, %d now)", len(r.Classes), len(now.Classes))
	case r.ImagesPerCall != now.ImagesPerCall:
		return fmt.Sprintf("ImagesPerCall (%d then, %d now)", r.ImagesPerCall, now.ImagesPerCall)
	case r.Size != now.Size:
		return fmt.Sprintf("Size (%d then, %d now)", r.Size, now.Size)
	case r.GIST.Gray != now.GIST.Gray || r.GIST.Blocks != now.GIST.Blocks || !slices.Equal(r.GIST.Orientations, now.GIST.Orientations) || r.Dim != now.Dim:
		return fmt.Sprintf("the GIST options (%+v then, %+v now)", r.GIST, now.GIST)
	case r.MaxPixels != now.MaxPixels:
		return fmt.Sprintf("MaxPixels (%d then, %d now)", r.MaxPixels, now.MaxPixels)
	case r.MaxBytes != now.MaxBytes:
		return fmt.Sprintf("MaxBytes (%d then, %d now)", r.MaxBytes, now.MaxBytes)
	}
	return ""
}

// featurizeShard is the task: featurize a group of images into one shard.
var featurizeShard = wren.Register("featurize.shard", runShard)

// openStore opens a store by URL or directory once per worker process
// (blob.Shared).
func openStore(ctx context.Context, u string) (blob.Store, error) { return blob.Shared(ctx, u) }

func runShard(ctx context.Context, t shardTask) (ShardResult, error) {
	res := ShardResult{Shard: t.Shard}
	in, err := openStore(ctx, t.Input)
	if err != nil {
		return res, err
	}
	out, err := openStore(ctx, t.Output)
	if err != nil {
		return res, err
	}
	opts := t.GIST
	opts.Size = 0
	g, err := getGister(t.Size, opts)
	if err != nil {
		return res, err
	}
	defer putGister(g)
	res.Dim = g.Dim()
	var feats []float32
	var labels []int32
	var files []string
	desc := make([]float32, 0, g.Dim())
	for i, key := range t.Files {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var img image.Image
		if t.Spans != nil {
			img, err = loadSpan(ctx, in, t.Spans[i], t.MaxBytes, t.MaxPixels)
		} else {
			img, err = loadImage(ctx, in, key, t.MaxBytes, t.MaxPixels)
		}
		if err != nil {
			res.Failed = append(res.Failed, Failure{File: key, Reason: err.Error()})
			continue
		}
		desc = g.Compute(desc, Prepare(img, t.Size))
		feats = append(feats, desc...)
		labels = append(labels, t.Labels[i])
		files = append(files, key)
	}
	res.Images = len(files)
	res.FilesSHA256 = FilesHash(t.Files)
	if res.Failed == nil {
		res.Failed = []Failure{}
	}
	if files == nil {
		files = []string{} // an empty list, still written
	}
	// The shard's objects, its .json (res) last: complete or absent.
	if err := dataset.WriteShard(ctx, out, t.Prefix, t.Shard, feats, g.Dim(), labels, files, res); err != nil {
		return res, err
	}
	return res, nil
}

// loadImage reads and decodes one image, refusing files over maxBytes.
func loadImage(ctx context.Context, st blob.Store, key string, maxBytes, maxPixels int64) (image.Image, error) {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	r, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrTooManyPixels, maxBytes)
	}
	return Decode(data, maxPixels)
}

// open checks a job's size and GIST options (Size 0 means 256) and opens
// its input and output stores: what Run and Plan share. gopts has no Size.
func open(ctx context.Context, job Options) (Options, GISTOptions, blob.Store, blob.Store, error) {
	if job.Input == "" || job.Output == "" { // "" would open the working directory
		return job, GISTOptions{}, nil, nil, fmt.Errorf("featurize: Options.Input %q and Output %q: want a store URL or directory for each", job.Input, job.Output)
	}
	if job.Size == 0 {
		job.Size = 256
	}
	if job.Size < MinSide || job.Size%2 != 0 {
		return job, GISTOptions{}, nil, nil, fmt.Errorf("featurize: size %d: want an even size >= %d", job.Size, MinSide)
	}
	gopts := job.GIST
	gopts.Size = 0
	if _, err := NewGister(job.Size, gopts); err != nil {
		return job, gopts, nil, nil, err
	}
	in, err := wren.OpenStore(ctx, job.Input)
	if err != nil {
		return job, gopts, nil, nil, fmt.Errorf("featurize: input: %w", err)
	}
	out, err := wren.OpenStore(ctx, job.Output)
	if err != nil {
		in.Close()
		return job, gopts, nil, nil, fmt.Errorf("featurize: output: %w", err)
	}
	return job, gopts, in, out, nil
}

// loadSpan reads and decodes an image stored in an archive.
func loadSpan(ctx context.Context, st blob.Store, sp span, maxBytes, maxPixels int64) (image.Image, error) {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	if sp.Size > maxBytes {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrTooManyPixels, maxBytes)
	}
	r, err := st.Range(ctx, sp.Archive, sp.Off, sp.Size)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(data)) != sp.Size {
		return nil, fmt.Errorf("read: %d of %d bytes (the archive changed since it was indexed?)", len(data), sp.Size)
	}
	return Decode(data, maxPixels)
}

// Run featurizes the tree with the executor: the tree is listed once,
// images are grouped into calls of ImagesPerCall, and each call writes one
// shard. Shards already complete in the output are skipped, so a rerun
// resumes. Images that cannot be featurized are reported in Report.Failed,
// never fatal; an error is returned only when the job cannot run.
func Run(ctx context.Context, ex *wren.Executor, job Options) (*Report, error) {
	if job.ImagesPerCall <= 0 {
		job.ImagesPerCall = 200
	}
	job, gopts, in, out, err := open(ctx, job)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	defer out.Close()
	il, err := listInput(ctx, ex, in, out, job)
	if err != nil {
		return nil, err
	}
	files, spans, labels, classes, pre, layout, indexed := il.files, il.spans, il.labels, il.classes, il.pre, il.layout, il.indexed
	rep := &Report{Classes: classes, Dim: gopts.Dim(), Failed: pre, Indexed: indexed}
	if len(files) == 0 {
		if layout == LayoutTree {
			return rep, fmt.Errorf("featurize: no <class>/<image> files under %s", in.URL())
		}
		return rep, fmt.Errorf("featurize: no labelled images in the archives under %s", in.URL())
	}
	gopts = gopts.withDefaults()
	gopts.Size = 0
	rec := runRecord{
		Input: in.URL(), Layout: layout, Files: len(files), FilesSHA256: FilesHash(files), Labels: labelsHash(labels), Classes: classes,
		Size: job.Size, ImagesPerCall: job.ImagesPerCall, GIST: gopts, Dim: rep.Dim,
		MaxPixels: job.MaxPixels, MaxBytes: job.MaxBytes,
	}
	if err := checkRun(ctx, out, rec); err != nil {
		return nil, err
	}
	if err := dataset.WriteClasses(ctx, out, "", classes); err != nil {
		return nil, fmt.Errorf("featurize: write classes: %w", err)
	}
	var tasks []shardTask
	for shard, lo := 0, 0; lo < len(files); shard, lo = shard+1, lo+job.ImagesPerCall {
		hi := min(lo+job.ImagesPerCall, len(files))
		rep.Shards++
		if done, ok := readShardResult(ctx, out, shard); ok && done.Dim == rep.Dim && done.FilesSHA256 == FilesHash(files[lo:hi]) {
			rep.Resumed++
			rep.Images += done.Images
			rep.Failed = append(rep.Failed, done.Failed...)
			continue
		}
		t := shardTask{Input: in.URL(), Output: out.URL(), Shard: shard, Files: files[lo:hi], Labels: labels[lo:hi], Size: job.Size, GIST: gopts, MaxPixels: job.MaxPixels, MaxBytes: job.MaxBytes}
		if spans != nil {
			t.Spans = spans[lo:hi]
		}
		tasks = append(tasks, t)
	}
	if len(tasks) == 0 {
		return rep, nil
	}
	j, err := featurizeShard.Map(ctx, ex, tasks, job.MapOptions...)
	if err != nil {
		return nil, err
	}
	rep.JobID = j.ID()
	if job.OnJob != nil {
		job.OnJob(j)
	}
	results, err := j.Results(ctx)
	if !job.KeepJob && err == nil {
		defer j.Clean(context.WithoutCancel(ctx))
	}
	var je *wren.JobError
	switch {
	case errors.As(err, &je):
		for _, ce := range je.Failed {
			t := tasks[ce.Call]
			rep.CallFails = append(rep.CallFails, fmt.Sprintf("shard %d: %v", t.Shard, ce))
			for _, f := range t.Files {
				rep.Failed = append(rep.Failed, Failure{File: f, Reason: "its call failed: " + ce.Message})
			}
		}
	case err != nil:
		return nil, err
	}
	for _, r := range results {
		rep.Images += r.Images
		rep.Failed = append(rep.Failed, r.Failed...)
	}
	sort.Slice(rep.Failed, func(a, b int) bool { return rep.Failed[a].File < rep.Failed[b].File })
	return rep, nil
}

// inputList is a featurize input as listed: the images (sorted), where
// their bytes are (archives), their sizes and labels, and the classes.
type inputList struct {
	files   []string
	spans   []span // nil for a tree
	sizes   []int64
	labels  []int32
	classes []string
	pre     []Failure // found while listing: damaged archives, unlabelled members
	layout  string    // LayoutAuto resolved
	indexed int       // archive ranges indexed now
}

// listInput lists job's input (indexing archives the index lacks).
func listInput(ctx context.Context, ex *wren.Executor, in, out blob.Store, job Options) (*inputList, error) {
	switch job.Layout {
	case LayoutTree:
		return listTree(ctx, in)
	case LayoutAuto, LayoutILSVRCTrain, LayoutILSVRCVal, LayoutWebDataset:
		idx := out
		if job.Index != "" {
			var err error
			if idx, err = wren.OpenStore(ctx, job.Index); err != nil {
				return nil, fmt.Errorf("featurize: index: %w", err)
			}
			defer idx.Close()
		}
		ai, l, err := loadArchives(ctx, ex, in, idx, job)
		if err != nil {
			return nil, err
		}
		il := &inputList{files: ai.files, spans: ai.spans, labels: ai.labels, classes: ai.classes, pre: ai.damaged, layout: l, indexed: ai.indexed}
		for _, sp := range ai.spans {
			il.sizes = append(il.sizes, sp.Size)
		}
		return il, nil
	}
	return nil, fmt.Errorf("featurize: layout %q (want %q, %q, %q, %q or %q)", job.Layout, LayoutTree, LayoutAuto, LayoutILSVRCTrain, LayoutILSVRCVal, LayoutWebDataset)
}

// listTree lists a tree's <class>/<image> files (sorted) with their
// labels (indices of the sorted class names).
func listTree(ctx context.Context, in blob.Store) (*inputList, error) {
	il := &inputList{layout: LayoutTree}
	size := map[string]int64{}
	classIdx := map[string]int{}
	for a, err := range in.List(ctx, "") {
		if err != nil {
			return nil, fmt.Errorf("featurize: list %s: %w", in.URL(), err)
		}
		cls, _, ok := strings.Cut(a.Key, "/")
		if !ok {
			continue // no class
		}
		if _, seen := classIdx[cls]; !seen {
			classIdx[cls] = len(il.classes)
			il.classes = append(il.classes, cls)
		}
		il.files = append(il.files, a.Key)
		size[a.Key] = a.Size
	}
	sort.Strings(il.classes)
	for i, c := range il.classes {
		classIdx[c] = i
	}
	sort.Strings(il.files)
	for _, f := range il.files {
		cls, _, _ := strings.Cut(f, "/")
		il.labels = append(il.labels, int32(classIdx[cls]))
		il.sizes = append(il.sizes, size[f])
	}
	return il, nil
}

// labelsHash is the hex SHA-256 of the labels ("" for none).
func labelsHash(labels []int32) string {
	h := sha256.New()
	for _, l := range labels {
		fmt.Fprintf(h, "%d\n", l)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkRun compares the run with the record of the run that made the
// output, if any, and writes the record for a new output. An output with
// shards but no record (made by another program, or an older wren) is
// refused too: its shards cannot be trusted.
func checkRun(ctx context.Context, out blob.Store, rec runRecord) error {
	b, err := blob.ReadAll(ctx, out, RunKey)
	switch {
	case err == nil:
		var prev runRecord
		if err := json.Unmarshal(b, &prev); err != nil {
			return fmt.Errorf("%w: %s in %s is unreadable: %v", ErrMismatch, RunKey, out.URL(), err)
		}
		if d := prev.diff(rec); d != "" {
			return fmt.Errorf("%w: %s holds shards made with other settings: %s changed; write to another output or empty it", ErrMismatch, out.URL(), d)
		}
		return nil
	case !errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("featurize: read %s: %w", RunKey, err)
	}
	for a, err := range out.List(ctx, "shard-") {
		if err != nil {
			return fmt.Errorf("featurize: list %s: %w", out.URL(), err)
		}
		return fmt.Errorf("%w: %s holds shards (%s) but no %s recording how they were made; write to another output or empty it", ErrMismatch, out.URL(), a.Key, RunKey)
	}
	rb, _ := json.MarshalIndent(rec, "", "  ")
	if err := blob.PutBytes(ctx, out, RunKey, rb, blob.PutOptions{}); err != nil {
		return fmt.Errorf("featurize: write %s: %w", RunKey, err)
	}
	return nil
}

// readShardResult reads a shard's completion marker.
func readShardResult(ctx context.Context, st blob.Store, shard int) (ShardResult, bool) {
	var r ShardResult
	b, err := blob.ReadAll(ctx, st, dataset.ShardName(shard)+".json")
	if err != nil || json.Unmarshal(b, &r) != nil {
		return r, false
	}
	return r, true
}
