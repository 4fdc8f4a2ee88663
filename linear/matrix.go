package linear

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/wrenml/wren/internal/kernel"
)

func init() { kernel.Install() }

// matrix is a block of examples: dense row-major values, plus compressed
// rows when most entries are zero, so products skip the zeros.
type matrix struct {
	n, d int
	x    []float64
	y    []int32

	sparse bool
	ptr    []int // row i's entries are idx/val[ptr[i]:ptr[i+1]]
	idx    []int32
	val    []float64
}

// sparseBelow is the density under which compressed rows are used
// (beside the dense values, when there are any). The packed kernels run
// the dense products; at MNIST's density (19 %) the compressed rows
// still make the ridge path faster (memory, not arithmetic, bounds it).
const sparseBelow = 0.3

func newMatrix(x []float64, n, d int) *matrix {
	m := &matrix{n: n, d: d, x: x}
	nnz := 0
	for _, v := range x {
		if v != 0 {
			nnz++
		}
	}
	if float64(nnz) < sparseBelow*float64(len(x)) {
		m.sparse = true
		m.ptr = make([]int, n+1)
		m.idx = make([]int32, 0, nnz)
		m.val = make([]float64, 0, nnz)
		for i := range n {
			row := x[i*d : (i+1)*d]
			for j, v := range row {
				if v != 0 {
					m.idx = append(m.idx, int32(j))
					m.val = append(m.val, v)
				}
			}
			m.ptr[i+1] = len(m.idx)
		}
	}
	return m
}

// newCSR makes a matrix of compressed rows only (no dense copy), for data
// too sparse or too wide to hold densely.
func newCSR(n, d int, ptr []int, idx []int32, val []float64) *matrix {
	return &matrix{n: n, d: d, sparse: true, ptr: ptr, idx: idx, val: val}
}

// dense returns the row-major values; nil for a matrix of compressed rows
// only.
func (m *matrix) dense() []float64 { return m.x }

// rows returns rows [lo, hi) as a view.
func (m *matrix) rows(lo, hi int) *matrix {
	v := &matrix{n: hi - lo, d: m.d}
	if m.x != nil {
		v.x = m.x[lo*m.d : hi*m.d]
	}
	if m.y != nil {
		v.y = m.y[lo:hi]
	}
	if m.sparse {
		v.sparse = true
		v.ptr = make([]int, hi-lo+1)
		base := m.ptr[lo]
		for i := lo; i <= hi; i++ {
			v.ptr[i-lo] = m.ptr[i] - base
		}
		v.idx = m.idx[base:m.ptr[hi]]
		v.val = m.val[base:m.ptr[hi]]
	}
	return v
}

// parallel runs fn over [0, n) split into one range per CPU.
func parallel(n int, fn func(part, lo, hi int)) int {
	p := max(1, min(runtime.GOMAXPROCS(0), n/64))
	var wg sync.WaitGroup
	for k := range p {
		lo, hi := k*n/p, (k+1)*n/p
		wg.Go(func() { fn(k, lo, hi) })
	}
	wg.Wait()
	return p
}

func general(r, c int, data []float64) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: c, Data: data}
}

// mulW sets s (n x k) = X W, W d x k.
func (m *matrix) mulW(s, w []float64, k int) {
	if !m.sparse {
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(m.n, m.d, m.x), general(m.d, k, w), 0, general(m.n, k, s))
		return
	}
	parallel(m.n, func(_, lo, hi int) { m.mulWRows(s, w, k, lo, hi) })
}

// mulWRows is mulW on compressed rows [lo, hi): four or eight classes at a
// time in registers, one pass over a row's entries per block of outputs.
func (m *matrix) mulWRows(s, w []float64, k, lo, hi int) {
	for i := lo; i < hi; i++ {
		si := s[i*k : i*k+k : i*k+k]
		idx, val := m.idx[m.ptr[i]:m.ptr[i+1]], m.val[m.ptr[i]:m.ptr[i+1]]
		val = val[:len(idx)]
		// Four classes at a time in registers: one pass over the row's
		// entries per four outputs.
		c0 := 0
		for ; c0+8 <= k; c0 += 8 {
			var a0, a1, a2, a3, a4, a5, a6, a7 float64
			for p, j := range idx {
				v := val[p]
				wj := w[int(j)*k+c0 : int(j)*k+c0+8 : int(j)*k+c0+8]
				a0 += v * wj[0]
				a1 += v * wj[1]
				a2 += v * wj[2]
				a3 += v * wj[3]
				a4 += v * wj[4]
				a5 += v * wj[5]
				a6 += v * wj[6]
				a7 += v * wj[7]
			}
			si[c0], si[c0+1], si[c0+2], si[c0+3] = a0, a1, a2, a3
			si[c0+4], si[c0+5], si[c0+6], si[c0+7] = a4, a5, a6, a7
		}
		for ; c0+4 <= k; c0 += 4 {
			var a0, a1, a2, a3 float64
			for p, j := range idx {
				v := val[p]
				wj := w[int(j)*k+c0 : int(j)*k+c0+4 : int(j)*k+c0+4]
				a0 += v * wj[0]
				a1 += v * wj[1]
				a2 += v * wj[2]
				a3 += v * wj[3]
			}
			si[c0], si[c0+1], si[c0+2], si[c0+3] = a0, a1, a2, a3
		}
		for ; c0 < k; c0++ {
			var a float64
			for p, j := range idx {
				a += val[p] * w[int(j)*k+c0]
			}
			si[c0] = a
		}
	}
}

// tmulR sets g (d x k) = X' R, R n x k.
func (m *matrix) tmulR(g, r []float64, k int) {
	if !m.sparse {
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, general(m.n, m.d, m.x), general(m.n, k, r), 0, general(m.d, k, g))
		return
	}
	// By rows, each core into its own accumulator (d x k, in cache).
	parts := make([][]float64, runtime.GOMAXPROCS(0))
	p := parallel(m.n, func(part, lo, hi int) {
		acc := make([]float64, m.d*k)
		m.tmulRRows(acc, r, k, lo, hi)
		parts[part] = acc
	})
	copy(g, parts[0])
	for _, acc := range parts[1:p] {
		for i, v := range acc {
			g[i] += v
		}
	}
}

// tmulRRows adds X[lo:hi]' R[lo:hi] to acc (d x k), for compressed rows.
func (m *matrix) tmulRRows(acc, r []float64, k, lo, hi int) {
	for i := lo; i < hi; i++ {
		ri := r[i*k : i*k+k : i*k+k]
		idx, val := m.idx[m.ptr[i]:m.ptr[i+1]], m.val[m.ptr[i]:m.ptr[i+1]]
		val = val[:len(idx)]
		c0 := 0
		for ; c0+8 <= k; c0 += 8 {
			r0, r1, r2, r3 := ri[c0], ri[c0+1], ri[c0+2], ri[c0+3]
			r4, r5, r6, r7 := ri[c0+4], ri[c0+5], ri[c0+6], ri[c0+7]
			for q, j := range idx {
				v := val[q]
				gj := acc[int(j)*k+c0 : int(j)*k+c0+8 : int(j)*k+c0+8]
				gj[0] += v * r0
				gj[1] += v * r1
				gj[2] += v * r2
				gj[3] += v * r3
				gj[4] += v * r4
				gj[5] += v * r5
				gj[6] += v * r6
				gj[7] += v * r7
			}
		}
		for ; c0+4 <= k; c0 += 4 {
			r0, r1, r2, r3 := ri[c0], ri[c0+1], ri[c0+2], ri[c0+3]
			for q, j := range idx {
				v := val[q]
				gj := acc[int(j)*k+c0 : int(j)*k+c0+4 : int(j)*k+c0+4]
				gj[0] += v * r0
				gj[1] += v * r1
				gj[2] += v * r2
				gj[3] += v * r3
			}
		}
		for ; c0 < k; c0++ {
			rc := ri[c0]
			for q, j := range idx {
				acc[int(j)*k+c0] += val[q] * rc
			}
		}
	}
}

// syrkUpper adds X'X to the upper triangle of g (d x d), using every core:
// dense rows by the packed SYRK kernel, compressed rows each core a range
// of rows into its own accumulator.
func (m *matrix) syrkUpper(g []float64) {
	d := m.d
	if !m.sparse {
		kernel.Dsyrk(true, true, d, m.n, 1, m.x, max(d, 1), 1, g, max(d, 1))
		return
	}
	parts := make([][]float64, runtime.GOMAXPROCS(0))
	p := parallel(m.n, func(part, lo, hi int) {
		acc := make([]float64, d*d)
		for i := lo; i < hi; i++ {
			idx, val := m.idx[m.ptr[i]:m.ptr[i+1]], m.val[m.ptr[i]:m.ptr[i+1]]
			for a, ja := range idx {
				va := val[a]
				row := acc[int(ja)*d : int(ja)*d+d]
				for b := a; b < len(idx); b++ {
					row[idx[b]] += va * val[b]
				}
			}
		}
		parts[part] = acc
	})
	for _, acc := range parts[:p] {
		for i := range d {
			gi, ai := g[i*d+i:i*d+d], acc[i*d+i:i*d+d]
			for j, v := range ai {
				gi[j] += v
			}
		}
	}
}

// dot returns row i . w.
func (m *matrix) dot(i int, w []float64) float64 {
	var s float64
	if m.sparse {
		for p := m.ptr[i]; p < m.ptr[i+1]; p++ {
			s += m.val[p] * w[m.idx[p]]
		}
		return s
	}
	for j, v := range m.x[i*m.d : (i+1)*m.d] {
		s += v * w[j]
	}
	return s
}

// axpy adds a * row i to w.
func (m *matrix) axpy(i int, a float64, w []float64) {
	if m.sparse {
		for p := m.ptr[i]; p < m.ptr[i+1]; p++ {
			w[m.idx[p]] += a * m.val[p]
		}
		return
	}
	for j, v := range m.x[i*m.d : (i+1)*m.d] {
		w[j] += a * v
	}
}

// sqNorm returns |row i|^2.
func (m *matrix) sqNorm(i int) float64 {
	var s float64
	if m.sparse {
		for p := m.ptr[i]; p < m.ptr[i+1]; p++ {
			s += m.val[p] * m.val[p]
		}
		return s
	}
	for _, v := range m.x[i*m.d : (i+1)*m.d] {
		s += v * v
	}
	return s
}

// scaled returns a copy with each feature multiplied by s[j] (sparsity kept).
func (m *matrix) scaled(s []float64) *matrix {
	var x []float64
	if m.x != nil {
		x = make([]float64, len(m.x))
		for i := range m.n {
			row, out := m.x[i*m.d:(i+1)*m.d], x[i*m.d:(i+1)*m.d]
			for j, v := range row {
				out[j] = v * s[j]
			}
		}
	}
	if !m.sparse {
		out := newMatrix(x, m.n, m.d)
		out.y = m.y
		return out
	}
	// Same zeros: reuse the structure, scale the values.
	out := &matrix{n: m.n, d: m.d, x: x, y: m.y, sparse: true, ptr: m.ptr, idx: m.idx, val: make([]float64, len(m.val))}
	for p, j := range m.idx {
		out.val[p] = m.val[p] * s[j]
	}
	return out
}

// pick returns the rows idx, in that order, as a new matrix.
func (m *matrix) pick(idx []int) *matrix {
	var out *matrix
	if m.x == nil {
		ptr := make([]int, 1, len(idx)+1)
		var ci []int32
		var cv []float64
		for _, i := range idx {
			ci = append(ci, m.idx[m.ptr[i]:m.ptr[i+1]]...)
			cv = append(cv, m.val[m.ptr[i]:m.ptr[i+1]]...)
			ptr = append(ptr, len(ci))
		}
		out = newCSR(len(idx), m.d, ptr, ci, cv)
	} else {
		x := make([]float64, 0, len(idx)*m.d)
		for _, i := range idx {
			x = append(x, m.x[i*m.d:(i+1)*m.d]...)
		}
		out = newMatrix(x, len(idx), m.d)
	}
	if m.y != nil {
		out.y = make([]int32, len(idx))
		for j, i := range idx {
			out.y[j] = m.y[i]
		}
	}
	return out
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }
