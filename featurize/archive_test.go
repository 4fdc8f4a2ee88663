package featurize

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
	"github.com/wrenml/wren/internal/npy"
)

// sample is one featurized image as the output holds it.
type sample struct {
	label int32
	feat  []float32
}

// readOutput reads every shard of a featurize output: file -> sample.
func readOutput(t *testing.T, out string, shards int) (map[string]sample, []string) {
	t.Helper()
	ctx := context.Background()
	st, err := wren.OpenStore(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]sample{}
	for s := range shards {
		base := dataset.ShardName(s)
		fb, err := blob.ReadAll(ctx, st, base+".npy")
		if err != nil {
			t.Fatal(err)
		}
		feats, shape, err := npy.Read[float32](bytes.NewReader(fb))
		if err != nil {
			t.Fatal(err)
		}
		lb, _ := blob.ReadAll(ctx, st, base+".labels.npy")
		labels, _, err := npy.Read[int32](bytes.NewReader(lb))
		if err != nil {
			t.Fatal(err)
		}
		list, _ := blob.ReadAll(ctx, st, base+".files.txt")
		files := strings.Fields(string(list))
		if len(files) != len(labels) || (len(files) > 0 && shape[0] != len(files)) {
			t.Fatalf("%s: %d files, %d labels, shape %v", base, len(files), len(labels), shape)
		}
		for i, f := range files {
			got[f] = sample{labels[i], feats[i*shape[1] : (i+1)*shape[1]]}
		}
	}
	cb, err := blob.ReadAll(ctx, st, dataset.ClassesKey)
	if err != nil {
		t.Fatal(err)
	}
	return got, strings.Split(strings.TrimSpace(string(cb)), "\n")
}

// tarFile is a member to write.
type tarFile struct {
	name string
	data []byte
}

func tarBytes(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// archiveFixture is a synthesized tree, featurized, and its images.
type archiveFixture struct {
	root    string
	tree    map[string]sample // "class-NN/img-NNNN.jpg" -> its sample from the tree
	classes []string
	images  map[string][]byte // tree file -> bytes
	ex      *wren.Executor
}

func newArchiveFixture(t *testing.T) *archiveFixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	in := filepath.Join(root, "tree")
	if err := Synthesize(in, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(root, "jobs"), Parallelism: 2, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	rep, err := Run(ctx, ex, Options{Input: in, Output: filepath.Join(root, "tree-out"), Size: 32, ImagesPerCall: 5})
	if err != nil {
		t.Fatal(err)
	}
	f := &archiveFixture{root: root, images: map[string][]byte{}, ex: ex}
	f.tree, f.classes = readOutput(t, filepath.Join(root, "tree-out"), rep.Shards)
	for name := range f.tree {
		b, err := os.ReadFile(filepath.Join(in, name))
		if err != nil {
			t.Fatal(err)
		}
		f.images[name] = b
	}
	return f
}

// sortedTreeFiles lists the tree's files in order.
func (f *archiveFixture) sortedTreeFiles() []string {
	var names []string
	for n := range f.images {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// check compares an archive run's output with the tree's: each archive
// member named by toTree as a tree file has the tree's features and class.
func (f *archiveFixture) check(t *testing.T, out string, rep *Report, toTree func(string) string, wantClasses []string) {
	t.Helper()
	got, classes := readOutput(t, out, rep.Shards)
	if !slices.Equal(classes, wantClasses) {
		t.Fatalf("classes %q, want %q", classes, wantClasses)
	}
	mapped := 0
	for name := range got {
		if toTree(name) != "-" {
			mapped++
		}
	}
	if mapped != len(f.tree) {
		t.Fatalf("%d images featurized, the tree has %d (failed: %v)", mapped, len(f.tree), rep.Failed)
	}
	for name, s := range got {
		tn := toTree(name)
		if tn == "-" {
			continue // not from the tree
		}
		want, ok := f.tree[tn]
		if !ok {
			t.Fatalf("%s: no tree file %q", name, tn)
		}
		if s.label != want.label || !slices.Equal(s.feat, want.feat) {
			t.Fatalf("%s: label %d (tree %d), features equal %v", name, s.label, want.label, slices.Equal(s.feat, want.feat))
		}
	}
}

// TestArchiveTrainNested: an ILSVRC-style train archive (a tar of one tar
// per synset) featurizes as the same images in a tree do; a rerun uses the
// kept index and resumes; a second size reads another output's index.
func TestArchiveTrainNested(t *testing.T) {
	ctx := context.Background()
	f := newArchiveFixture(t)
	bySynset := map[string][]tarFile{}
	for _, name := range f.sortedTreeFiles() {
		cls, file, _ := strings.Cut(name, "/")
		bySynset[cls] = append(bySynset[cls], tarFile{cls + "_" + file, f.images[name]})
	}
	var outer []tarFile
	for _, cls := range []string{"class-02", "class-00", "class-01"} { // not sorted in the archive
		outer = append(outer, tarFile{cls + ".tar", tarBytes(t, bySynset[cls])})
	}
	in := filepath.Join(f.root, "train")
	os.MkdirAll(in, 0o755)
	if err := os.WriteFile(filepath.Join(in, "ILSVRC2012_img_train.tar"), tarBytes(t, outer), 0o644); err != nil {
		t.Fatal(err)
	}
	toTree := func(name string) string {
		// ILSVRC2012_img_train.tar:class-00.tar/class-00_img-0001.jpg
		_, m, _ := strings.Cut(name, ":")
		inner, file, _ := strings.Cut(m, "/")
		cls := strings.TrimSuffix(inner, ".tar")
		return cls + "/" + strings.TrimPrefix(file, cls+"_")
	}
	for _, layout := range []string{LayoutILSVRCTrain, LayoutAuto} {
		out := filepath.Join(f.root, "train-out-"+layout)
		rep, err := Run(ctx, f.ex, Options{Input: in, Output: out, Layout: layout, Size: 32, ImagesPerCall: 5})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Indexed != 3 || len(rep.Failed) != 0 {
			t.Fatalf("%s: report %+v", layout, rep)
		}
		f.check(t, out, rep, toTree, f.classes)
		again, err := Run(ctx, f.ex, Options{Input: in, Output: out, Layout: layout, Size: 32, ImagesPerCall: 5})
		if err != nil || again.Indexed != 0 || again.Resumed != again.Shards {
			t.Fatalf("%s: rerun: %+v, %v", layout, again, err)
		}
	}
	// Another size into another output, with the first output's index.
	rep, err := Run(ctx, f.ex, Options{Input: in, Output: filepath.Join(f.root, "train-64"), Index: filepath.Join(f.root, "train-out-"+LayoutILSVRCTrain), Layout: LayoutILSVRCTrain, Size: 64, ImagesPerCall: 5})
	if err != nil || rep.Indexed != 0 || rep.Images != len(f.tree) {
		t.Fatalf("size 64 with the kept index: %+v, %v", rep, err)
	}
	// A train archive holding a file that is not a tar is refused.
	os.WriteFile(filepath.Join(in, "z.tar"), tarBytes(t, []tarFile{{"README", []byte("hi")}}), 0o644)
	if _, err := Run(ctx, f.ex, Options{Input: in, Output: filepath.Join(f.root, "bad"), Layout: LayoutILSVRCTrain, Size: 32}); !errors.Is(err, ErrArchive) {
		t.Fatalf("a train archive of a README: %v", err)
	}
}

// TestArchiveVal: a flat val archive with its labels in both common forms
// (LOC_val_solution.csv with LOC_synset_mapping.txt; the devkit's ground
// truth with an ID table), class indices the sorted synsets'; members that
// are not images or have no label are failures named by member.
func TestArchiveVal(t *testing.T) {
	ctx := context.Background()
	f := newArchiveFixture(t)
	var members []tarFile
	var loc, truth bytes.Buffer
	loc.WriteString("ImageId,PredictionString\n")
	stems := map[string]string{} // val stem -> tree file
	for i, name := range f.sortedTreeFiles() {
		stem := fmt.Sprintf("ILSVRC2012_val_%08d", i+1)
		stems[stem] = name
		members = append(members, tarFile{stem + ".JPEG", f.images[name]})
		cls, _, _ := strings.Cut(name, "/")
		fmt.Fprintf(&loc, "%s,%s 1 2 3 4 %s 5 6 7 8\n", stem, cls, cls)
		fmt.Fprintf(&truth, "%d\n", map[string]int{"class-00": 3, "class-01": 1, "class-02": 2}[cls])
	}
	n := len(members)
	members = append(members, tarFile{fmt.Sprintf("ILSVRC2012_val_%08d.JPEG", n+1), []byte("this is not a JPEG")})
	fmt.Fprintf(&loc, "ILSVRC2012_val_%08d,class-01 1 2 3 4\n", n+1)
	fmt.Fprintf(&truth, "1\n")
	members = append(members, tarFile{"unlabelled.JPEG", f.images[f.sortedTreeFiles()[0]]})
	// Real ImageNet's odd members: a PNG named .JPEG (featurized), an
	// image over the pixel cap (a failure). (Its CMYK JPEGs decode as
	// TestCMYKAndGrayBecomeRGB's.)
	odd := []tarFile{
		{fmt.Sprintf("ILSVRC2012_val_%08d.JPEG", n+2), pngBytes(t)},
		{fmt.Sprintf("ILSVRC2012_val_%08d.JPEG", n+3), bombJPEG(t)},
	}
	members = append(members, odd...)
	for i := range odd {
		fmt.Fprintf(&loc, "ILSVRC2012_val_%08d,class-02 1 2 3 4\n", n+2+i)
		fmt.Fprintf(&truth, "2\n")
	}
	in := filepath.Join(f.root, "val")
	os.MkdirAll(in, 0o755)
	os.WriteFile(filepath.Join(in, "ILSVRC2012_img_val.tar"), tarBytes(t, members), 0o644)
	os.WriteFile(filepath.Join(in, "LOC_val_solution.csv"), loc.Bytes(), 0o644)
	os.WriteFile(filepath.Join(in, "LOC_synset_mapping.txt"), []byte("class-00 zero things\nclass-01 one thing\nclass-02 two\nclass-03 never seen\n"), 0o644)
	os.WriteFile(filepath.Join(in, "ground_truth.txt"), truth.Bytes(), 0o644)
	os.WriteFile(filepath.Join(in, "ids.txt"), []byte("1 class-01 one thing\n2 class-02 two\n3 class-00 zero things\n4 class-03 never seen\n"), 0o644)
	toTree := func(name string) string {
		_, m, _ := strings.Cut(name, ":")
		if tn, ok := stems[strings.TrimSuffix(m, ".JPEG")]; ok {
			return tn
		}
		return "-"
	}
	wantClasses := []string{"class-00 zero things", "class-01 one thing", "class-02 two", "class-03 never seen"}
	for _, c := range []struct{ name, labels, synsets string }{
		{"loc", "LOC_val_solution.csv", "LOC_synset_mapping.txt"},
		{"devkit", "ground_truth.txt", "ids.txt"},
	} {
		out := filepath.Join(f.root, "val-out-"+c.name)
		rep, err := Run(ctx, f.ex, Options{Input: in, Archives: []string{"ILSVRC2012_img_val.tar"}, Output: out, Layout: LayoutILSVRCVal, Labels: c.labels, Synsets: c.synsets, Size: 32, ImagesPerCall: 5})
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]string{}
		for _, fl := range rep.Failed {
			reasons[fl.File] = fl.Reason
		}
		if len(rep.Failed) != 3 || !strings.Contains(reasons[fmt.Sprintf("ILSVRC2012_img_val.tar:ILSVRC2012_val_%08d.JPEG", n+1)], "not a decodable image") ||
			!strings.Contains(reasons["ILSVRC2012_img_val.tar:unlabelled.JPEG"], "no class") ||
			!strings.Contains(reasons[fmt.Sprintf("ILSVRC2012_img_val.tar:ILSVRC2012_val_%08d.JPEG", n+3)], "pixel cap") {
			t.Fatalf("%s: failures %v", c.name, rep.Failed)
		}
		if rep.Images != n+1 {
			t.Fatalf("%s: %d images featurized, want the tree's %d and the PNG named .JPEG", c.name, rep.Images, n)
		}
		f.check(t, out, rep, toTree, wantClasses)
	}
	// Bad label inputs are clear errors.
	for name, o := range map[string]Options{
		"no labels":              {},
		"devkit without IDs":     {Labels: "ground_truth.txt"},
		"devkit with words only": {Labels: "ground_truth.txt", Synsets: "LOC_synset_mapping.txt"},
		"missing labels file":    {Labels: "nope.csv"},
	} {
		o.Input, o.Output, o.Layout, o.Size = in, filepath.Join(f.root, "val-bad"), LayoutILSVRCVal, 32
		o.Archives = []string{"ILSVRC2012_img_val.tar"}
		if _, err := Run(ctx, f.ex, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestArchiveWebDataset: WebDataset shards (key.jpg, key.cls, key.json)
// featurize as the tree does, classes by their integer; a truncated shard
// keeps its whole members and is reported.
func TestArchiveWebDataset(t *testing.T) {
	ctx := context.Background()
	f := newArchiveFixture(t)
	in := filepath.Join(f.root, "wds")
	os.MkdirAll(in, 0o755)
	keys := map[string]string{}
	var shard []tarFile
	shardN := 0
	flush := func() {
		os.WriteFile(filepath.Join(in, fmt.Sprintf("train-%04d.tar", shardN)), tarBytes(t, shard), 0o644)
		shard, shardN = nil, shardN+1
	}
	for i, name := range f.sortedTreeFiles() {
		key := fmt.Sprintf("sample%06d", i)
		keys[key] = name
		cls, _, _ := strings.Cut(name, "/")
		shard = append(shard, tarFile{key + ".jpg", f.images[name]}, tarFile{key + ".cls", []byte(strings.TrimPrefix(cls, "class-0") + "\n")}, tarFile{key + ".json", []byte("{}")})
		if len(shard) == 15 {
			flush()
		}
	}
	// A sample whose name has a newline: refused by name, not read.
	shard = append(shard, tarFile{"bad\nname.jpg", f.images[f.sortedTreeFiles()[0]]}, tarFile{"bad\nname.cls", []byte("1")})
	flush()
	toTree := func(name string) string {
		_, m, _ := strings.Cut(name, ":")
		return keys[wdsKey(m)]
	}
	out := filepath.Join(f.root, "wds-out")
	rep, err := Run(ctx, f.ex, Options{Input: in, Output: out, Layout: LayoutAuto, Size: 32, ImagesPerCall: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Indexed != shardN || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Reason, "control characters") {
		t.Fatalf("report %+v", rep)
	}
	f.check(t, out, rep, toTree, []string{"0", "1", "2"})

	// A truncated shard: the members before the cut are featurized, the
	// damage reported under the archive's name.
	whole, _ := os.ReadFile(filepath.Join(in, "train-0000.tar"))
	cut := filepath.Join(f.root, "cut")
	os.MkdirAll(cut, 0o755)
	os.WriteFile(filepath.Join(cut, "train-0000.tar"), whole[:len(whole)*2/3], 0o644)
	rep, err = Run(ctx, f.ex, Options{Input: cut, Output: filepath.Join(f.root, "cut-out"), Layout: LayoutWebDataset, Size: 32, ImagesPerCall: 5})
	if err != nil {
		t.Fatal(err)
	}
	// (A sample whose image made it but whose .cls did not has no class.)
	damaged := 0
	for _, fl := range rep.Failed {
		switch {
		case fl.File == "train-0000.tar" && strings.Contains(fl.Reason, "damaged"):
			damaged++
		case strings.HasPrefix(fl.File, "train-0000.tar:") && fl.Reason == "no class":
		default:
			t.Errorf("truncated shard: failure %v", fl)
		}
	}
	if rep.Images == 0 || rep.Images >= 5 || damaged != 1 {
		t.Fatalf("truncated shard: %d images, failures %v", rep.Images, rep.Failed)
	}
}

// TestWDSKey: a WebDataset key is the path up to the first dot of the base
// name.
func TestWDSKey(t *testing.T) {
	for in, want := range map[string]string{"a/b/c.jpg": "a/b/c", "x.seg.png": "x", "dir.v2/s1.cls": "dir.v2/s1", "plain": "plain"} {
		if got := wdsKey(in); got != want {
			t.Errorf("wdsKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSynthesizeArchive: each layout SynthesizeArchive writes featurizes
// to the same features and classes as the tree of the same seed.
func TestSynthesizeArchive(t *testing.T) {
	ctx := context.Background()
	f := newArchiveFixture(t) // Synthesize(…, 3, 4, 5)
	want := map[string]sample{}
	for name, s := range f.tree {
		want[name] = s
	}
	for _, layout := range []string{LayoutILSVRCTrain, LayoutILSVRCVal, LayoutWebDataset} {
		dir := filepath.Join(f.root, "synth-"+layout)
		o, err := SynthesizeArchive(dir, layout, 3, 4, 5)
		if err != nil {
			t.Fatal(err)
		}
		o.Output, o.Size, o.ImagesPerCall = filepath.Join(f.root, "synth-out-"+layout), 32, 5
		rep, err := Run(ctx, f.ex, o)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readOutput(t, o.Output, rep.Shards)
		if rep.Images != len(want) || len(rep.Failed) != 0 || len(got) != len(want) {
			t.Fatalf("%s: %+v", layout, rep)
		}
		// The same multiset of (label, features).
		count := map[string]int{}
		for _, s := range want {
			count[fmt.Sprint(s.label, s.feat)]++
		}
		for name, s := range got {
			k := fmt.Sprint(s.label, s.feat)
			if count[k] == 0 {
				t.Fatalf("%s: %s has a label or features the tree does not", layout, name)
			}
			count[k]--
		}
	}
	if _, err := SynthesizeArchive(filepath.Join(f.root, "x"), "zip", 1, 1, 1); err == nil {
		t.Fatal("an unknown layout accepted")
	}
}

// TestIndexTaskChecked: an indexing call's input comes from the store; it
// writes nothing but an index object and reads no negative range.
func TestIndexTaskChecked(t *testing.T) {
	dir := t.TempDir()
	for _, task := range []indexTask{
		{Input: dir, Index: dir, Key: "shard-00000.json", Archive: "a.tar"},
		{Input: dir, Index: dir, Key: "index/../featurize.json", Archive: "a.tar"},
		{Input: dir, Index: dir, Key: "index/x.json", Archive: "a.tar", Off: -1},
	} {
		if _, err := runIndex(context.Background(), task); !errors.Is(err, ErrArchive) {
			t.Errorf("%+v: %v", task, err)
		}
	}
	if fs, _ := os.ReadDir(dir); len(fs) != 0 {
		t.Fatalf("wrote %v", fs)
	}
}
