// Package kernel multiplies matrices at the hardware's speed in pure Go
// and Go assembly: packed panels, cache blocking and register-tiled
// micro-kernels using FMA on AVX2 where the CPU has it (chosen at run
// time), a portable Go micro-kernel elsewhere. Dgemm, Sgemm and Dsyrk
// follow BLAS (row-major, as gonum's blas64 and blas32); Float64 and
// Float32 plug them into gonum (Install), so gonum's mat and everything
// built on it use them.
package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// elem is a matrix element type.
type elem interface{ ~float32 | ~float64 }

// Blocking: a packed A block is mc x kc (it stays in the L2 cache), a
// packed B panel kc x nc (the L3 cache), a micro-tile mr x nr (registers).
const (
	kc = 256
	mc = 96 // a multiple of mr
	nc = 2048
	mr = 6
)

// micro is a micro-kernel: c[mr x nr] (row stride ldc) += alpha * a·b over
// k steps, a packed mr values a step, b nr values a step.
type micro[T elem] struct {
	nr   int
	kern func(k int, a, b, c *T, ldc int, alpha T)
	// direct, when set, is kern reading A in place: mr rows of stride
	// lda, for products too thin (few columns of C) to repay packing A.
	direct func(k int, a *T, lda int, b, c *T, ldc int, alpha T)
	// serial runs the product on the calling goroutine alone.
	serial bool
}

// directBelow: a product of fewer columns than directBelow * nr reads A in
// place (packing A costs a pass over it that few column panels repay).
const directBelow = 4

// view is a matrix as BLAS gives it: op(X)[i][j] is data[i*ld+j], or
// data[j*ld+i] when trans.
type view[S elem] struct {
	data  []S
	ld    int
	trans bool
}

// Triangle of C a product writes.
const (
	full = iota
	upper
	lower
)

var maxThreads atomic.Int32

// SetMaxThreads caps the goroutines one product uses (n <= 0: GOMAXPROCS,
// the default) and returns the previous cap.
func SetMaxThreads(n int) int {
	return int(maxThreads.Swap(int32(max(n, 0))))
}

func threads() int {
	if n := int(maxThreads.Load()); n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// scale applies beta to C's region (the triangle tri of an m x n C):
// beta 0 sets zeros (NaN and Inf in C do not survive, as BLAS says).
func scale[T elem](m, n int, beta T, c []T, ldc, tri int) {
	if beta == 1 {
		return
	}
	for i := range m {
		lo, hi := 0, n
		switch tri {
		case upper:
			lo = i
		case lower:
			hi = i + 1
		}
		row := c[i*ldc+lo : i*ldc+hi]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// gemm computes C = alpha*op(A)*op(B) + beta*C for the triangle tri of C
// (m x n, op(A) m x k, op(B) k x n), converting A's and B's elements S to
// T while packing them.
func gemm[S, T elem](m, n, k int, alpha T, a, b view[S], beta T, c []T, ldc, tri int, mk micro[T]) {
	if m == 0 || n == 0 {
		return
	}
	scale(m, n, beta, c, ldc, tri)
	if k == 0 || alpha == 0 {
		return
	}
	nr := mk.nr
	// A read in place: not transposed, no conversion, few columns.
	ad, same := any(a.data).([]T)
	direct := mk.direct != nil && same && !a.trans && n < directBelow*nr
	nth := threads()
	if mk.serial {
		nth = 1
	}
	if work := float64(m) * float64(n) * float64(k); work < 1<<20 || m <= mr {
		nth = 1
	}
	nth = min(nth, (m+mc-1)/mc)
	ncc := min(nc, (n+nr-1)/nr*nr)
	bp := getBuf[T](kc * ncc)
	defer putBuf(bp)
	aps := make([][]T, nth)
	for t := range aps {
		aps[t] = getBuf[T](min(mc, (m+mr-1)/mr*mr) * kc)
		defer putBuf(aps[t])
	}
	var wg sync.WaitGroup
	for j0 := 0; j0 < n; j0 += nc {
		nn := min(nc, n-j0)
		for p0 := 0; p0 < k; p0 += kc {
			kk := min(kc, k-p0)
			block := func(t, i0 int) {
				mm := min(mc, m-i0)
				if tri == upper && i0 >= j0+nn || tri == lower && i0+mm <= j0 {
					return // the block is outside the triangle
				}
				var in *directA[T]
				if direct {
					in = &directA[T]{data: ad[i0*a.ld+p0:], ld: a.ld, edge: aps[t]}
					// Only a last panel of fewer than mr rows is packed.
					if full := mm / mr * mr; full < mm {
						packA(aps[t][full*kk:], a, i0+full, p0, mm-full, kk)
					}
				} else {
					packA(aps[t], a, i0, p0, mm, kk)
				}
				macro(mm, nn, kk, alpha, aps[t], in, bp, c[i0*ldc+j0:], ldc, tri, i0-j0, mk)
			}
			if nth == 1 {
				packB(bp, b, p0, j0, kk, nn, nr)
				for i0 := 0; i0 < m; i0 += mc {
					block(0, i0)
				}
				continue
			}
			// Each goroutine packs its share of B's micro-panels, then all
			// take A blocks as they come (a triangle's blocks differ in
			// work).
			panels := (nn + nr - 1) / nr
			var next atomic.Int64
			var packed sync.WaitGroup
			packed.Add(nth)
			wg.Add(nth)
			for t := range nth {
				go func() {
					defer wg.Done()
					lo, hi := t*panels/nth*nr, min((t+1)*panels/nth*nr, nn)
					if lo < hi {
						packB(bp[lo*kk:], b, p0, j0+lo, kk, hi-lo, nr)
					}
					packed.Done()
					packed.Wait()
					for {
						i0 := int(next.Add(1)-1) * mc
						if i0 >= m {
							return
						}
						block(t, i0)
					}
				}()
			}
			wg.Wait()
		}
	}
}

// bufs keeps packing buffers between products, by element type.
var bufs [2]sync.Pool

func poolOf[T elem]() *sync.Pool {
	var z T
	if _, ok := any(z).(float32); ok {
		return &bufs[0]
	}
	return &bufs[1]
}

// getBuf returns a buffer of n elements (not cleared: packing writes
// every element it reads).
func getBuf[T elem](n int) []T {
	if p, ok := poolOf[T]().Get().(*[]T); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]T, n)
}

func putBuf[T elem](b []T) {
	poolOf[T]().Put(&b)
}

// directA is an A block read in place: its rows from data (stride ld);
// a last panel of fewer than mr rows is packed in edge at its place.
type directA[T elem] struct {
	data []T
	ld   int
	edge []T
}

// macro multiplies a packed A block (mm x kk; or, with in, read in place)
// by a packed B panel (kk x nn) into c; diag is the row of C's block minus
// its column (for a triangle).
func macro[T elem](mm, nn, kk int, alpha T, ap []T, in *directA[T], bp []T, c []T, ldc, tri, diag int, mk micro[T]) {
	nr := mk.nr
	var buf [mr * 16]T
	for jr := 0; jr < nn; jr += nr {
		cols := min(nr, nn-jr)
		bq := bp[jr*kk:]
		for ir := 0; ir < mm; ir += mr {
			rows := min(mr, mm-ir)
			// Rows i (ir..ir+rows) against columns j (jr..jr+cols), in C
			// coordinates i+diag against j.
			i, j := ir+diag, jr
			need, whole := true, rows == mr && cols == nr
			switch tri {
			case upper: // j >= i
				need = j+cols-1 >= i
				whole = whole && j >= i+rows-1
			case lower: // j <= i
				need = j <= i+rows-1
				whole = whole && j+cols-1 <= i
			}
			if !need {
				continue
			}
			aq := ap[ir*kk:]
			direct := in != nil && rows == mr
			ct := c[ir*ldc+jr:]
			if whole {
				if direct {
					mk.direct(kk, &in.data[ir*in.ld], in.ld, &bq[0], &ct[0], ldc, alpha)
				} else {
					mk.kern(kk, &aq[0], &bq[0], &ct[0], ldc, alpha)
				}
				continue
			}
			clear(buf[:mr*nr])
			if direct {
				mk.direct(kk, &in.data[ir*in.ld], in.ld, &bq[0], &buf[0], nr, alpha)
			} else {
				mk.kern(kk, &aq[0], &bq[0], &buf[0], nr, alpha)
			}
			for r := range rows {
				lo, hi := 0, cols
				switch tri {
				case upper:
					lo = max(0, i+r-j)
				case lower:
					hi = min(cols, i+r-j+1)
				}
				for q := lo; q < hi; q++ {
					ct[r*ldc+q] += buf[r*nr+q]
				}
			}
		}
	}
}

// packA copies op(A)[i0:i0+mm, p0:p0+kk] into micro-panels of mr rows, a
// step's mr values together, zero-padded.
func packA[S, T elem](dst []T, a view[S], i0, p0, mm, kk int) {
	q := 0
	for ir := 0; ir < mm; ir += mr {
		rows := min(mr, mm-ir)
		d := dst[q : q+mr*kk]
		if rows < mr {
			clear(d)
		}
		if !a.trans {
			for r := range rows {
				src := a.data[(i0+ir+r)*a.ld+p0:]
				src = src[:kk]
				for p, v := range src {
					d[p*mr+r] = T(v)
				}
			}
		} else {
			for p := range kk {
				src := a.data[(p0+p)*a.ld+i0+ir:]
				src = src[:rows]
				dp := d[p*mr : p*mr+rows]
				for r, v := range src {
					dp[r] = T(v)
				}
			}
		}
		q += mr * kk
	}
}

// packB copies op(B)[p0:p0+kk, j0:j0+nn] into micro-panels of nr columns,
// a step's nr values together, zero-padded.
func packB[S, T elem](dst []T, b view[S], p0, j0, kk, nn, nr int) {
	q := 0
	for jr := 0; jr < nn; jr += nr {
		cols := min(nr, nn-jr)
		d := dst[q : q+nr*kk]
		if cols < nr {
			clear(d)
		}
		if !b.trans {
			for p := range kk {
				src := b.data[(p0+p)*b.ld+j0+jr:]
				src = src[:cols]
				dp := d[p*nr : p*nr+cols]
				for c, v := range src {
					dp[c] = T(v)
				}
			}
		} else {
			for c := range cols {
				src := b.data[(j0+jr+c)*b.ld+p0:]
				src = src[:kk]
				for p, v := range src {
					d[p*nr+c] = T(v)
				}
			}
		}
		q += nr * kk
	}
}

// kernGo is the portable micro-kernel.
func kernGo[T elem](nr int) func(k int, a, b, c *T, ldc int, alpha T) {
	return func(k int, a, b, c *T, ldc int, alpha T) {
		as := unsafe.Slice(a, k*mr)
		bs := unsafe.Slice(b, k*nr)
		var acc [mr * 16]T
		for p := range k {
			ap := as[p*mr : p*mr+mr]
			bp := bs[p*nr : p*nr+nr]
			for r, av := range ap {
				row := acc[r*nr : r*nr+nr]
				for q, bv := range bp {
					row[q] += av * bv
				}
			}
		}
		cs := unsafe.Slice(c, (mr-1)*ldc+nr)
		for r := range mr {
			row := cs[r*ldc : r*ldc+nr]
			for q := range row {
				row[q] += alpha * acc[r*nr+q]
			}
		}
	}
}

// kernGoDirect is the portable micro-kernel reading A in place.
func kernGoDirect[T elem](nr int) func(k int, a *T, lda int, b, c *T, ldc int, alpha T) {
	return func(k int, a *T, lda int, b, c *T, ldc int, alpha T) {
		as := unsafe.Slice(a, (mr-1)*lda+k)
		bs := unsafe.Slice(b, k*nr)
		var acc [mr * 16]T
		for r := range mr {
			ar := as[r*lda : r*lda+k]
			row := acc[r*nr : r*nr+nr]
			for p, av := range ar {
				bp := bs[p*nr : p*nr+nr]
				for q, bv := range bp {
					row[q] += av * bv
				}
			}
		}
		cs := unsafe.Slice(c, (mr-1)*ldc+nr)
		for r := range mr {
			row := cs[r*ldc : r*ldc+nr]
			for q := range row {
				row[q] += alpha * acc[r*nr+q]
			}
		}
	}
}
