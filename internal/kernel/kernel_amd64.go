//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

//go:noescape
func dkernAVX2(k int, a, b, c *float64, ldc int, alpha float64)

//go:noescape
func skernAVX2(k int, a, b, c *float32, ldc int, alpha float32)

//go:noescape
func dkernDirectAVX2(k int, a *float64, lda int, b, c *float64, ldc int, alpha float64)

//go:noescape
func skernDirectAVX2(k int, a *float32, lda int, b, c *float32, ldc int, alpha float32)

//go:noescape
func absSumAVX2(z []complex128) float64

//go:noescape
func radix4AVX2(p0, p1, p2, p3, wa, wb, wc *complex128, wstep, n, back int)

//go:noescape
func scaleCplxAVX2(dst, src *complex128, w *float64, n int)

// hasRadix4 reports whether radix4AVX2 runs here.
func hasRadix4() bool { return cpu.X86.HasAVX2 }

// simdAbsSum returns the CPU's AbsSum, nil without AVX2.
func simdAbsSum() func([]complex128) float64 {
	if !cpu.X86.HasAVX2 {
		return nil
	}
	return absSumAVX2
}

// simdKernels returns the CPU's micro-kernels, ok false without AVX2 and
// FMA.
func simdKernels() (d micro[float64], s micro[float32], name string, ok bool) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return d, s, "", false
	}
	return micro[float64]{nr: 8, kern: dkernAVX2, direct: dkernDirectAVX2},
		micro[float32]{nr: 16, kern: skernAVX2, direct: skernDirectAVX2}, "avx2-fma", true
}
