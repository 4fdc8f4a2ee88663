package featurize

import (
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/wrenml/wren/internal/kernel"
)

// GISTOptions select the GIST variant. The zero value is the LEAR default:
// colour, orientations {8, 8, 4}, 4x4 blocks, computed on the pixels as given.
type GISTOptions struct {
	// Gray computes one grayscale descriptor ((R+G+B)/3) instead of one per
	// colour channel; its default orientations are {8, 8, 8, 8} (512-d).
	Gray bool
	// Orientations per scale, finest first; nil means {8, 8, 4} in colour
	// and {8, 8, 8, 8} in gray.
	Orientations []int
	// Blocks is the side of the pooling grid; 0 means 4.
	Blocks int
	// Size, when positive, first centre-crops the image to a square and
	// scales it to Size x Size (Prepare). Zero computes on the pixels as
	// given, which must then be a square of even side >= 8.
	Size int
}

func (o GISTOptions) withDefaults() GISTOptions {
	if o.Orientations == nil {
		if o.Gray {
			o.Orientations = []int{8, 8, 8, 8}
		} else {
			o.Orientations = []int{8, 8, 4}
		}
	}
	if o.Blocks == 0 {
		o.Blocks = 4
	}
	return o
}

// Dim returns the descriptor length for these options.
func (o GISTOptions) Dim() int {
	o = o.withDefaults()
	ch := 3
	if o.Gray {
		ch = 1
	}
	f := 0
	for _, n := range o.Orientations {
		f += n
	}
	return ch * o.Blocks * o.Blocks * f
}

// ErrImageSize reports an image GIST cannot use as given.
var ErrImageSize = errors.New("featurize: GIST needs a square image of even side >= 8")

// GIST computes the GIST descriptor of img exactly as the LEAR C
// implementation does (see GIST-SPEC.md): log, whitening and local contrast
// normalisation, a bank of one-sided Gabor filters applied by FFT, and
// block-averaged magnitudes, stored channel > filter > column cell > row
// cell. Samples are used as raw 0..255 values. It is safe for concurrent use;
// filter banks and FFT plans are built once per size and reused.
func GIST(img image.Image, opts GISTOptions) ([]float32, error) {
	if opts.Size > 0 {
		img = Prepare(img, opts.Size)
	}
	b := img.Bounds()
	if b.Dx() != b.Dy() || b.Dx() < 8 || b.Dx()%2 != 0 {
		return nil, fmt.Errorf("%w: got %dx%d (use GISTOptions.Size to crop and scale)", ErrImageSize, b.Dx(), b.Dy())
	}
	g, err := getGister(b.Dx(), opts)
	if err != nil {
		return nil, err
	}
	defer putGister(g)
	return g.Compute(nil, img), nil
}

// Gister computes GIST descriptors of N x N images with one set of options.
// It holds the filter bank (shared, read-only), FFT plans and work buffers:
// one Gister per goroutine.
type Gister struct {
	ref    bool // the reference kernel (NewReferenceGister)
	n, m   int  // image side, padded side
	opts   GISTOptions
	bank   *bank
	fftN   plan2
	chans  [][]float64  // input channels, N x N
	padded [][]float64  // log of the padded channels, M x M
	hp     [][]float64  // high-passed channels, M x M
	tmpA   []float64    // M x M
	tmpB   []float64    // M x M
	tmpC   []float64    // M x M
	spec   []complex128 // N x N
	work   []complex128 // N x N
	pooled []float64
	cellOf []int // pooling cell of each row or column index
}

// bank is the part shared by every Gister of one configuration.
type bank struct {
	filters [][]float64 // F filters, N x N, FFT order
	circM   []float64   // the prefilter's Gaussian as an M x M circulant matrix
}

var banks sync.Map // key -> *bank

func configKey(n int, o GISTOptions) string {
	return fmt.Sprintf("%d/%v/%d/%v", n, o.Gray, o.Blocks, o.Orientations)
}

// NewGister prepares a Gister for n x n images.
func NewGister(n int, opts GISTOptions) (*Gister, error) {
	opts = opts.withDefaults()
	if n < 8 || n%2 != 0 {
		return nil, fmt.Errorf("%w: side %d", ErrImageSize, n)
	}
	if opts.Blocks < 1 || opts.Blocks > n {
		return nil, fmt.Errorf("featurize: GIST blocks %d for a %dx%d image", opts.Blocks, n, n)
	}
	if len(opts.Orientations) == 0 || slices.ContainsFunc(opts.Orientations, func(k int) bool { return k < 1 || k > 64 }) {
		return nil, fmt.Errorf("featurize: GIST orientations %v (each 1..64)", opts.Orientations)
	}
	key := configKey(n, opts)
	bk, ok := banks.Load(key)
	if !ok {
		bk, _ = banks.LoadOrStore(key, newBank(n, opts))
	}
	g := &Gister{n: n, m: n + 2*padding, opts: opts, bank: bk.(*bank)}
	g.fftN = newPlan2(n)
	if p, ok := g.fftN.(*pow2); ok {
		p.vec = true
	}
	ch := g.channels()
	for range ch {
		g.chans = append(g.chans, make([]float64, n*n))
		g.padded = append(g.padded, make([]float64, g.m*g.m))
		g.hp = append(g.hp, make([]float64, g.m*g.m))
	}
	g.spec = make([]complex128, n*n)
	g.work = make([]complex128, n*n)
	g.tmpA = make([]float64, g.m*g.m)
	g.tmpB = make([]float64, g.m*g.m)
	g.tmpC = make([]float64, g.m*g.m)
	g.pooled = make([]float64, opts.Blocks*opts.Blocks)
	g.cellOf = make([]int, n)
	for b := range opts.Blocks {
		for i := b * n / opts.Blocks; i < (b+1)*n/opts.Blocks; i++ {
			g.cellOf[i] = b
		}
	}
	return g, nil
}

// NewReferenceGister prepares a Gister for n x n images that computes
// with the reference kernel: gonum's products and one magnitude at a
// time, the code the LEAR comparison was first made with. NewGister's
// fast kernel differs from it by rounding only (the tests hold both to the
// LEAR references and to each other); use it to check a result or to
// measure the fast kernel against.
func NewReferenceGister(n int, opts GISTOptions) (*Gister, error) {
	g, err := NewGister(n, opts)
	if err != nil {
		return nil, err
	}
	g.ref = true
	if p, ok := g.fftN.(*pow2); ok {
		p.vec = false
	}
	return g, nil
}

const (
	padding = 5 // symmetric padding before prefiltering
	fc      = 4 // prefilter cut-off, cycles per image
)

func (g *Gister) channels() int {
	if g.opts.Gray {
		return 1
	}
	return 3
}

// Dim returns the descriptor length.
func (g *Gister) Dim() int { return g.opts.Dim() }

// freq is the integer frequency of FFT index k on a grid of side m.
func freq(k, m int) float64 {
	if k < m/2 {
		return float64(k)
	}
	return float64(k - m)
}

func newBank(n int, o GISTOptions) *bank {
	b := &bank{}
	for s, ns := range o.Orientations {
		fs := 0.3 / math.Pow(1.85, float64(s))
		as := float64(ns*ns) / 64
		for k := range ns {
			theta := math.Pi * float64(k) / float64(ns)
			f := make([]float64, n*n)
			for r := range n {
				v := freq(r, n)
				for c := range n {
					u := freq(c, n)
					rho := math.Hypot(u, v)
					phi := math.Atan2(v, u)
					d := phi + theta
					if d > math.Pi {
						d -= 2 * math.Pi
					}
					if d < -math.Pi {
						d += 2 * math.Pi
					}
					x := rho/(float64(n)*fs) - 1
					f[r*n+c] = math.Exp(-10*0.35*x*x - 2*math.Pi*as*d*d)
				}
			}
			lay := make([]float64, n*n)
			permute(lay, f, newPlan2(n).perm())
			b.filters = append(b.filters, lay)
		}
	}
	// The 1-D circular filter with frequency response exp(-u^2/sigma^2):
	// k[d] = (1/M) sum_u L(u) cos(2 pi u d / M); C[i][j] = k[(j - i) mod M].
	m := n + 2*padding
	sigma := fc / math.Sqrt(math.Log(2))
	k := make([]float64, m)
	for d := range m {
		var s float64
		for u := range m {
			f := freq(u, m)
			s += math.Exp(-f*f/(sigma*sigma)) * math.Cos(2*math.Pi*f*float64(d)/float64(m))
		}
		k[d] = s / float64(m)
	}
	b.circM = make([]float64, m*m)
	for i := range m {
		for j := range m {
			b.circM[i*m+j] = k[((j-i)%m+m)%m]
		}
	}
	return b
}

var gisters sync.Map // configKey -> *sync.Pool

func getGister(n int, o GISTOptions) (*Gister, error) {
	o = o.withDefaults()
	key := configKey(n, o)
	p, ok := gisters.Load(key)
	if !ok {
		p, _ = gisters.LoadOrStore(key, &sync.Pool{})
	}
	if g, ok := p.(*sync.Pool).Get().(*Gister); ok {
		return g, nil
	}
	return NewGister(n, o)
}

func putGister(g *Gister) {
	if p, ok := gisters.Load(configKey(g.n, g.opts)); ok {
		p.(*sync.Pool).Put(g)
	}
}

// Compute appends to dst[:0] (or a new slice when dst is nil) the
// descriptor of img, which must be n x n.
func (g *Gister) Compute(dst []float32, img image.Image) []float32 {
	g.load(img)
	return g.compute(dst)
}

// ComputeChannels is Compute on channel planes given as raw 0..255 values,
// n*n each, row-major: three (R, G, B) in colour, one in gray.
func (g *Gister) ComputeChannels(dst []float32, planes [][]float64) []float32 {
	if len(planes) != g.channels() {
		panic("featurize: wrong number of channel planes")
	}
	for i, p := range planes {
		if len(p) != g.n*g.n {
			panic("featurize: channel plane of the wrong size")
		}
		copy(g.chans[i], p)
	}
	return g.compute(dst)
}

// load copies img's samples (0..255) into the channel planes.
func (g *Gister) load(img image.Image) {
	b := img.Bounds()
	n := g.n
	gray := g.opts.Gray
	switch im := img.(type) {
	case *image.RGBA:
		g.loadPix(im.Pix, im.Stride)
	case *image.NRGBA: // the samples as stored, alpha ignored
		g.loadPix(im.Pix, im.Stride)
	case *image.Gray:
		for y := range n {
			row := im.Pix[y*im.Stride:]
			for x := range n {
				v := row[x]
				g.setPixel(y*n+x, v, v, v, gray)
			}
		}
	default:
		for y := range n {
			for x := range n {
				r, gg, bb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				g.setPixel(y*n+x, uint8(r>>8), uint8(gg>>8), uint8(bb>>8), gray)
			}
		}
	}
}

// loadPix reads 4-byte RGBA-ordered samples.
func (g *Gister) loadPix(pix []uint8, stride int) {
	n := g.n
	for y := range n {
		row := pix[y*stride:]
		for x := range n {
			p := row[4*x : 4*x+3]
			g.setPixel(y*n+x, p[0], p[1], p[2], g.opts.Gray)
		}
	}
}

func (g *Gister) setPixel(i int, r, gg, b uint8, gray bool) {
	if gray {
		// Integer mean, as the reference inputs were made.
		g.chans[0][i] = float64((int(r) + int(gg) + int(b) + 1) / 3)
		return
	}
	g.chans[0][i], g.chans[1][i], g.chans[2][i] = float64(r), float64(gg), float64(b)
}

func (g *Gister) compute(dst []float32) []float32 {
	g.prefilter()
	dst = slices.Grow(dst[:0], g.Dim())[:g.Dim()]
	n, nb := g.n, g.opts.Blocks
	nf := len(g.bank.filters)
	inv := 1 / float64(n*n)
	for ch := range g.channels() {
		// Y = DFT(y_ch), once.
		for i, v := range g.chans[ch] {
			g.spec[i] = complex(v, 0)
		}
		g.fftN.transform(g.spec, false)
		// Filters are stored in the plan's layout: put Y in it too.
		permute(g.work, g.spec, g.fftN.perm())
		copy(g.spec, g.work)
		for f, filt := range g.bank.filters {
			if g.ref {
				for i, y := range g.spec {
					w := filt[i]
					g.work[i] = complex(real(y)*w, imag(y)*w)
				}
			} else {
				kernel.ScaleComplex(g.work, g.spec, filt)
			}
			clear(g.pooled)
			// pooled[bx*nb+by]: bx the column cell, by the row cell.
			rowStride, colStride := 1, nb
			if g.fftN.transposed() {
				rowStride, colStride = nb, 1
			}
			if g.ref {
				g.fftN.inverseRows(g.work, func(r int, row []complex128) {
					pool := g.pooled[g.cellOf[r]*rowStride:]
					for c, z := range row {
						pool[g.cellOf[c]*colStride] += math.Sqrt(real(z)*real(z) + imag(z)*imag(z))
					}
				})
			} else {
				g.fftN.inverseRows(g.work, func(r int, row []complex128) {
					pool := g.pooled[g.cellOf[r]*rowStride:]
					for b := range nb {
						pool[b*colStride] += kernel.AbsSum(row[b*n/nb : (b+1)*n/nb])
					}
				})
			}
			base := ch*nf*nb*nb + f*nb*nb
			for bx := range nb {
				c0, c1 := bx*n/nb, (bx+1)*n/nb
				for by := range nb {
					r0, r1 := by*n/nb, (by+1)*n/nb
					dst[base+bx*nb+by] = float32(g.pooled[bx*nb+by] * inv / float64((c1-c0)*(r1-r0)))
				}
			}
		}
	}
	return dst
}

// prefilter whitens and contrast-normalises the channels in place.
//
// The prefilter's Gaussian is real, even and separable, so filtering on the
// M x M circular grid is exactly Y = C X C with C the M x M circulant matrix
// of the 1-D filter: two real matrix products (gonum's BLAS) instead of two
// complex 2-D FFTs of a size (N+10) that is rarely a power of two.
func (g *Gister) prefilter() {
	n, m := g.n, g.m
	nch := g.channels()
	mirror := func(i int) int {
		if i < 0 {
			return -i - 1
		}
		if i >= n {
			return 2*n - 1 - i
		}
		return i
	}
	for ch := range nch {
		x := g.chans[ch]
		p := g.padded[ch]
		for r := range m {
			sr := mirror(r-padding) * n
			for c := range m {
				p[r*m+c] = log1p(x[sr+mirror(c-padding)])
			}
		}
		// h = x - lowpass(x)
		g.lowpass(g.hp[ch], p)
		h := g.hp[ch]
		for i := range h {
			h[i] = p[i] - h[i]
		}
	}
	// Local contrast: E = lowpass(mean(h)^2), lambda = sqrt(|E|).
	sq := g.tmpA
	for i := range sq {
		var s float64
		for ch := range nch {
			s += g.hp[ch][i]
		}
		s /= float64(nch)
		sq[i] = s * s
	}
	e := g.tmpC
	g.lowpass(e, sq)
	for ch := range nch {
		h := g.hp[ch]
		y := g.chans[ch]
		for r := range n {
			for c := range n {
				i := (r+padding)*m + c + padding
				y[r*n+c] = h[i] / (0.2 + math.Sqrt(math.Abs(e[i])))
			}
		}
	}
}

// log1pTable holds ln(1+v) for the 8-bit sample values.
var log1pTable = func() (t [256]float64) {
	for i := range t {
		t[i] = math.Log1p(float64(i))
	}
	return t
}()

// log1p is math.Log1p, by table for 8-bit sample values.
func log1p(v float64) float64 {
	if i := int(v); float64(i) == v && i >= 0 && i < 256 {
		return log1pTable[i]
	}
	return math.Log1p(v)
}

// lowpass sets dst = C src C (both M x M, row-major).
func (g *Gister) lowpass(dst, src []float64) {
	m := g.m
	if g.ref {
		serialGemm(m, src, g.bank.circM, g.tmpB) // filter the rows
		serialGemm(m, g.bank.circM, g.tmpB, dst) // then the columns
		return
	}
	kernel.DgemmSerial(false, false, m, m, m, 1, src, m, g.bank.circM, m, 0, g.tmpB, m)
	kernel.DgemmSerial(false, false, m, m, m, 1, g.bank.circM, m, g.tmpB, m, 0, dst, m)
}

// serialGemm sets c = a b for m x m row-major matrices on the calling
// goroutine with gonum's own Dgemm (the reference kernel; not whatever
// blas64 has installed): gonum runs a product of more than 3 blocks of
// 64 x 64 on several goroutines, which only adds contention when every
// core already runs its own worker; panels of 64 rows stay under that
// threshold.
func serialGemm(m int, a, b, c []float64) {
	for r0 := 0; r0 < m; r0 += 64 {
		rows := min(64, m-r0)
		gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, rows, m, m, 1, a[r0*m:], m, b, m, 0, c[r0*m:], m)
	}
}

// ParseOrientations reads a list such as "8,8,4".
func ParseOrientations(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			return nil, fmt.Errorf("featurize: orientations %q: want positive integers like 8,8,4", s)
		}
		out = append(out, k)
	}
	return out, nil
}
