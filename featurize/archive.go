package featurize

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
)

// Input layouts (Options.Layout). The archive layouts read every *.tar
// object under Input (or Options.Archives) in place: each archive is
// indexed once (member names, offsets, sizes; nested tars included) by one
// call per archive, or per inner archive of a nested one, the index is
// kept under the output's "index/", and each featurize call reads its
// images with ranged reads straight from the archives. Nothing is
// unpacked and no per-image object is written.
const (
	// LayoutTree: <class>/<image> objects under Input (the default).
	LayoutTree = ""
	// LayoutAuto: archives, their layout told from the first one (a first
	// member that is a tar: ILSVRCTrain; a key.cls member: WebDataset;
	// else ILSVRCVal).
	LayoutAuto = "auto"
	// LayoutILSVRCTrain: ILSVRC2012_img_train.tar, a tar of per-synset tars
	// (n01440764.tar holding n01440764_10026.JPEG, ...). An image's class
	// is its synset; class indices follow the sorted synset IDs.
	LayoutILSVRCTrain = "ilsvrc-train"
	// LayoutILSVRCVal: ILSVRC2012_img_val.tar, flat images whose classes
	// come from Options.Labels.
	LayoutILSVRCVal = "ilsvrc-val"
	// LayoutWebDataset: WebDataset shards, members sharing a key
	// (key.jpg, key.cls); the class is the integer in key.cls.
	LayoutWebDataset = "webdataset"
)

// ErrArchive reports an archive input that cannot be used as asked.
var ErrArchive = errors.New("featurize: bad archive input")

// member is an archive member as indexed.
type member struct {
	Name  string `json:"n"`           // path in the archive; nested: "<inner>.tar/<path>"
	Off   int64  `json:"o"`           // its data's offset in the archive object
	Size  int64  `json:"s"`           // its data's length
	Class string `json:"c,omitempty"` // WebDataset: the key's .cls
}

// archiveIndex is one indexed range of an archive (the whole object, or an
// inner tar of a nested one), as kept under "index/".
type archiveIndex struct {
	Archive    string   `json:"archive"`
	Off        int64    `json:"off"`
	Size       int64    `json:"size"`
	ObjectSize int64    `json:"object_size"` // the archive's size when indexed
	Prefix     string   `json:"prefix"`      // prepended to member names
	Layout     string   `json:"layout"`
	Members    []member `json:"members"`
	// Damage, when set, says why indexing stopped early (a truncated or
	// corrupt tar): the members before it are kept.
	Damage string `json:"damage,omitempty"`
}

// indexTask is the input of one indexing call.
type indexTask struct {
	Input, Index string // store URLs
	Key          string // the index object to write
	Archive      string
	Off, Size    int64
	ObjectSize   int64
	Prefix       string
	Layout       string
}

// indexSummary is what an indexing call returns.
type indexSummary struct {
	Members int    `json:"members"`
	Damage  string `json:"damage,omitempty"`
}

var indexArchive = wren.Register("featurize.index", runIndex)

func runIndex(ctx context.Context, t indexTask) (indexSummary, error) {
	// The task comes from the store: it writes only an index object.
	if !strings.HasPrefix(t.Key, "index/") || !strings.HasSuffix(t.Key, ".json") || strings.Contains(t.Key, "..") {
		return indexSummary{}, fmt.Errorf("%w: index key %q is not index/<name>.json", ErrArchive, t.Key)
	}
	if t.Off < 0 || t.Size < 0 {
		return indexSummary{}, fmt.Errorf("%w: range %d+%d of %s", ErrArchive, t.Off, t.Size, t.Archive)
	}
	in, err := openStore(ctx, t.Input)
	if err != nil {
		return indexSummary{}, err
	}
	out, err := openStore(ctx, t.Index)
	if err != nil {
		return indexSummary{}, err
	}
	r, err := in.Range(ctx, t.Archive, t.Off, t.Size)
	if err != nil {
		return indexSummary{}, fmt.Errorf("featurize: open %s: %w", t.Archive, err)
	}
	defer r.Close()
	idx := archiveIndex{Archive: t.Archive, Off: t.Off, Size: t.Size, ObjectSize: t.ObjectSize, Prefix: t.Prefix, Layout: t.Layout}
	idx.Members, err = listTar(ctx, r, t.Off, t.Layout == LayoutWebDataset)
	if err != nil {
		if ctx.Err() != nil {
			return indexSummary{}, ctx.Err()
		}
		idx.Damage = err.Error()
	}
	for i := range idx.Members {
		idx.Members[i].Name = t.Prefix + idx.Members[i].Name
	}
	if idx.Members == nil {
		idx.Members = []member{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return indexSummary{}, err
	}
	if err := blob.PutBytes(ctx, out, t.Key, b, blob.PutOptions{}); err != nil {
		return indexSummary{}, err
	}
	return indexSummary{Members: len(idx.Members), Damage: idx.Damage}, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// listTar lists the regular files of the tar stream r, whose first byte is
// at base in its object. With cls, the contents of *.cls members (a
// WebDataset key's class) are read and given to the members of the same
// key. An error (a truncated or corrupt tar) comes with the members
// before it.
func listTar(ctx context.Context, r io.Reader, base int64, cls bool) ([]member, error) {
	cr := &countingReader{r: bufio.NewReaderSize(r, 1<<20)}
	tr := tar.NewReader(cr)
	var ms []member
	classes := map[string]string{}
	for {
		if err := ctx.Err(); err != nil {
			return ms, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return finishClasses(ms, classes), fmt.Errorf("after %d members: %w", len(ms), err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		m := member{Name: h.Name, Off: base + cr.n, Size: h.Size}
		if cls && strings.HasSuffix(h.Name, ".cls") {
			b, err := io.ReadAll(io.LimitReader(tr, 64))
			if err != nil {
				return finishClasses(ms, classes), fmt.Errorf("after %d members: %w", len(ms), err)
			}
			classes[wdsKey(h.Name)] = strings.TrimSpace(string(b))
			continue
		}
		ms = append(ms, m)
	}
	// A member whose data ran past the end of the stream: tar.Reader
	// reports it at the next call, which io.EOF above may hide for the last
	// member; check the last member is whole.
	if n := len(ms); n > 0 && ms[n-1].Off+ms[n-1].Size > base+cr.n {
		return finishClasses(ms[:n-1], classes), fmt.Errorf("after %d members: %s is cut short", n-1, ms[n-1].Name)
	}
	return finishClasses(ms, classes), nil
}

func finishClasses(ms []member, classes map[string]string) []member {
	if len(classes) == 0 {
		return ms
	}
	for i := range ms {
		ms[i].Class = classes[wdsKey(ms[i].Name)]
	}
	return ms
}

// wdsKey is a WebDataset member's key: its path up to the first dot of
// its base name.
func wdsKey(name string) string {
	dir, base := path.Split(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	return dir + base
}

// imageExts are the member extensions a WebDataset sample's image has.
var imageExts = []string{"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm", "pgm", "pnm"}

func isImageName(name string) bool {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	return slices.Contains(imageExts, ext)
}

// topMembers lists the top-level members of the tar object key by jumping
// from header to header (one small ranged read each): the inner tars of a
// nested archive, without reading their bytes.
func topMembers(ctx context.Context, st blob.Store, key string, size int64) ([]member, error) {
	var ms []member
	pos := int64(0)
	for pos < size {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A header is one block, or a few with PAX or GNU long names.
		var h *tar.Header
		var used int64
		for want := int64(4 << 10); ; want *= 4 {
			r, err := st.Range(ctx, key, pos, min(want, size-pos))
			if err != nil {
				return nil, err
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				return nil, err
			}
			cr := &countingReader{r: bytes.NewReader(b)}
			h, err = tar.NewReader(cr).Next()
			if err == io.EOF {
				return ms, nil
			}
			if err == nil {
				used = cr.n
				break
			}
			if int64(len(b)) < want || want >= 1<<20 {
				return ms, fmt.Errorf("%w: %s: header at byte %d: %v", ErrArchive, key, pos, err)
			}
		}
		dataOff := pos + used
		if h.Typeflag == tar.TypeReg {
			if dataOff+h.Size > size {
				return ms, fmt.Errorf("%w: %s: %s is cut short", ErrArchive, key, h.Name)
			}
			ms = append(ms, member{Name: h.Name, Off: dataOff, Size: h.Size})
		}
		pos = dataOff + (h.Size+511)/512*512
	}
	return ms, nil
}

// indexUnit is a range of an archive one call indexes.
type indexUnit struct {
	archive    string
	off, size  int64
	objectSize int64
	prefix     string
}

// indexKey is the index object of a unit.
func (u indexUnit) indexKey(layout string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%d\x00%s", u.archive, u.off, u.size, u.objectSize, layout)))
	return "index/" + hex.EncodeToString(h[:12]) + ".json"
}

// archiveInput is an archive input as the featurize job sees it: every
// image with where its bytes are, its label, and the class list.
type archiveInput struct {
	files   []string // "<archive>:<member>"
	spans   []span
	labels  []int32
	classes []string
	damaged []Failure // archives (or inner tars) indexed only in part
	indexed int       // units indexed by this run (not found in the index)
}

// span is where an image's bytes are: an archive's range.
type span struct {
	Archive   string `json:"a"`
	Off, Size int64
}

// detectLayout tells an archive's layout from its first members.
func detectLayout(ctx context.Context, st blob.Store, key string, size int64) (string, error) {
	r, err := st.Range(ctx, key, 0, min(size, 4<<20))
	if err != nil {
		return "", err
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for i := 0; i < 16; i++ {
		h, err := tr.Next()
		if err != nil {
			break
		}
		switch {
		case strings.HasSuffix(h.Name, ".tar"):
			return LayoutILSVRCTrain, nil
		case strings.HasSuffix(h.Name, ".cls"):
			return LayoutWebDataset, nil
		}
	}
	return LayoutILSVRCVal, nil
}

// loadArchives indexes (or finds the index of) every archive and lists its
// images with their labels.
func loadArchives(ctx context.Context, ex *wren.Executor, in, idxStore blob.Store, o Options) (*archiveInput, string, error) {
	archives := o.Archives
	if len(archives) == 0 {
		for a, err := range in.List(ctx, "") {
			if err != nil {
				return nil, "", fmt.Errorf("featurize: list %s: %w", in.URL(), err)
			}
			if strings.HasSuffix(a.Key, ".tar") {
				archives = append(archives, a.Key)
			}
		}
	}
	if len(archives) == 0 {
		return nil, "", fmt.Errorf("%w: no *.tar under %s", ErrArchive, in.URL())
	}
	sort.Strings(archives)
	sizes := make([]int64, len(archives))
	for i, a := range archives {
		at, err := in.Stat(ctx, a)
		if err != nil {
			return nil, "", fmt.Errorf("featurize: archive %s: %w", a, err)
		}
		sizes[i] = at.Size
	}
	layout := o.Layout
	if layout == LayoutAuto {
		l, err := detectLayout(ctx, in, archives[0], sizes[0])
		if err != nil {
			return nil, "", fmt.Errorf("featurize: archive %s: %w", archives[0], err)
		}
		layout = l
	}
	var units []indexUnit
	var damaged []Failure
	for i, a := range archives {
		if layout != LayoutILSVRCTrain {
			units = append(units, indexUnit{archive: a, size: sizes[i], objectSize: sizes[i]})
			continue
		}
		top, err := topMembers(ctx, in, a, sizes[i])
		if err != nil {
			if len(top) == 0 {
				return nil, "", err
			}
			damaged = append(damaged, Failure{File: a, Reason: err.Error()})
		}
		for _, m := range top {
			if !strings.HasSuffix(m.Name, ".tar") {
				return nil, "", fmt.Errorf("%w: %s holds %s: an ILSVRC train archive holds one tar per synset", ErrArchive, a, m.Name)
			}
			units = append(units, indexUnit{archive: a, off: m.Off, size: m.Size, objectSize: sizes[i], prefix: m.Name + "/"})
		}
	}
	// Index what the index does not hold yet.
	var tasks []indexTask
	for _, u := range units {
		key := u.indexKey(layout)
		if _, err := idxStore.Stat(ctx, key); err == nil {
			continue
		}
		tasks = append(tasks, indexTask{Input: in.URL(), Index: idxStore.URL(), Key: key, Archive: u.archive, Off: u.off, Size: u.size, ObjectSize: u.objectSize, Prefix: u.prefix, Layout: layout})
	}
	ai := &archiveInput{damaged: damaged, indexed: len(tasks)}
	if len(tasks) > 0 {
		j, err := indexArchive.Map(ctx, ex, tasks, o.MapOptions...)
		if err != nil {
			return nil, "", err
		}
		_, err = j.Results(ctx)
		if !o.KeepJob {
			defer j.Clean(context.WithoutCancel(ctx))
		}
		if err != nil {
			return nil, "", fmt.Errorf("featurize: index the archives: %w", err)
		}
	}
	type item struct {
		file  string
		sp    span
		class string
	}
	var items []item
	for _, u := range units {
		b, err := blob.ReadAll(ctx, idxStore, u.indexKey(layout))
		if err != nil {
			return nil, "", fmt.Errorf("featurize: read the index of %s: %w", u.archive, err)
		}
		var idx archiveIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, "", fmt.Errorf("featurize: the index of %s: %w", u.archive, err)
		}
		if idx.Damage != "" {
			name := u.archive
			if u.prefix != "" {
				name += ":" + strings.TrimSuffix(u.prefix, "/")
			}
			ai.damaged = append(ai.damaged, Failure{File: name, Reason: "archive damaged (" + idx.Damage + "); its members after the damage are not featurized"})
		}
		for _, m := range idx.Members {
			it := item{file: u.archive + ":" + m.Name, sp: span{Archive: u.archive, Off: m.Off, Size: m.Size}}
			if strings.IndexFunc(m.Name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
				// A shard's file list is one name a line, names without
				// blanks: such a member cannot be listed, so it is not read.
				ai.damaged = append(ai.damaged, Failure{File: strconv.Quote(it.file), Reason: "member name with blanks or control characters"})
				continue
			}
			switch layout {
			case LayoutILSVRCTrain:
				it.class = strings.TrimSuffix(strings.SplitN(m.Name, "/", 2)[0], ".tar")
			case LayoutWebDataset:
				if !isImageName(m.Name) {
					continue
				}
				it.class = m.Class
			}
			items = append(items, it)
		}
	}
	// Classes.
	words, ids, err := readSynsets(ctx, in, o.Synsets)
	if err != nil {
		return nil, "", err
	}
	if layout == LayoutILSVRCVal {
		labels, err := readValLabels(ctx, in, o.Labels, ids)
		if err != nil {
			return nil, "", err
		}
		for i := range items {
			base := path.Base(items[i].file[strings.LastIndexByte(items[i].file, ':')+1:])
			stem := strings.TrimSuffix(base, path.Ext(base))
			items[i].class = labels[stem] // "" when unlabelled: a failure below
		}
	}
	var names []string
	if len(words) > 0 {
		for s := range words {
			names = append(names, s)
		}
	} else {
		seen := map[string]bool{}
		for _, it := range items {
			if it.class != "" && !seen[it.class] {
				seen[it.class] = true
				names = append(names, it.class)
			}
		}
	}
	if layout == LayoutWebDataset && allInts(names) {
		sort.Slice(names, func(a, b int) bool { x, _ := strconv.Atoi(names[a]); y, _ := strconv.Atoi(names[b]); return x < y })
	} else {
		sort.Strings(names)
	}
	classIdx := map[string]int{}
	for i, c := range names {
		classIdx[c] = i
		if w := words[c]; w != "" {
			names[i] = c + " " + w
		}
	}
	sort.Slice(items, func(a, b int) bool { return items[a].file < items[b].file })
	ai.classes = names
	for _, it := range items {
		c, ok := classIdx[it.class]
		if !ok {
			reason := "no class"
			if it.class != "" {
				reason = fmt.Sprintf("class %q is not in the synset table", it.class)
			}
			ai.damaged = append(ai.damaged, Failure{File: it.file, Reason: reason})
			continue
		}
		ai.files = append(ai.files, it.file)
		ai.spans = append(ai.spans, it.sp)
		ai.labels = append(ai.labels, int32(c))
	}
	return ai, layout, nil
}

func allInts(s []string) bool {
	for _, v := range s {
		if _, err := strconv.Atoi(v); err != nil {
			return false
		}
	}
	return len(s) > 0
}

// readSynsets reads a synset table: "<synset> <words>" lines
// (LOC_synset_mapping.txt), or "<ILSVRC2012_ID> <synset> [words]" lines
// (the devkit's table as text). It returns the words by synset and, for
// the second form, the synset of each ID.
func readSynsets(ctx context.Context, st blob.Store, key string) (map[string]string, map[int]string, error) {
	if key == "" {
		return nil, nil, nil
	}
	b, err := blob.ReadAll(ctx, st, key)
	if err != nil {
		return nil, nil, fmt.Errorf("featurize: synset table %s: %w", key, err)
	}
	words, ids := map[string]string{}, map[int]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if id, err := strconv.Atoi(f[0]); err == nil {
			if len(f) < 2 {
				return nil, nil, fmt.Errorf("%w: synset table %s line %d: %q: want <ID> <synset> [words]", ErrArchive, key, n+1, line)
			}
			ids[id] = f[1]
			words[f[1]] = strings.Join(f[2:], " ")
			continue
		}
		words[f[0]] = strings.TrimSpace(strings.TrimPrefix(line, f[0]))
	}
	if len(words) == 0 {
		return nil, nil, fmt.Errorf("%w: synset table %s is empty", ErrArchive, key)
	}
	return words, ids, nil
}

// readValLabels reads validation labels by image stem
// ("ILSVRC2012_val_00000001"): LOC_val_solution.csv (ImageId,
// PredictionString: the first synset), or the devkit's ground truth (the
// ILSVRC2012_ID of image i on line i), mapped by ids.
func readValLabels(ctx context.Context, st blob.Store, key string, ids map[int]string) (map[string]string, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: an ILSVRC val archive needs its labels (Options.Labels: LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt)", ErrArchive)
	}
	b, err := blob.ReadAll(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("featurize: labels %s: %w", key, err)
	}
	out := map[string]string{}
	if bytes.HasPrefix(b, []byte("ImageId,")) {
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("%w: labels %s: %v", ErrArchive, key, err)
		}
		for n, r := range recs[1:] {
			if len(r) < 2 || len(strings.Fields(r[1])) == 0 {
				return nil, fmt.Errorf("%w: labels %s line %d: want ImageId,PredictionString", ErrArchive, key, n+2)
			}
			out[r[0]] = strings.Fields(r[1])[0]
		}
		return out, nil
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: labels %s are the devkit's IDs: give the synset table of the IDs (Options.Synsets, \"<ILSVRC2012_ID> <synset>\" lines)", ErrArchive, key)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n++
		id, err := strconv.Atoi(line)
		if err != nil || ids[id] == "" {
			return nil, fmt.Errorf("%w: labels %s line %d: %q is not an ID of the synset table", ErrArchive, key, n, line)
		}
		out[fmt.Sprintf("ILSVRC2012_val_%08d", n)] = ids[id]
	}
	return out, nil
}
