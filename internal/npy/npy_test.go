package npy

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	data := []float32{1, -2.5, 3e-8, 4, 5, 6}
	if err := Write(&b, data, 2, 3); err != nil {
		t.Fatal(err)
	}
	if (b.Len()-4*len(data))%64 != 0 {
		t.Fatalf("data does not start at a multiple of 64: %d", b.Len()-4*len(data))
	}
	got, shape, err := Read[float32](bytes.NewReader(b.Bytes()))
	if err != nil || len(shape) != 2 || shape[0] != 2 || shape[1] != 3 {
		t.Fatalf("Read: %v %v", shape, err)
	}
	for i := range data {
		if got[i] != data[i] {
			t.Fatalf("value %d = %v, want %v", i, got[i], data[i])
		}
	}
	b.Reset()
	Write(&b, []int64{7, -8})
	ints, shape, err := Read[int64](&b)
	if err != nil || shape[0] != 2 || ints[1] != -8 {
		t.Fatalf("int64 round trip: %v %v %v", ints, shape, err)
	}
}

func TestBad(t *testing.T) {
	var b bytes.Buffer
	Write(&b, []float32{1, 2, 3})
	full := b.Bytes()
	cases := map[string][]byte{
		"truncated data": full[:len(full)-2],
		"not npy":        []byte("hello world, this is not numpy"),
		"empty":          nil,
	}
	for name, in := range cases {
		if _, _, err := Read[float32](bytes.NewReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	if _, _, err := Read[float64](bytes.NewReader(full)); !errors.Is(err, ErrFormat) {
		t.Errorf("wrong dtype: %v", err)
	}
	if err := Write(&b, []float32{1, 2}, 3); err == nil {
		t.Error("shape mismatch accepted")
	}
}

// TestNumpyReads checks the output against numpy when python3 with numpy is
// installed on the machine; the format tests above do not need it.
func TestNumpyReads(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	if exec.Command("python3", "-c", "import numpy").Run() != nil {
		t.Skip("numpy not installed")
	}
	var b bytes.Buffer
	Write(&b, []float32{1.5, 2, 3, 4}, 2, 2)
	cmd := exec.Command("python3", "-c", "import sys,numpy as np,io; a=np.load(io.BytesIO(sys.stdin.buffer.read())); print(a.dtype, a.shape, a.sum())")
	cmd.Stdin = &b
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "float32 (2, 2) 10.5" {
		t.Fatalf("numpy read: %q, %v", out, err)
	}
}

// header builds a .npy header announcing shape, with no data.
func header(descr, shape string) []byte {
	h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }\n"
	b := []byte(magic + "\x01\x00")
	b = append(b, byte(len(h)), byte(len(h)>>8))
	return append(b, h...)
}

// TestHostileHeaders: a header cannot overflow the value count or make the
// reader allocate more than the data it actually holds.
func TestHostileHeaders(t *testing.T) {
	cases := map[string][]byte{
		"overflowing shape": header("<f4", "4294967296, 4294967296, 16"),
		"wrapping to small": header("<f4", "2147483648, 2147483648, 4, 1"),
		"16 GiB, no data":   append(header("<f4", "4294967296,"), 1, 2, 3, 4),
		"negative dim":      header("<f4", "-1,"),
	}
	for name, in := range cases {
		for _, wrap := range []string{"sized", "stream"} {
			var r io.Reader = bytes.NewReader(in)
			if wrap == "stream" { // no Len: the reader must grow with the data
				r = io.MultiReader(bytes.NewReader(in))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := Read[float32](r)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrFormat) {
				t.Errorf("%s (%s): %v, want ErrFormat", name, wrap, err)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 8<<20 {
				t.Errorf("%s (%s): allocated %d bytes for a %d-byte input", name, wrap, grown, len(in))
			}
		}
	}
}

// FuzzRead: no input makes Read panic or allocate beyond its data; what it
// accepts has as many values as its shape announces.
func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	Write(&b, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	f.Add(b.Bytes())
	b.Reset()
	Write(&b, []int32{7})
	f.Add(b.Bytes())
	f.Add(header("<f4", "4294967296, 4294967296, 16"))
	f.Add(header("<f4", "3,"))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, shape, err := Read[float32](bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if n != len(v) {
			t.Fatalf("%d values for shape %v", len(v), shape)
		}
	})
}
