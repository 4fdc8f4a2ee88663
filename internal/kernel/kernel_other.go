//go:build !amd64 || purego

package kernel

// simdKernels: no assembly micro-kernels on this architecture (or with
// the purego build tag); the portable ones run.
func simdKernels() (d micro[float64], s micro[float32], name string, ok bool) {
	return d, s, "", false
}

// simdAbsSum: none here.
func simdAbsSum() func([]complex128) float64 { return nil }

// hasRadix4: no vector butterflies here.
func hasRadix4() bool { return false }

// radix4AVX2 is never called here (hasRadix4 is false).
func radix4AVX2(p0, p1, p2, p3, wa, wb, wc *complex128, wstep, n, back int) {
	panic("kernel: no vector butterflies on this architecture")
}

// scaleCplxAVX2 is never called here (hasRadix4 is false).
func scaleCplxAVX2(dst, src *complex128, w *float64, n int) {
	panic("kernel: no vector complex scaling on this architecture")
}
