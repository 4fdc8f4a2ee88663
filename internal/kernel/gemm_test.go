package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// naive is the triple loop the kernels are checked against.
func naive(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int, tri int) {
	for i := range m {
		for j := range n {
			if tri == upper && j < i || tri == lower && j > i {
				continue
			}
			var s float64
			for p := range k {
				var av, bv float64
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.Float64()*2 - 1
	}
	return s
}

// both runs f with the CPU's micro-kernels and the portable ones.
func both(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, simd := range []bool{true, false} {
		choose(simd)
		t.Run(Name(), f)
	}
	choose(envSIMD())
}

// TestEnvChoosesPortable: WREN_KERNEL=go runs the portable kernels (make
// test runs the package so too).
func TestEnvChoosesPortable(t *testing.T) {
	if !envSIMD() && Name() != "go" {
		t.Fatalf("WREN_KERNEL=go, the kernels in use are %q", Name())
	}
	if _, _, n, ok := simdKernels(); envSIMD() && ok && Name() != n {
		t.Fatalf("the CPU has %s, the kernels in use are %q", n, Name())
	}
}

func TestDgemmShapes(t *testing.T) {
	both(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		sizes := []int{0, 1, 2, 5, 6, 7, 8, 9, 13, 17, 95, 96, 97, 255, 257}
		for trial := 0; trial < 300; trial++ {
			m, n, k := sizes[rng.IntN(len(sizes))], sizes[rng.IntN(len(sizes))], sizes[rng.IntN(len(sizes))]
			tri := []int{full, upper, lower}[rng.IntN(3)]
			if tri != full {
				n = m
			}
			tA, tB := rng.IntN(2) == 1, rng.IntN(2) == 1
			ar, ac := m, k
			if tA {
				ar, ac = k, m
			}
			br, bc := k, n
			if tB {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+rng.IntN(3), bc+rng.IntN(3), n+rng.IntN(3)
			a, b := randSlice(rng, max(ar*lda, 1)), randSlice(rng, max(br*ldb, 1))
			c := randSlice(rng, max(m*ldc, 1))
			alpha := []float64{1, -0.5, 0, 2}[rng.IntN(4)]
			beta := []float64{0, 1, 0.5}[rng.IntN(3)]
			want := append([]float64(nil), c...)
			naive(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc, tri)
			got := append([]float64(nil), c...)
			gemm(m, n, k, alpha, view[float64]{a, lda, tA}, view[float64]{b, ldb, tB}, beta, got, ldc, tri, dmk)
			for i := range got {
				if d := math.Abs(got[i] - want[i]); d > 1e-10*float64(k+1) {
					t.Fatalf("m %d n %d k %d tA %v tB %v tri %d alpha %v beta %v: c[%d] = %v, want %v", m, n, k, tA, tB, tri, alpha, beta, i, got[i], want[i])
				}
			}
		}
	})
}

func BenchmarkDgemm(b *testing.B) {
	for _, n := range []int{256, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x, y, c := randSlice(rng, n*n), randSlice(rng, n*n), make([]float64, n*n)
			old := SetMaxThreads(1)
			defer SetMaxThreads(old)
			for b.Loop() {
				Dgemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
			}
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestGonumAdapter: the adapters against gonum's own BLAS, through the
// gonum interfaces, on shapes across the blocking edges; bad arguments
// panic as gonum's do.
func TestGonumAdapter(t *testing.T) {
	both(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		ref := gonum.Implementation{}
		for _, sh := range [][3]int{{0, 3, 4}, {1, 1, 1}, {7, 2100, 3}, {300, 5, 600}, {97, 98, 99}, {13, 6, 0}} {
			m, n, k := sh[0], sh[1], sh[2]
			for _, tr := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				ar, ac := m, k
				if tr == blas.Trans {
					ar, ac = k, m
				}
				a, b := randSlice(rng, ar*ac+m+n+1), randSlice(rng, k*n+m+n+1)
				c := randSlice(rng, m*n)
				want := append([]float64(nil), c...)
				ref.Dgemm(tr, blas.NoTrans, m, n, k, 0.7, a, max(ac, 1), b, max(n, 1), 0.3, want, max(n, 1))
				Float64{}.Dgemm(tr, blas.NoTrans, m, n, k, 0.7, a, max(ac, 1), b, max(n, 1), 0.3, c, max(n, 1))
				close64(t, fmt.Sprintf("dgemm %v %v", sh, tr), c, want, k)
				// float32
				a32, b32, c32 := to32(a), to32(b), to32(c)
				w32 := append([]float32(nil), c32...)
				ref.Sgemm(tr, blas.NoTrans, m, n, k, 0.7, a32, max(ac, 1), b32, max(n, 1), 0.3, w32, max(n, 1))
				Float32{}.Sgemm(tr, blas.NoTrans, m, n, k, 0.7, a32, max(ac, 1), b32, max(n, 1), 0.3, c32, max(n, 1))
				for i := range c32 {
					if d := math.Abs(float64(c32[i] - w32[i])); d > 1e-4*float64(k+1) {
						t.Fatalf("sgemm %v %v: c[%d] = %v, want %v", sh, tr, i, c32[i], w32[i])
					}
				}
				// syrk of op(A): n = m
				for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
					cs := randSlice(rng, m*m)
					ws := append([]float64(nil), cs...)
					ref.Dsyrk(ul, tr, m, k, 1.5, a, max(ac, 1), 0.5, ws, max(m, 1))
					Float64{}.Dsyrk(ul, tr, m, k, 1.5, a, max(ac, 1), 0.5, cs, max(m, 1))
					close64(t, fmt.Sprintf("dsyrk %v %v %v", sh, tr, ul), cs, ws, k)
					cm := randSlice(rng, m*m)
					wm := append([]float64(nil), cm...)
					ref.Dsyrk(ul, tr, m, k, 1.5, a, max(ac, 1), 0.5, wm, max(m, 1))
					Dsyrk32(ul == blas.Upper, tr == blas.Trans, m, k, 1.5, to32(a), max(ac, 1), 0.5, cm, max(m, 1))
					for i := range cm {
						if d := math.Abs(cm[i] - wm[i]); d > 1e-6*float64(k+1) {
							t.Fatalf("dsyrk32 %v %v %v: c[%d] = %v, want %v", sh, tr, ul, i, cm[i], wm[i])
						}
					}
				}
			}
		}
		for name, f := range map[string]func(){
			"lda": func() {
				Float64{}.Dgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, make([]float64, 6), 2, make([]float64, 6), 2, 0, make([]float64, 4), 2)
			},
			"short c": func() {
				Float64{}.Dgemm(blas.NoTrans, blas.NoTrans, 2, 2, 2, 1, make([]float64, 4), 2, make([]float64, 4), 2, 0, make([]float64, 3), 2)
			},
			"uplo": func() {
				Float64{}.Dsyrk(blas.All, blas.NoTrans, 2, 2, 1, make([]float64, 4), 2, 0, make([]float64, 4), 2)
			},
			"m < 0": func() { Float32{}.Sgemm(blas.NoTrans, blas.NoTrans, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: no panic", name)
					}
				}()
				f()
			}()
		}
	})
}

func close64(t *testing.T, what string, got, want []float64, k int) {
	t.Helper()
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > 1e-10*float64(k+1) {
			t.Fatalf("%s: c[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func to32(s []float64) []float32 {
	r := make([]float32, len(s))
	for i, v := range s {
		r[i] = float32(v)
	}
	return r
}

func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x, y, c := to32(randSlice(rng, n*n)), to32(randSlice(rng, n*n)), make([]float32, n*n)
			old := SetMaxThreads(1)
			defer SetMaxThreads(old)
			for b.Loop() {
				Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
			}
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkDsyrk(b *testing.B) {
	for _, n := range []int{1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x, c := randSlice(rng, n*n), make([]float64, n*n)
			old := SetMaxThreads(1)
			defer SetMaxThreads(old)
			for b.Loop() {
				Dsyrk(true, true, n, n, 1, x, n, 0, c, n)
			}
			b.ReportMetric(float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestNaNInf: NaN and Inf in A or B reach the rows and columns they are
// in, and only those (the zero padding of edge tiles never turns 0 x Inf
// into a NaN of C); beta 0 ignores what C held (NaN included); alpha 0
// does not read A or B.
func TestNaNInf(t *testing.T) {
	both(t, func(t *testing.T) {
		for _, sz := range [][3]int{{7, 9, 5}, {13, 17, 300}, {100, 3, 2}} {
			m, n, k := sz[0], sz[1], sz[2]
			rng := rand.New(rand.NewPCG(5, 6))
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			a[2*k+1] = math.NaN()        // row 2 of A
			b[(k-1)*n+n-1] = math.Inf(1) // column n-1 of B
			c := make([]float64, m*n)
			for i := range c {
				c[i] = math.NaN()
			}
			Dgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			for i := range m {
				for j := range n {
					v := c[i*n+j]
					switch {
					case i == 2:
						if !math.IsNaN(v) {
							t.Fatalf("%v: c[%d][%d] = %v, want NaN (row of A's NaN)", sz, i, j, v)
						}
					case j == n-1:
						if !math.IsInf(v, 0) && !math.IsNaN(v) {
							t.Fatalf("%v: c[%d][%d] = %v, want Inf (column of B's Inf)", sz, i, j, v)
						}
					default:
						if math.IsNaN(v) || math.IsInf(v, 0) {
							t.Fatalf("%v: c[%d][%d] = %v: a NaN or Inf escaped its row and column", sz, i, j, v)
						}
					}
				}
			}
			c2 := randSlice(rng, m*n)
			want := append([]float64(nil), c2...)
			Dgemm(false, false, m, n, k, 0, a, k, b, n, 1, c2, n)
			for i := range c2 {
				if c2[i] != want[i] {
					t.Fatalf("%v: alpha 0, beta 1 changed c[%d]", sz, i)
				}
			}
		}
	})
}

// TestAliasedOperands: A and B may be the same matrix (A·A, A·A').
func TestAliasedOperands(t *testing.T) {
	both(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		n := 37
		a := randSlice(rng, n*n)
		for _, tB := range []bool{false, true} {
			got, want := make([]float64, n*n), make([]float64, n*n)
			Dgemm(false, tB, n, n, n, 1, a, n, a, n, 0, got, n)
			naive(false, tB, n, n, n, 1, a, n, a, n, 0, want, n, full)
			close64(t, fmt.Sprintf("A·op(A), tB %v", tB), got, want, n)
		}
	})
}

// FuzzDgemm checks fuzzed shapes, transposes, strides and scalars against
// the triple loop.
func FuzzDgemm(f *testing.F) {
	f.Add(uint16(6), uint16(8), uint16(256), false, true, uint8(0), uint8(1), int8(1), int8(0), uint8(0))
	f.Add(uint16(97), uint16(1), uint16(3), true, false, uint8(2), uint8(0), int8(-2), int8(3), uint8(1))
	f.Add(uint16(0), uint16(5), uint16(5), false, false, uint8(0), uint8(0), int8(1), int8(1), uint8(2))
	f.Fuzz(func(t *testing.T, m, n, k uint16, tA, tB bool, padA, padC uint8, alpha, beta int8, tri uint8) {
		M, N, K := int(m%130), int(n%130), int(k%300)
		tr := int(tri % 3)
		if tr != full {
			N = M
		}
		ar, ac := M, K
		if tA {
			ar, ac = K, M
		}
		br, bc := K, N
		if tB {
			br, bc = N, K
		}
		lda, ldb, ldc := max(ac, 1)+int(padA%4), max(bc, 1), max(N, 1)+int(padC%4)
		rng := rand.New(rand.NewPCG(uint64(M*N+K), 1))
		a, b, c := randSlice(rng, ar*lda), randSlice(rng, br*ldb), randSlice(rng, M*ldc)
		want := append([]float64(nil), c...)
		naive(tA, tB, M, N, K, float64(alpha)/2, a, lda, b, ldb, float64(beta)/2, want, ldc, tr)
		gemm(M, N, K, float64(alpha)/2, view[float64]{a, lda, tA}, view[float64]{b, ldb, tB}, float64(beta)/2, c, ldc, tr, dmk)
		close64(t, fmt.Sprintf("m %d n %d k %d tA %v tB %v tri %d", M, N, K, tA, tB, tr), c, want, K*64)
	})
}

// TestAbsSum: every length through the vector loops and the tail, against
// the sequential sum; NaN and Inf propagate.
func TestAbsSum(t *testing.T) {
	both(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 9))
		for n := range 40 {
			z := make([]complex128, n+1)
			for i := range z {
				z[i] = complex(rng.NormFloat64(), rng.NormFloat64())
			}
			z = z[1:] // also unaligned
			got, want := AbsSum(z), absSumGo(z)
			if math.Abs(got-want) > 1e-12*(1+want) {
				t.Fatalf("n %d: %v, want %v", n, got, want)
			}
		}
		if v := AbsSum([]complex128{1, complex(math.Inf(1), 0), 3, 4, 5}); !math.IsInf(v, 1) {
			t.Fatalf("Inf: %v", v)
		}
		if v := AbsSum([]complex128{1, 2, 3, 4, 5, 6, 7, complex(0, math.NaN()), 9}); !math.IsNaN(v) {
			t.Fatalf("NaN: %v", v)
		}
	})
}

// TestDgemmSerial: the one-goroutine product equals the parallel one.
func TestDgemmSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	m, n, k := 300, 200, 100
	a, b := randSlice(rng, m*k), randSlice(rng, k*n)
	c1, c2 := make([]float64, m*n), make([]float64, m*n)
	Dgemm(false, false, m, n, k, 1, a, k, b, n, 0, c1, n)
	DgemmSerial(false, false, m, n, k, 1, a, k, b, n, 0, c2, n)
	close64(t, "serial", c2, c1, k)
}

// TestRadix4: the vector butterflies equal the Go arithmetic bit for bit,
// with twiddle vectors and constants, forward and backward, every length.
func TestRadix4(t *testing.T) {
	both(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 11))
		cx := func(n int) []complex128 {
			z := make([]complex128, n)
			for i := range z {
				z[i] = complex(rng.NormFloat64(), rng.NormFloat64())
			}
			return z
		}
		for n := 1; n < 20; n++ {
			for _, vec := range []bool{true, false} {
				for _, back := range []bool{false, true} {
					wn := n
					if !vec {
						wn = 1
					}
					p := [4][]complex128{cx(n), cx(n), cx(n), cx(n)}
					wa, wb, wc := cx(wn), cx(wn), cx(wn)
					var q [4][]complex128
					for k := range p {
						q[k] = append([]complex128(nil), p[k]...)
					}
					Radix4(p[0], p[1], p[2], p[3], wa, wb, wc, back)
					for i := range n {
						j := i
						if !vec {
							j = 0
						}
						a0, a1, a2, a3 := q[0][i], q[1][i]*wa[j], q[2][i]*wb[j], q[3][i]*wc[j]
						s01, d01 := a0+a1, a0-a1
						s23, d23 := a2+a3, a2-a3
						r23 := complex(imag(d23), -real(d23))
						if back {
							r23 = -r23
						}
						want := [4]complex128{s01 + s23, d01 + r23, s01 - s23, d01 - r23}
						for k := range 4 {
							if p[k][i] != want[k] {
								t.Fatalf("n %d vec %v back %v: p%d[%d] = %v, want %v", n, vec, back, k, i, p[k][i], want[k])
							}
						}
					}
				}
			}
		}
	})
}

// TestScaleComplex: bit for bit the Go arithmetic, every length, in place
// too.
func TestScaleComplex(t *testing.T) {
	both(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(12, 12))
		for n := range 12 {
			src, w := make([]complex128, n), make([]float64, n)
			for i := range src {
				src[i], w[i] = complex(rng.NormFloat64(), rng.NormFloat64()), rng.NormFloat64()
			}
			dst := make([]complex128, n)
			ScaleComplex(dst, src, w)
			for i := range dst {
				if want := complex(real(src[i])*w[i], imag(src[i])*w[i]); dst[i] != want {
					t.Fatalf("n %d: dst[%d] = %v, want %v", n, i, dst[i], want)
				}
			}
			ScaleComplex(src, src, w)
			for i := range dst {
				if src[i] != dst[i] {
					t.Fatalf("n %d in place: %v, want %v", n, src[i], dst[i])
				}
			}
		}
	})
}
