// Package offheap allocates large arrays of pointer-free values outside
// the Go heap. The garbage collector lets its heap grow to about twice
// what is live before it collects; per-call tables of a map of millions of
// calls would double in the driver's memory that way. Outside the heap
// they cost their size.
package offheap

import (
	"fmt"
	"reflect"
	"runtime"
	"unsafe"
)

// MinBytes is the smallest array placed outside the heap; smaller ones
// are ordinary slices.
const MinBytes = 1 << 20

// Slice returns a zeroed slice of n values and the function that frees
// it. T must hold no pointers (Slice panics otherwise: the collector does
// not see memory outside its heap). Nothing may use the slice after free;
// a slice that is never freed is released when owner becomes unreachable.
func Slice[T, O any](n int, owner *O) []T {
	var zero T
	if hasPointers(reflect.TypeOf(zero)) {
		panic(fmt.Sprintf("offheap: %T holds pointers", zero))
	}
	size := int(unsafe.Sizeof(zero)) * n
	if size < MinBytes || n <= 0 {
		return make([]T, n)
	}
	mem, err := mmap(size)
	if err != nil {
		return make([]T, n)
	}
	s := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(mem))), n)
	runtime.AddCleanup(owner, func(mem []byte) { munmap(mem) }, mem)
	return s
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.String, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
