package featurize

import (
	"math"
	"math/bits"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/wrenml/wren/internal/kernel"
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
	// transposed reports whether inverseRows hands columns over as rows.
	transposed() bool
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

func (p *gonumPlan) transposed() bool { return false }

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
	fw  []complex128 // exp(-2 pi i k / n), k < n
	bw  []complex128 // conjugates
	// vec runs the radix-4 butterflies by kernel.Radix4 (the fast
	// kernel); stw holds each row stage's twiddles as vectors for it:
	// stw[backward][stage][0..2], j-th element tw[2j step], tw[j step],
	// tw[3j step].
	vec bool
	stw [2][][3][]complex128
}

func newPow2(n int) *pow2 {
	p := &pow2{n: n, rev: make([]int, n), fw: make([]complex128, n), bw: make([]complex128, n)}
	shift := bits.LeadingZeros(uint(n)) + 1
	for i := range n {
		p.rev[i] = int(bits.Reverse(uint(i)) >> shift)
	}
	for k := range n {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.fw[k] = complex(c, s)
		p.bw[k] = complex(c, -s)
	}
	for b, tw := range [2][]complex128{p.fw, p.bw} {
		l := 1
		if bits.TrailingZeros(uint(n))%2 == 1 {
			l = 2
		}
		for ; l < n; l *= 4 {
			step := n / (4 * l)
			var st [3][]complex128
			for j := range l {
				st[0] = append(st[0], tw[2*j*step])
				st[1] = append(st[1], tw[j*step])
				st[2] = append(st[2], tw[3*j*step])
			}
			p.stw[b] = append(p.stw[b], st)
		}
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
// axes, neither pass needs a permutation. Rows are finished one at a time
// while they are in cache.
func (p *pow2) inverseRows(a []complex128, fn func(r int, row []complex128)) {
	n := p.n
	p.colStages(a, p.bw)
	for r := range n {
		row := a[r*n : r*n+n]
		p.rowStages(row, p.bw, true)
		fn(r, row)
	}
}

func (p *pow2) transposed() bool { return false }

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

// radix4 is one radix-2^2 butterfly on inputs already multiplied by their
// twiddles: a 4-point DFT (with -i for forward, +i for backward).
func radix4(a0, a1, a2, a3 complex128, backward bool) (x0, x1, x2, x3 complex128) {
	s01, d01 := a0+a1, a0-a1
	s23, d23 := a2+a3, a2-a3
	r23 := complex(imag(d23), -real(d23)) // d23 times -i
	if backward {
		r23 = -r23
	}
	return s01 + s23, d01 + r23, s01 - s23, d01 - r23
}

// rowStages runs the butterflies of one row given in bit-reversed order:
// one radix-2 stage if log2(n) is odd, then radix-4 (radix-2^2) stages,
// which need three twiddle products per four points and half the passes.
func (p *pow2) rowStages(x []complex128, tw []complex128, backward bool) {
	n := p.n
	l := 1
	if bits.TrailingZeros(uint(n))%2 == 1 {
		for s := 0; s < n; s += 2 {
			u, v := x[s], x[s+1]
			x[s], x[s+1] = u+v, u-v
		}
		l = 2
	}
	for stage := 0; l < n; l, stage = l*4, stage+1 {
		step := n / (4 * l)
		if p.vec && l >= 2 {
			b := 0
			if backward {
				b = 1
			}
			w := p.stw[b][stage]
			for s := 0; s < n; s += 4 * l {
				kernel.Radix4(x[s:s+l], x[s+l:s+2*l], x[s+2*l:s+3*l], x[s+3*l:s+4*l], w[0], w[1], w[2], backward)
			}
			continue
		}
		for s := 0; s < n; s += 4 * l {
			b0 := x[s : s+l : s+l]
			b1 := x[s+l : s+2*l : s+2*l]
			b2 := x[s+2*l : s+3*l : s+3*l]
			b3 := x[s+3*l : s+4*l : s+4*l]
			b1, b2, b3 = b1[:len(b0)], b2[:len(b0)], b3[:len(b0)]
			for j := range b0 {
				a0, a1, a2, a3 := b0[j], b1[j], b2[j], b3[j]
				if j > 0 { // twiddles of j = 0 are all 1
					a1 *= tw[2*j*step]
					a2 *= tw[j*step]
					a3 *= tw[3*j*step]
				}
				b0[j], b1[j], b2[j], b3[j] = radix4(a0, a1, a2, a3, backward)
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

// colStages runs the column butterflies on rows given in bit-reversed
// order, radix-4 like rowStages, each butterfly on four whole rows.
func (p *pow2) colStages(a []complex128, tw []complex128) {
	n := p.n
	backward := &tw[0] == &p.bw[0]
	row := func(r int) []complex128 { return a[r*n : r*n+n : r*n+n] }
	l := 1
	if bits.TrailingZeros(uint(n))%2 == 1 {
		for s := 0; s < n; s += 2 {
			lo, hi := row(s), row(s+1)
			hi = hi[:len(lo)]
			for c := range lo {
				u, v := lo[c], hi[c]
				lo[c], hi[c] = u+v, u-v
			}
		}
		l = 2
	}
	for ; l < n; l *= 4 {
		step := n / (4 * l)
		for s := 0; s < n; s += 4 * l {
			for j := range l {
				w1, w2, w3 := tw[j*step], tw[2*j*step], tw[3*j*step]
				r0, r1, r2, r3 := row(s+j), row(s+j+l), row(s+j+2*l), row(s+j+3*l)
				r1, r2, r3 = r1[:len(r0)], r2[:len(r0)], r3[:len(r0)]
				if p.vec {
					wa, wb, wc := [1]complex128{w2}, [1]complex128{w1}, [1]complex128{w3}
					kernel.Radix4(r0, r1, r2, r3, wa[:], wb[:], wc[:], backward)
					continue
				}
				if j == 0 { // twiddles all 1
					for c := range r0 {
						r0[c], r1[c], r2[c], r3[c] = radix4(r0[c], r1[c], r2[c], r3[c], backward)
					}
					continue
				}
				for c := range r0 {
					r0[c], r1[c], r2[c], r3[c] = radix4(r0[c], r1[c]*w2, r2[c]*w1, r3[c]*w3, backward)
				}
			}
		}
	}
}
