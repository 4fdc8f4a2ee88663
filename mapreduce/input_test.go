package mapreduce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
)

// TestLineSplits cuts texts at every split size and checks that the lines
// of all splits, in order, are the text's lines: none lost or counted
// twice at a boundary, whatever the boundary cuts (a line, a "\r\n", an
// empty line, the end of an object without a final newline).
func TestLineSplits(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	texts := map[string]string{
		"a": "one\ntwo\n\nthree four\r\nfive",
		"b": "\n\n\nx\n",
		"c": "no newline at all",
		"d": "",
	}
	var sb strings.Builder
	for range 200 {
		for range rng.IntN(30) {
			sb.WriteByte(byte('a' + rng.IntN(26)))
		}
		if rng.IntN(5) == 0 {
			sb.WriteByte('\r')
		}
		sb.WriteByte('\n')
	}
	texts["e"] = sb.String()
	st := memblob.New()
	var want []string
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := blob.PutBytes(ctx, st, k, []byte(texts[k]), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if texts[k] == "" {
			continue
		}
		lines := strings.Split(strings.TrimSuffix(texts[k], "\n"), "\n")
		for _, l := range lines {
			want = append(want, strings.TrimSuffix(l, "\r"))
		}
	}
	for _, size := range []int64{1, 2, 3, 5, 7, 16, 100, 1 << 20} {
		objs, total, err := listInput(ctx, st, 0)
		if err != nil {
			t.Fatal(err)
		}
		splits := splitInput(objs, 0, size)
		if total != int64(len(texts["a"])+len(texts["b"])+len(texts["c"])+len(texts["e"])) {
			t.Fatalf("size %d: total %d", size, total)
		}
		var got []string
		var covered int64
		for _, s := range splits {
			for _, r := range s.Ranges {
				covered += r.Len
				err := eachLine(ctx, st, r, 1<<10, func(line []byte) error {
					got = append(got, string(line))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if covered != total {
			t.Errorf("size %d: splits cover %d bytes of %d", size, covered, total)
		}
		if !slices.Equal(got, want) {
			t.Errorf("size %d: %d lines, want %d\n got %q\nwant %q", size, len(got), len(want), got[:min(len(got), 10)], want[:10])
		}
	}
}

func TestRecordSplits(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	for k, n := range map[string]int{"a": 7, "b": 1, "c": 30} {
		if err := blob.PutBytes(ctx, st, k, make([]byte, n*RecordSize), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int64{1, 99, 100, 250, 1000, 1 << 20} {
		objs, total, err := listInput(ctx, st, RecordSize)
		if err != nil {
			t.Fatal(err)
		}
		splits := splitInput(objs, RecordSize, size)
		var covered int64
		for _, s := range splits {
			for _, r := range s.Ranges {
				if r.Off%RecordSize != 0 || r.Len%RecordSize != 0 || r.Len == 0 {
					t.Fatalf("size %d: range %+v cuts a record", size, r)
				}
				covered += r.Len
			}
		}
		if covered != total || total != 38*RecordSize {
			t.Errorf("size %d: covered %d of %d", size, covered, total)
		}
	}
	blob.PutBytes(ctx, st, "d", make([]byte, 150), blob.PutOptions{})
	if _, _, err := listInput(ctx, st, RecordSize); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "d holds 150 bytes") {
		t.Errorf("a 150-byte record file: err = %v", err)
	}
}

func TestLongLine(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	text := "short\n" + strings.Repeat("x", 5000) + "\nshort\n"
	blob.PutBytes(ctx, st, "a", []byte(text), blob.PutOptions{})
	for _, size := range []int64{3, 100, 1 << 20} {
		objs, _, _ := listInput(ctx, st, 0)
		splits := splitInput(objs, 0, size)
		var err error
		for _, s := range splits {
			for _, r := range s.Ranges {
				if e := eachLine(ctx, st, r, 1000, func([]byte) error { return nil }); e != nil && err == nil {
					err = e
				}
			}
		}
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "MaxLine") {
			t.Errorf("size %d: err = %v, want a MaxLine error", size, err)
		}
	}
}

func TestRunFormat(t *testing.T) {
	var b []byte
	b = appendRecord(b, "k1", []byte("v1"))
	b = appendRecord(b, "", nil)
	b = appendRecord(b, "k3", []byte(strings.Repeat("v", 300)))
	r := &runReader{b: b}
	var keys []string
	for r.next() {
		keys = append(keys, string(r.key))
	}
	if r.err != nil || !slices.Equal(keys, []string{"k1", "", "k3"}) {
		t.Fatalf("keys %q, err %v", keys, r.err)
	}
	r = &runReader{b: b[:len(b)-1]}
	for r.next() {
	}
	if !errors.Is(r.err, ErrCorrupt) {
		t.Errorf("truncated run: err = %v", r.err)
	}
}

// FuzzRunReader feeds the shuffle's record reader arbitrary bytes: it
// never panics, and what it reads re-encodes to the bytes it consumed.
func FuzzRunReader(f *testing.F) {
	f.Add(appendRecord(appendRecord(nil, "a", []byte("1")), "bb", nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &runReader{b: b}
		var again []byte
		for r.next() {
			again = appendRecord(again, string(r.key), r.val)
		}
		if r.err == nil && len(again) > len(b) {
			t.Fatalf("read %d bytes of records from %d", len(again), len(b))
		}
		if r.err == nil && !bytes.Equal(again, b[:len(again)]) && len(again) == len(b) {
			t.Fatalf("records re-encode differently")
		}
	})
}

// TestRunChunks reads a run handed out in chunks of every size, cut
// anywhere (in a length, a key, a value): the same records come out.
func TestRunChunks(t *testing.T) {
	var b []byte
	var want []string
	for i := range 300 {
		k := strings.Repeat("k", i%7) + fmt.Sprint(i)
		v := strings.Repeat("v", (i*37)%300)
		b = appendRecord(b, k, []byte(v))
		want = append(want, k+"="+v)
	}
	for _, size := range []int{1, 2, 3, 7, 64, 129, 1000, len(b)} {
		rest := b
		r := &runReader{more: func() ([]byte, error) {
			if len(rest) == 0 {
				return nil, io.EOF
			}
			n := min(size, len(rest))
			c := rest[:n:n]
			rest = rest[n:]
			return c, nil
		}}
		var got []string
		for r.next() {
			got = append(got, string(r.key)+"="+string(r.val))
		}
		if r.err != nil || !slices.Equal(got, want) {
			t.Fatalf("chunks of %d: %d records, err %v", size, len(got), r.err)
		}
	}
	// A run cut short, and a failing fetch.
	r := &runReader{more: func() func() ([]byte, error) {
		sent := false
		return func() ([]byte, error) {
			if sent {
				return nil, io.EOF
			}
			sent = true
			return b[:len(b)-5], nil
		}
	}()}
	for r.next() {
	}
	if !errors.Is(r.err, ErrCorrupt) {
		t.Errorf("a truncated run: err = %v", r.err)
	}
	boom := errors.New("the shuffle went away")
	r = &runReader{more: func() ([]byte, error) { return nil, boom }}
	if r.next() || !errors.Is(r.err, boom) {
		t.Errorf("a failing fetch: err = %v", r.err)
	}
}

// TestFetchChunks reads a range of a shuffle object in chunks and gets
// exactly its bytes.
func TestFetchChunks(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sh, err := openShuffle(ctx, "mem://fetch-chunks")
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.put(ctx, "obj", data); err != nil {
		t.Fatal(err)
	}
	sem := make(chan struct{}, 2)
	for _, c := range []struct{ off, n, chunk int64 }{{0, 1 << 20, 100 << 10}, {12345, 500000, 64 << 10}, {5, 10, 4 << 20}, {7, 0, 10}} {
		more := fetchChunks(ctx, sh, sem, "obj", c.off, c.n, c.chunk)
		var got []byte
		for {
			b, err := more()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) > c.chunk {
				t.Fatalf("a chunk of %d bytes, over %d", len(b), c.chunk)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, data[c.off:c.off+c.n]) {
			t.Errorf("%+v: %d bytes, not the range", c, len(got))
		}
	}
	more := fetchChunks(ctx, sh, sem, "missing", 0, 100, 10)
	if _, err := more(); err == nil {
		t.Error("a missing object: no error")
	}
}

// TestAddWords counts words across lines longer than its buffer exactly
// as EachWord does on the whole text.
func TestAddWords(t *testing.T) {
	var sb strings.Builder
	for i := range 400000 { // one 3 MB line, then short ones
		fmt.Fprintf(&sb, "w%d ", i%1000)
	}
	sb.WriteString("\nshort line\n√ünïcode wörds_1 x\n")
	text := sb.String()
	want := map[string]int{}
	EachWord(text, func(w string) { want[w]++ })
	got := map[string]int{}
	n, err := AddWords(strings.NewReader(text), got)
	if err != nil || n != int64(len(text)) {
		t.Fatalf("AddWords: %d bytes, %v", n, err)
	}
	if len(got) != len(want) || got["w999"] != 400 || got["wörds_1"] != 1 || got["√ünïcode"] != 0 || got["ünïcode"] != 1 {
		t.Fatalf("%d words (want %d), w999 %d, wörds_1 %d, ünïcode %d", len(got), len(want), got["w999"], got["wörds_1"], got["ünïcode"])
	}
	for w, c := range want {
		if got[w] != c {
			t.Fatalf("%q: %d, want %d", w, got[w], c)
		}
	}
}
