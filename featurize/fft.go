package featurize

import (
	"math"
	"math/bits"

	"gonum.org/v1/gonum/dsp/fourier"
)

// plan2 transforms n x n row-major complex arrays in place: forward, or
// backward without normalisation.
type plan2 interface {
	transform(a []complex128, backward bool)
	// perm gives, for each natural index, its position in the layout that
	// inverseRows takes (nil: natural order).
	perm() []int
	// inverseRows runs the unnormalised backward transform of a, given in
	// perm layout, handing each output row to fn as soon as it is done.
	inverseRows(a []complex128, fn func(r int, row []complex128))
}

// permute writes src (natural order) into dst in the plan's layout.
func permute[T any](dst, src []T, perm []int) {
	if perm == nil {
		copy(dst, src)
		return
	}
	for i, j := range perm {
		dst[j] = src[i]
	}
}

// newPlan2 returns the fastest plan for side n: an in-place radix-2 FFT
// whose column pass runs butterflies on whole rows (no transposes, one
// twiddle per inner loop) for powers of two, gonum's mixed-radix FFT
// otherwise.
func newPlan2(n int) plan2 {
	if n >= 4 && n&(n-1) == 0 {
		return newPow2(n)
	}
	return &gonumPlan{n: n, t: fourier.NewCmplxFFT(n), col: make([]complex128, n)}
}

func (p *gonumPlan) perm() []int { return nil }

func (p *gonumPlan) inverseRows(a []complex128, fn func(r int, row []complex128)) {
	p.transform(a, true)
	for r := range p.n {
		fn(r, a[r*p.n:r*p.n+p.n])
	}
}

type gonumPlan struct {
	n   int
	t   *fourier.CmplxFFT
	col []complex128
}

func (p *gonumPlan) transform(a []complex128, backward bool) {
	n := p.n
	do := p.t.Coefficients
	if backward {
		do = p.t.Sequence
	}
	for r := range n {
		row := a[r*n : r*n+n]
		do(row, row)
	}
	for c := range n {
		for r := range n {
			p.col[r] = a[r*n+c]
		}
		do(p.col, p.col)
		for r := range n {
			a[r*n+c] = p.col[r]
		}
	}
}

type pow2 struct {
	n   int
	rev []int
	prm []int        // natural index -> (bit-reversed row, bit-reversed column)
	fw  []complex128 // exp(-2 pi i k / n), k < n/2
	bw  []complex128 // conjugates
}

func newPow2(n int) *pow2 {
	p := &pow2{n: n, rev: make([]int, n), fw: make([]complex128, n/2), bw: make([]complex128, n/2)}
	shift := bits.LeadingZeros(uint(n)) + 1
	for i := range n {
		p.rev[i] = int(bits.Reverse(uint(i)) >> shift)
	}
	for k := range n / 2 {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.fw[k] = complex(c, s)
		p.bw[k] = complex(c, -s)
	}
	p.prm = make([]int, n*n)
	for r := range n {
		for c := range n {
			p.prm[r*n+c] = p.rev[r]*n + p.rev[c]
		}
	}
	return p
}

func (p *pow2) perm() []int { return p.prm }

// inverseRows: with the input already in bit-reversed order along both
// axes, neither pass needs a permutation.
func (p *pow2) inverseRows(a []complex128, fn func(r int, row []complex128)) {
	n := p.n
	p.colStages(a, p.bw)
	for r := range n {
		row := a[r*n : r*n+n]
		p.rowStages(row, p.bw, true)
		fn(r, row)
	}
}

func (p *pow2) transform(a []complex128, backward bool) {
	tw := p.fw
	if backward {
		tw = p.bw
	}
	n := p.n
	for r := range n {
		p.row(a[r*n:r*n+n], tw)
	}
	p.cols(a, tw)
}

// row transforms one row in place (iterative radix-2, decimation in time).
func (p *pow2) row(x []complex128, tw []complex128) {
	for i, j := range p.rev {
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	p.rowStages(x, tw, &tw[0] == &p.bw[0])
}

// rowStages runs the butterflies of one row given in bit-reversed order.
func (p *pow2) rowStages(x []complex128, tw []complex128, backward bool) {
	n := p.n
	// Sizes 2 and 4 need no general twiddles.
	for s := 0; s < n; s += 2 {
		u, v := x[s], x[s+1]
		x[s], x[s+1] = u+v, u-v
	}
	rot := complex(0, -1) // exactly tw[n/4]
	if backward {
		rot = complex(0, 1)
	}
	for s := 0; s < n; s += 4 {
		u0, u1 := x[s], x[s+1]
		v0, v1 := x[s+2], x[s+3]*rot
		x[s], x[s+2] = u0+v0, u0-v0
		x[s+1], x[s+3] = u1+v1, u1-v1
	}
	for size := 8; size <= n; size <<= 1 {
		half := size >> 1
		step := n / size
		for s := 0; s < n; s += size {
			lo := x[s : s+half : s+half]
			hi := x[s+half : s+size : s+size]
			for j := range lo {
				w := tw[j*step]
				v := hi[j] * w
				u := lo[j]
				lo[j], hi[j] = u+v, u-v
			}
		}
	}
}

// cols transforms every column at once: each butterfly combines two whole
// rows with one twiddle.
func (p *pow2) cols(a []complex128, tw []complex128) {
	n := p.n
	for i, j := range p.rev {
		if i < j {
			ri, rj := a[i*n:i*n+n], a[j*n:j*n+n]
			for c := range ri {
				ri[c], rj[c] = rj[c], ri[c]
			}
		}
	}
	p.colStages(a, tw)
}

// colStages runs the column butterflies on rows given in bit-reversed order.
func (p *pow2) colStages(a []complex128, tw []complex128) {
	n := p.n
	for size := 2; size <= n; size <<= 1 {
		half := size >> 1
		step := n / size
		for s := 0; s < n; s += size {
			for j := range half {
				w := tw[j*step]
				lo := a[(s+j)*n : (s+j)*n+n : (s+j)*n+n]
				hi := a[(s+j+half)*n : (s+j+half)*n+n : (s+j+half)*n+n]
				hi = hi[:len(lo)]
				switch {
				case j == 0:
					for c := range lo {
						u, v := lo[c], hi[c]
						lo[c], hi[c] = u+v, u-v
					}
				default:
					for c := range lo {
						u, v := lo[c], hi[c]*w
						lo[c], hi[c] = u+v, u-v
					}
				}
			}
		}
	}
}
