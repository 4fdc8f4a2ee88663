//go:build !amd64 || purego

package kernel

// simdKernels: no assembly micro-kernels on this architecture (or with
// the purego build tag); the portable ones run.
func simdKernels() (d micro[float64], s micro[float32], name string, ok bool) {
	return d, s, "", false
}

// simdAbsSum: none here.
func simdAbsSum() func([]complex128) float64 { return nil }
