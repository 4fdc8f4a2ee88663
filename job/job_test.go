package job_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/job"
)

// TestIDs: a job ID is one key segment; NewID makes valid, distinct ones.
func TestIDs(t *testing.T) {
	for id, ok := range map[string]bool{
		"20261130-101502-4be7a1": true,
		"x":                      true,
		"my job":                 true,
		strings.Repeat("a", 200): true,
		"":                       false,
		"a/b":                    false,
		"..":                     false,
		".":                      false,
		"/abs":                   false,
		"a\x00b":                 false,
		blob.TempPrefix + "1":    false,
	} {
		if err := job.ValidateID(id); (err == nil) != ok {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	seen := map[string]bool{}
	for range 200 {
		id := job.NewID()
		if err := job.ValidateID(id); err != nil || seen[id] || len(id) != len("20261130-101502-4be7a1") {
			t.Fatalf("NewID %q: %v (seen %v)", id, err, seen[id])
		}
		seen[id] = true
	}
}

// TestLayout: every key of a job lies under its prefix, call names sort
// and parse back, and names that are not calls are told apart.
func TestLayout(t *testing.T) {
	const id = "j1"
	p := job.JobPrefix(id)
	for _, k := range []string{job.ManifestKey(id), job.CodeKey(id), job.SummaryKey(id), job.InputKey(id, 0), job.PackKey(id, 7),
		job.OutputKey(id, 12, 3), job.StatusKey(id, 999999), job.LogKey(id, 1, 0), job.DriverKey(id, 2), job.InvocationKey(id, 5, 1)} {
		if !strings.HasPrefix(k, p) || blob.ValidateKey(k) != nil {
			t.Errorf("key %q outside %q", k, p)
		}
	}
	if a, b := job.StatusKey(id, 9), job.StatusKey(id, 10); a >= b {
		t.Errorf("status keys do not sort by call: %q >= %q", a, b)
	}
	for name, want := range map[string]int{"000042": 42, "000042.3": 42, "1234567": 1234567, "000000": 0} {
		if n, ok := job.ParseCallName(name); !ok || n != want {
			t.Errorf("ParseCallName(%q) = %d, %v", name, n, ok)
		}
	}
	for _, name := range []string{"", "42", "-00001", "abcdef", ".000001", "pack-000001", "0000x1"} {
		if n, ok := job.ParseCallName(name); ok {
			t.Errorf("ParseCallName(%q) = %d, true", name, n)
		}
	}
	if h := strings.Repeat("0a", 32); !job.IsHash(h) || job.IsHash(h[:63]) || job.IsHash(strings.ToUpper(h)) || job.IsHash(h+"0a") || job.IsHash("") {
		t.Error("IsHash")
	}
}

// TestHashFile is the SHA-256 of the file, in lower-case hex.
func TestHashFile(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{0xff}, 3<<20+1)} {
		path := filepath.Join(t.TempDir(), "bin")
		os.WriteFile(path, data, 0o755)
		sum := sha256.Sum256(data)
		if h, err := job.HashFile(path); err != nil || h != hex.EncodeToString(sum[:]) || !job.IsHash(h) {
			t.Errorf("%d bytes: %q, %v", len(data), h, err)
		}
	}
	if _, err := job.HashFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file hashed")
	}
}

// TestPack: a pack holds each input at its ref, with its CRC and the
// pack's size; an index that lies about its ranges, a truncated pack or a
// missing trailer is ErrBadPack.
func TestPack(t *testing.T) {
	for _, inputs := range [][][]byte{
		{},
		{nil},
		{[]byte("zero"), nil, []byte("two"), bytes.Repeat([]byte("x"), 1<<16)},
	} {
		calls := make([]int, len(inputs))
		for i := range calls {
			calls[i] = 10 + i
		}
		key := job.PackKey("j", 10)
		pack, refs := job.EncodePack(key, calls, inputs)
		idx, err := job.ReadPackIndex(pack)
		if err != nil || len(idx.Calls) != len(inputs) {
			t.Fatalf("%d inputs: %+v, %v", len(inputs), idx, err)
		}
		for i, r := range refs {
			got := pack[r.Off : r.Off+r.Len]
			if r.Pack != key || r.Size != int64(len(pack)) || !bytes.Equal(got, inputs[i]) || r.CRC != job.Checksum(inputs[i]) || idx.Refs[i] != r || idx.Calls[i] != calls[i] {
				t.Errorf("input %d: ref %+v, index %+v", i, r, idx.Refs[i])
			}
		}
		// The index is readable from the pack's tail alone.
		data := 0
		for _, in := range inputs {
			data += len(in)
		}
		tail := pack[data:]
		if idx2, err := job.DecodePackIndex(tail, int64(len(pack))); err != nil || len(idx2.Refs) != len(refs) {
			t.Errorf("from the tail: %v", err)
		}
		for name, bad := range map[string][]byte{
			"truncated":   pack[:len(pack)-1],
			"no trailer":  pack[:len(pack)-len(job.PackMagic)],
			"empty":       nil,
			"index grown": append(append([]byte{}, pack[:len(pack)-len(job.PackMagic)-4]...), 0xff, 0xff, 0, 0, 'W', 'R', 'E', 'N', 'P', 'K', '0', '1'),
		} {
			if _, err := job.ReadPackIndex(bad); !errors.Is(err, job.ErrBadPack) {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	// An index naming a range past the data.
	pack, _ := job.EncodePack("k", []int{0}, [][]byte{[]byte("abc")})
	lying := bytes.Replace(pack, []byte(`"n":3`), []byte(`"n":9`), 1)
	if _, err := job.ReadPackIndex(lying); !errors.Is(err, job.ErrBadPack) {
		t.Errorf("a range past the data: %v", err)
	}
}

// FuzzReadPackIndex: no bytes make the index reader panic, and every
// range it accepts lies within the data before the index.
func FuzzReadPackIndex(f *testing.F) {
	pack, _ := job.EncodePack("k", []int{0, 1}, [][]byte{[]byte("ab"), []byte("cde")})
	f.Add(pack)
	f.Add([]byte(job.PackMagic))
	f.Add([]byte("\x00\x00\x00\x00" + job.PackMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := job.ReadPackIndex(b)
		if err != nil {
			return
		}
		for _, r := range idx.Refs {
			if r.Off < 0 || r.Len < 0 || r.Off+r.Len > int64(len(b)) || r.Size != int64(len(b)) {
				t.Fatalf("accepted ref %+v in a pack of %d bytes", r, len(b))
			}
		}
	})
}

// TestErrorKinds: a kind is an error that errors.Is matches through
// Classify and wrapping; a status's Error carries its kind.
func TestErrorKinds(t *testing.T) {
	base := errors.New("disk on fire")
	err := job.Classify(job.KindTimeout, base)
	wrapped := errors.Join(errors.New("ctx"), err)
	if !errors.Is(wrapped, job.KindTimeout) || !errors.Is(wrapped, base) || errors.Is(wrapped, job.KindPanic) {
		t.Fatalf("Classify: %v", wrapped)
	}
	if job.KindTimeout.Error() == "" || string(job.KindTimeout) != "timeout" {
		t.Errorf("kind text %q", job.KindTimeout.Error())
	}
}

// TestReadStatus: a missing status is not an error; a corrupt one is.
func TestReadStatus(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	if _, ok, err := job.ReadStatus(ctx, st, "j", 0); ok || err != nil {
		t.Fatalf("missing: %v %v", ok, err)
	}
	blob.PutBytes(ctx, st, job.StatusKey("j", 1), []byte(`{"ok":true,"attempt":2}`), blob.PutOptions{})
	if s, ok, err := job.ReadStatus(ctx, st, "j", 1); !ok || err != nil || !s.OK || s.Attempt != 2 {
		t.Fatalf("stored: %+v %v %v", s, ok, err)
	}
	blob.PutBytes(ctx, st, job.StatusKey("j", 2), []byte(`{"ok":tr`), blob.PutOptions{})
	if _, _, err := job.ReadStatus(ctx, st, "j", 2); err == nil {
		t.Fatal("a corrupt status read")
	}
}
