package kernel

import (
	"math"
	"os"
)

//go:generate go run gen/main.go

// The micro-kernels in use: the CPU's (AVX2 with FMA) unless the
// environment variable WREN_KERNEL is "go", else the portable ones.
var (
	dmk  micro[float64]
	smk  micro[float32]
	name string
)

func init() { choose(envSIMD()) }

// envSIMD reports whether the environment allows the CPU's micro-kernels.
func envSIMD() bool { return os.Getenv("WREN_KERNEL") != "go" }

// absSum is AbsSum's implementation.
var absSum func([]complex128) float64

// AbsSum returns the sum of |z| over z (summed in an order of its own:
// the result may differ from a sequential sum by rounding).
func AbsSum(z []complex128) float64 { return absSum(z) }

func absSumGo(z []complex128) float64 {
	var s float64
	for _, v := range z {
		s += math.Sqrt(real(v)*real(v) + imag(v)*imag(v))
	}
	return s
}

// vecRadix4 runs Radix4's vector loop (radix4AVX2, called directly so
// that its arguments stay on the caller's stack).
var vecRadix4 bool

// Radix4 runs radix-4 butterflies on four equally long rows in place: for
// each i, a0 = p0[i], a1 = p1[i]*wa[i], a2 = p2[i]*wb[i], a3 = p3[i]*wc[i]
// (a twiddle slice of length 1 applies to every i), then the 4-point DFT
// of a0..a3 (with -i, or +i when backward) back into p0..p3. It rounds as
// the same arithmetic in Go does (no fused multiply-add).
func Radix4(p0, p1, p2, p3, wa, wb, wc []complex128, backward bool) {
	n := len(p0)
	p1, p2, p3 = p1[:n], p2[:n], p3[:n]
	vec := len(wa) != 1
	if vec {
		wa, wb, wc = wa[:n], wb[:n], wc[:n]
	}
	i := 0
	if vecRadix4 && n >= 2 {
		back, step := 0, 32
		if backward {
			back = 1
		}
		var pa, pb, pc [2]complex128
		a, b, c := &wa[0], &wb[0], &wc[0]
		if !vec {
			pa, pb, pc = [2]complex128{wa[0], wa[0]}, [2]complex128{wb[0], wb[0]}, [2]complex128{wc[0], wc[0]}
			a, b, c, step = &pa[0], &pb[0], &pc[0], 0
		}
		radix4AVX2(&p0[0], &p1[0], &p2[0], &p3[0], a, b, c, step, n&^1, back)
		i = n &^ 1
	}
	for ; i < n; i++ {
		j := i
		if !vec {
			j = 0
		}
		a0, a1, a2, a3 := p0[i], p1[i]*wa[j], p2[i]*wb[j], p3[i]*wc[j]
		s01, d01 := a0+a1, a0-a1
		s23, d23 := a2+a3, a2-a3
		r23 := complex(imag(d23), -real(d23))
		if backward {
			r23 = -r23
		}
		p0[i], p1[i], p2[i], p3[i] = s01+s23, d01+r23, s01-s23, d01-r23
	}
}

// ScaleComplex sets dst[i] = src[i] * w[i] for a real w (dst and src may
// be the same slice), rounding as Go's complex(real*w, imag*w) does.
func ScaleComplex(dst, src []complex128, w []float64) {
	n := len(dst)
	src, w = src[:n], w[:n]
	i := 0
	if vecRadix4 && n >= 2 {
		scaleCplxAVX2(&dst[0], &src[0], &w[0], n&^1)
		i = n &^ 1
	}
	for ; i < n; i++ {
		dst[i] = complex(real(src[i])*w[i], imag(src[i])*w[i])
	}
}

// choose selects the micro-kernels: the CPU's when simd and available.
func choose(simd bool) {
	vecRadix4 = simd && hasRadix4()
	absSum = absSumGo
	if f := simdAbsSum(); simd && f != nil {
		absSum = f
	}
	if d, s, n, ok := simdKernels(); simd && ok {
		dmk, smk, name = d, s, n
		return
	}
	dmk = micro[float64]{nr: 8, kern: kernGo[float64](8), direct: kernGoDirect[float64](8)}
	smk = micro[float32]{nr: 16, kern: kernGo[float32](16), direct: kernGoDirect[float32](16)}
	name = "go"
}

// Name names the micro-kernels in use: "avx2-fma" or "go" (portable).
func Name() string { return name }

// Dgemm computes C = alpha*op(A)*op(B) + beta*C, row-major: C is m x n
// (row stride ldc), op(A) is A (m x k, stride lda) or, with tA, A' (A
// k x m); op(B) likewise k x n. Slices must hold the matrices (the
// gonum adapter, Float64, checks and panics as BLAS does).
func Dgemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemm(m, n, k, alpha, view[float64]{a, lda, tA}, view[float64]{b, ldb, tB}, beta, c, ldc, full, dmk)
}

// DgemmSerial is Dgemm on the calling goroutine alone, for callers that
// already keep every core busy (one image per core, say).
func DgemmSerial(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	mk := dmk
	mk.serial = true
	gemm(m, n, k, alpha, view[float64]{a, lda, tA}, view[float64]{b, ldb, tB}, beta, c, ldc, full, mk)
}

// Sgemm is Dgemm in float32.
func Sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(m, n, k, alpha, view[float32]{a, lda, tA}, view[float32]{b, ldb, tB}, beta, c, ldc, full, smk)
}

// Dsyrk computes C = alpha*op(A)*op(A)' + beta*C on C's upper (or lower)
// triangle, C n x n: op(A) is A (n x k) or, with trans, A' (A k x n).
func Dsyrk(up, trans bool, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	syrk(up, trans, n, k, alpha, a, lda, beta, c, ldc)
}

// Dsyrk32 is Dsyrk of a float32 A accumulated in float64 (featurize's
// shards are float32; their X'X is not).
func Dsyrk32(up, trans bool, n, k int, alpha float64, a []float32, lda int, beta float64, c []float64, ldc int) {
	syrk(up, trans, n, k, alpha, a, lda, beta, c, ldc)
}

func syrk[S elem](up, trans bool, n, k int, alpha float64, a []S, lda int, beta float64, c []float64, ldc int) {
	tri := lower
	if up {
		tri = upper
	}
	// op(A)·op(A)': the left factor is op(A), the right its transpose.
	gemm(n, n, k, alpha, view[S]{a, lda, trans}, view[S]{a, lda, !trans}, beta, c, ldc, tri, dmk)
}
