package featurize

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
	"github.com/wrenml/wren/internal/npy"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 100, 255})
		}
	}
	return img
}

// bombJPEG is a valid small JPEG whose header claims 30000 x 30000 pixels.
func bombJPEG(t *testing.T) []byte {
	b := encodeJPEG(t, gradient(16, 16))
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	// FFC0, length(2), precision(1), height(2), width(2)
	b[i+5], b[i+6] = 0x75, 0x30
	b[i+7], b[i+8] = 0x75, 0x30
	return b
}

// withEXIFOrientation inserts an APP1 Exif segment with the given
// orientation right after the JPEG's SOI marker.
func withEXIFOrientation(jpg []byte, o byte) []byte {
	tiffHdr := []byte{'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, o, 0, 0, 0, 0, 0, 0, 0}
	payload := append([]byte("Exif\x00\x00"), tiffHdr...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	seg = append(seg, payload...)
	return append(append(append([]byte{}, jpg[:2]...), seg...), jpg[2:]...)
}

func TestDecode(t *testing.T) {
	src := gradient(40, 20)
	var pngB, gifB, bmpB, tiffB bytes.Buffer
	png.Encode(&pngB, src)
	gif.Encode(&gifB, src, nil)
	bmp.Encode(&bmpB, src)
	tiff.Encode(&tiffB, src, nil)
	grayJPEG := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 30, 30)))
	for name, data := range map[string][]byte{"png": pngB.Bytes(), "gif": gifB.Bytes(), "bmp": bmpB.Bytes(), "tiff": tiffB.Bytes(), "jpeg": encodeJPEG(t, src), "gray jpeg": grayJPEG} {
		img, err := Decode(data, 0)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := GIST(img, GISTOptions{Size: 32}); err != nil {
			t.Errorf("%s: GIST: %v", name, err)
		}
	}
	// EXIF orientation 6: rotate 90 degrees clockwise, so 40x20 becomes 20x40.
	img, err := Decode(withEXIFOrientation(encodeJPEG(t, src), 6), 0)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 20 || b.Dy() != 40 {
		t.Fatalf("EXIF-rotated image is %v, want 20x40", b)
	}
	tiny := image.NewRGBA(image.Rect(0, 0, 1, 1))
	var tinyPNG bytes.Buffer
	png.Encode(&tinyPNG, tiny)
	full := encodeJPEG(t, src)
	bad := map[string]struct {
		data []byte
		want error
	}{
		"empty":     {nil, ErrNotImage},
		"text":      {[]byte("hello, I am not an image"), ErrNotImage},
		"truncated": {full[:len(full)/2], ErrNotImage},
		"1x1":       {tinyPNG.Bytes(), ErrTooSmall},
		"bomb":      {bombJPEG(t), ErrTooManyPixels},
	}
	for name, c := range bad {
		if _, err := Decode(c.data, 0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestRunTree(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	in := filepath.Join(root, "in")
	if err := Synthesize(in, 3, 6, 1); err != nil {
		t.Fatal(err)
	}
	full := encodeJPEG(t, gradient(50, 40))
	tinyPNG := func() []byte {
		var b bytes.Buffer
		png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 1, 1)))
		return b.Bytes()
	}()
	bad := map[string][]byte{
		"class-00/truncated.jpg": full[:len(full)/3],
		"class-01/empty.jpg":     nil,
		"class-01/notes.txt":     []byte("not an image"),
		"class-02/dot.png":       tinyPNG,
		"class-02/bomb.jpg":      bombJPEG(t),
	}
	for k, v := range bad {
		if err := os.WriteFile(filepath.Join(in, k), v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(in, "README"), []byte("no class: skipped"), 0o644)
	out := filepath.Join(root, "out")
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(root, "jobs"), Parallelism: 2, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	job := Options{Input: in, Output: out, Size: 32, ImagesPerCall: 5}
	rep, err := Run(ctx, ex, job)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 18 || len(rep.Failed) != 5 || rep.Shards != 5 || rep.Dim != 960 || len(rep.CallFails) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	reasons := map[string]string{}
	for _, f := range rep.Failed {
		reasons[f.File] = f.Reason
	}
	for k, want := range map[string]string{"class-02/bomb.jpg": "pixel cap", "class-02/dot.png": "too small", "class-01/empty.jpg": "empty", "class-01/notes.txt": "not a decodable image", "class-00/truncated.jpg": "not a decodable image"} {
		if !strings.Contains(reasons[k], want) {
			t.Errorf("%s: reason %q, want it to mention %q", k, reasons[k], want)
		}
	}
	// Shards: features, labels and files agree, and match a direct GIST.
	st, _ := wren.OpenStore(ctx, out)
	total := 0
	for s := range rep.Shards {
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
		if shape[0] != len(files) || len(labels) != len(files) || (len(files) > 0 && shape[1] != 960) {
			t.Fatalf("%s: shape %v, %d labels, %d files", base, shape, len(labels), len(files))
		}
		for i, f := range files {
			want := int32(f[len("class-0")] - '0')
			if labels[i] != want {
				t.Fatalf("%s: label %d for %s", base, labels[i], f)
			}
			data, _ := os.ReadFile(filepath.Join(in, f))
			img, _ := Decode(data, 0)
			d, _ := GIST(img, GISTOptions{Size: 32})
			if !slices.Equal(d, feats[i*960:(i+1)*960]) {
				t.Fatalf("%s: features of %s differ from a direct GIST", base, f)
			}
		}
		total += len(files)
	}
	if total != 18 {
		t.Fatalf("%d images in shards, want 18", total)
	}
	cl, _ := blob.ReadAll(ctx, st, "classes.txt")
	if string(cl) != "class-00\nclass-01\nclass-02\n" {
		t.Fatalf("classes.txt = %q", cl)
	}

	// A rerun resumes: nothing to do.
	rep2, err := Run(ctx, ex, job)
	if err != nil || rep2.Resumed != 5 || rep2.JobID != "" || rep2.Images != 18 || len(rep2.Failed) != 5 {
		t.Fatalf("rerun: %+v, %v", rep2, err)
	}
	// Losing a shard's marker recomputes just that shard.
	st.Delete(ctx, dataset.ShardName(2)+".json")
	rep3, err := Run(ctx, ex, job)
	if err != nil || rep3.Resumed != 4 || rep3.JobID == "" || rep3.Images != 18 {
		t.Fatalf("partial rerun: %+v, %v", rep3, err)
	}

	// A rerun with other settings or another tree is refused, naming what
	// changed, and leaves the output alone.
	before, _ := blob.Keys(ctx, st, "")
	for _, c := range []struct {
		change func(o *Options)
		want   string
	}{
		{func(o *Options) { o.ImagesPerCall = 4 }, "ImagesPerCall (5 then, 4 now)"},
		{func(o *Options) { o.Size = 64 }, "Size (32 then, 64 now)"},
		{func(o *Options) { o.GIST.Gray = true }, "GIST options"},
		{func(o *Options) { o.MaxPixels = 1 << 20 }, "MaxPixels"},
		{func(o *Options) {
			os.WriteFile(filepath.Join(in, "class-00", "zz-new.png"), pngBytes(t), 0o644)
		}, "input tree (23 files then, 24 now"},
	} {
		o := job
		c.change(&o)
		_, err := Run(ctx, ex, o)
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("changed run: %v; want ErrMismatch naming %q", err, c.want)
		}
	}
	after, _ := blob.Keys(ctx, st, "")
	if !slices.Equal(before, after) {
		t.Fatalf("a refused run changed the output: %v -> %v", before, after)
	}
	// Shards without a record (another program's) are not trusted either.
	st.Delete(ctx, RunKey)
	if _, err := Run(ctx, ex, job); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), RunKey) {
		t.Fatalf("shards without a record: %v", err)
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	ex, _ := wren.NewExecutor(ctx, wren.Options{Store: t.TempDir(), Backend: wren.InProcess(1)})
	defer ex.Close()
	if _, err := Run(ctx, ex, Options{Input: t.TempDir(), Output: t.TempDir()}); err == nil {
		t.Fatal("empty tree accepted")
	}
	if _, err := Run(ctx, ex, Options{Input: "nope://x", Output: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "nope://x") {
		t.Fatalf("bad input URL: %v", err)
	}
	if _, err := Run(ctx, ex, Options{Input: t.TempDir(), Output: t.TempDir(), Size: 31}); err == nil {
		t.Fatal("odd size accepted")
	}
	// "" is not the working directory (an empty Input read the default
	// store's directory as a tree of images).
	for _, o := range []Options{{Input: "", Output: t.TempDir()}, {Input: t.TempDir(), Output: ""}} {
		if _, err := Run(ctx, ex, o); err == nil || !strings.Contains(err.Error(), "want a store URL") {
			t.Errorf("Input %q, Output %q: %v", o.Input, o.Output, err)
		}
		if _, err := Plan(ctx, ex, o, PlanOptions{}); err == nil || !strings.Contains(err.Error(), "want a store URL") {
			t.Errorf("plan: Input %q, Output %q: %v", o.Input, o.Output, err)
		}
	}
}

// TestCMYKAndGrayBecomeRGB: non-RGB inputs are converted before GIST.
func TestCMYKAndGrayBecomeRGB(t *testing.T) {
	cmyk := image.NewCMYK(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(cmyk.Pix); i += 4 {
		cmyk.Pix[i], cmyk.Pix[i+1], cmyk.Pix[i+2], cmyk.Pix[i+3] = 0, 255, 255, 0 // red
	}
	p := Prepare(cmyk, 8)
	if r, g, b := p.Pix[0], p.Pix[1], p.Pix[2]; r != 255 || g != 0 || b != 0 {
		t.Fatalf("CMYK red became %d,%d,%d", r, g, b)
	}
	gray := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}
	q := Prepare(gray, 16)
	for i := 0; i < len(q.Pix); i += 4 {
		if q.Pix[i] != q.Pix[i+1] || q.Pix[i] != q.Pix[i+2] {
			t.Fatalf("gray pixel %d became %v", i/4, q.Pix[i:i+3])
		}
	}
	// A gray image's colour GIST has three identical thirds.
	d, err := GIST(gray, GISTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d[:320], d[320:640]) || !slices.Equal(d[:320], d[640:]) {
		t.Fatal("gray input: colour thirds differ")
	}
}
