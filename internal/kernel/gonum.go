package kernel

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// Float64 is gonum's float64 BLAS with this package's Dgemm and Dsyrk:
// blas64.Use(Float64{}) makes gonum's mat use them. Its methods panic on
// bad arguments as gonum's do (they are gonum's checks).
type Float64 struct{ gonum.Implementation }

// Float32 is gonum's float32 BLAS with this package's Sgemm.
type Float32 struct{ gonum.Implementation }

var install sync.Once

// Install makes gonum's blas64 and blas32 (and so gonum's mat) use this
// package's products, once per process.
func Install() {
	install.Do(func() {
		blas64.Use(Float64{})
		blas32.Use(Float32{})
	})
}

// gemmOK reports arguments a product can take; anything else goes to
// gonum, which panics with BLAS's message.
func gemmOK(tA, tB blas.Transpose, m, n, k, lda, ldb, ldc, la, lb, lc int) bool {
	okT := func(t blas.Transpose) bool { return t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans }
	if !okT(tA) || !okT(tB) || m < 0 || n < 0 || k < 0 {
		return false
	}
	ar, ac := m, k
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	if lda < max(1, ac) || ldb < max(1, bc) || ldc < max(1, n) {
		return false
	}
	if m == 0 || n == 0 {
		return true
	}
	return la >= need(ar, ac, lda) && lb >= need(br, bc, ldb) && lc >= need(m, n, ldc)
}

// need is the length a matrix of r x c with row stride ld takes.
// (What gonum asks of a matrix of at least one row.)
func need(r, c, ld int) int { return ld*(r-1) + c }

// Dgemm computes C = alpha*op(A)*op(B) + beta*C.
func (f Float64) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if !gemmOK(tA, tB, m, n, k, lda, ldb, ldc, len(a), len(b), len(c)) {
		f.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	Dgemm(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dsyrk computes C = alpha*op(A)*op(A)' + beta*C on C's triangle ul.
func (f Float64) Dsyrk(ul blas.Uplo, t blas.Transpose, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	ar, ac := n, k
	if t != blas.NoTrans {
		ar, ac = k, n
	}
	okT := t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans
	if !okT || (ul != blas.Upper && ul != blas.Lower) || n < 0 || k < 0 || lda < max(1, ac) || ldc < max(1, n) ||
		n > 0 && (len(a) < need(ar, ac, lda) || len(c) < need(n, n, ldc)) {
		f.Implementation.Dsyrk(ul, t, n, k, alpha, a, lda, beta, c, ldc)
		return
	}
	Dsyrk(ul == blas.Upper, t != blas.NoTrans, n, k, alpha, a, lda, beta, c, ldc)
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C in float32.
func (f Float32) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !gemmOK(tA, tB, m, n, k, lda, ldb, ldc, len(a), len(b), len(c)) {
		f.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	Sgemm(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
