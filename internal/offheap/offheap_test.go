package offheap

import (
	"runtime"
	"testing"
	"time"
)

type rec struct {
	a, b int64
	c    [3]uint32
}

// TestSlice: a large pointer-free array lives outside the heap, zeroed
// and writable; it is freed once its owner is unreachable; small ones and
// pointer-holding types are refused or ordinary.
func TestSlice(t *testing.T) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	owner := new(int)
	s := Slice[rec](1<<20, owner)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if len(s) != 1<<20 || s[12345].a != 0 {
		t.Fatalf("len %d", len(s))
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Fatalf("the heap grew by %d bytes for an off-heap array", grew)
	}
	for i := range s {
		s[i].a, s[i].b, s[i].c[2] = int64(i), int64(-i), uint32(i)
	}
	if s[1<<20-1].c[2] != 1<<20-1 || s[7].b != -7 {
		t.Fatal("write lost")
	}
	runtime.KeepAlive(owner)
	small := Slice[rec](10, owner)
	if len(small) != 10 {
		t.Fatal("small")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a type with pointers was accepted")
			}
		}()
		Slice[struct{ p *int }](1<<20, owner)
	}()
	owner = nil
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
