package nn

import (
	"fmt"
	"math/rand/v2"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2d is PyTorch's nn.Conv2d with a square kernel and the same stride
// and zero padding on both axes: cross-correlation of NCHW images with
// weights [Out, In, K, K], plus a bias per output channel when B is set.
type Conv2d struct {
	Name                    string
	In, Out, K, Stride, Pad int
	W, B                    *tensor.Dense // B is nil without bias
	// SN, when set, spectrally normalises W (see SpectralNorm).
	SN *SpectralNorm
}

// NewConv2d draws W, then b, uniform in ±1/sqrt(in·k·k) from rng, PyTorch's
// default initialisation, W in its row-major [out, in, k, k] order.
func NewConv2d(name string, in, out, k, stride, pad int, bias bool, dt tensor.Dtype, rng *rand.Rand) *Conv2d {
	c := &Conv2d{Name: name, In: in, Out: out, K: k, Stride: stride, Pad: pad,
		W: tensor.New(tensor.WithShape(out, in, k, k), tensor.Of(dt))}
	bound := fanInBound(in * k * k)
	uniform(c.W, bound, rng)
	if bias {
		c.B = tensor.New(tensor.WithShape(out), tensor.Of(dt))
		uniform(c.B, bound, rng)
	}
	return c
}

// Params implements Module: weight, then bias.
func (c *Conv2d) Params() []Param { return snParams(c.Name, c.W, c.B, false, c.SN) }

// SpectralNorm switches on spectral normalisation of W (read as Out rows
// of In·K·K), its u and v drawn from rng.
func (c *Conv2d) SpectralNorm(rng *rand.Rand) {
	c.SN = NewSpectralNorm(c.Name, c.Out, c.In*c.K*c.K, false, c.W.Dtype(), rng)
}

// Forward convolves x [N, In, H, W]. It builds the input gradient only when
// x needs one and the weight gradients only when the layer is learnt in g.
func (c *Conv2d) Forward(g *Graph, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 || s[1] != c.In {
		return nil, fmt.Errorf("%s: input shape %v, want (N, %d, H, W)", c.Name, s, c.In)
	}
	geo := newConvGeom(s[0], s[1], s[2], s[3], c.Out, c.K, c.Stride, c.Pad)
	if geo.ho < 1 || geo.wo < 1 {
		return nil, fmt.Errorf("%s: input %dx%d is too small", c.Name, s[2], s[3])
	}
	in, wrt, err := g.layerInputs(x, c.Params(), c.SN)
	if err != nil {
		return nil, err
	}
	needDX, needW := wrt[0], wrt[1]
	sc := &g.scratch
	hasB := c.B != nil
	bias := func(in [][]float32) []float32 {
		if hasB {
			return in[2]
		}
		return nil
	}
	bias64 := func(in [][]float64) []float64 {
		if hasB {
			return in[2]
		}
		return nil
	}
	fwd := Kernels(
		func(out []float32, in [][]float32) error { convFwd(out, in[0], in[1], bias(in), geo, sc); return nil },
		func(out []float64, in [][]float64) error { convFwd(out, in[0], in[1], bias64(in), geo, sc); return nil })
	xs, ws := x.Shape(), c.W.Shape()
	name := fmt.Sprintf("%s(Conv%dx%d/%d)", c.Name, c.K, c.K, c.Stride)
	y, err := Apply(name, tensor.Shape{geo.b, geo.cout, geo.ho, geo.wo}, fwd, wrt, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
		grads := make(G.Nodes, len(in))
		var err error
		if needDX {
			if grads[0], err = convDXOp(xs, ws, geo, sc, in[1], gy); err != nil {
				return nil, err
			}
		}
		if !needW {
			return grads, nil
		}
		if grads[1], err = convDWOp("ConvDW", ws, geo, sc, in[0], gy); err != nil {
			return nil, err
		}
		if hasB {
			grads[2], err = Apply("ConvDB", tensor.Shape{geo.cout}, Kernels(
				func(out []float32, in [][]float32) error { convDB(out, in[0], geo); return nil },
				func(out []float64, in [][]float64) error { convDB(out, in[0], geo); return nil }), nil, nil, gy)
		}
		return grads, err
	}, in...)
	return y, wrap(c.Name, err)
}

// convDXOp is dx = conv_transpose(dy, w), itself differentiable, so that
// a gradient penalty can differentiate D's input gradient: ∂/∂dy of
// ⟨G, convᵀ(dy; w)⟩ is conv(G; w) (no bias), ∂/∂w is the weight gradient
// of G against dy.
func convDXOp(xs, ws tensor.Shape, geo convGeom, sc *scratch, w, gy *G.Node) (*G.Node, error) {
	return Apply("ConvDX", xs, Kernels(
		func(out []float32, in [][]float32) error { convDX(out, in[0], in[1], geo, sc); return nil },
		func(out []float64, in [][]float64) error { convDX(out, in[0], in[1], geo, sc); return nil }),
		[]bool{true, true}, func(_ G.Nodes, _, gg *G.Node) (G.Nodes, error) {
			dw, err := convDWOp("ConvDX'W", ws, geo, sc, gg, gy)
			if err != nil {
				return nil, err
			}
			dgy, err := Apply("ConvDX'dy", gy.Shape(), Kernels(
				func(out []float32, in [][]float32) error { convFwd(out, in[0], in[1], nil, geo, sc); return nil },
				func(out []float64, in [][]float64) error { convFwd(out, in[0], in[1], nil, geo, sc); return nil }), nil, nil, gg, w)
			return G.Nodes{dw, dgy}, err
		}, w, gy)
}

// convDWOp is the weight gradient of a convolution of x whose output's
// gradient is gy.
func convDWOp(name string, ws tensor.Shape, geo convGeom, sc *scratch, x, gy *G.Node) (*G.Node, error) {
	return Apply(name, ws, Kernels(
		func(out []float32, in [][]float32) error { convDW(out, in[0], in[1], geo, sc); return nil },
		func(out []float64, in [][]float64) error { convDW(out, in[0], in[1], geo, sc); return nil }), nil, nil, x, gy)
}

// convGeom is one convolution's geometry: b images of cin×h×w, cout k×k
// filters with stride s and zero padding pad, giving cout×ho×wo.
type convGeom struct {
	b, cin, h, w, cout, k, s, pad, ho, wo int
}

func newConvGeom(b, cin, h, w, cout, k, s, pad int) convGeom {
	return convGeom{b: b, cin: cin, h: h, w: w, cout: cout, k: k, s: s, pad: pad,
		ho: (h+2*pad-k)/s + 1, wo: (w+2*pad-k)/s + 1}
}

func (g convGeom) kdim() int    { return g.cin * g.k * g.k } // rows of the unfolded matrix
func (g convGeom) p() int       { return g.ho * g.wo }       // output pixels per image
func (g convGeom) flops() int   { return 2 * g.b * g.cout * g.p() * g.kdim() }
func (g convGeom) direct() bool { return g.k == 1 && g.s == 1 && g.pad == 0 }

// span is the range [lo, hi) of output columns ox whose input column
// ox·s − pad + kj lies in the image, [0, w) (empty, lo = hi, when none
// does: a kernel column that only ever meets padding).
func (g convGeom) span(kj int) (lo, hi int) {
	lo = min(g.wo, max(0, (g.pad-kj+g.s-1)/g.s))
	// The last such ox is ⌊(w − 1 + pad − kj)/s⌋; Go's / truncates a
	// negative numerator towards zero, hence the test.
	last := g.w - 1 + g.pad - kj
	if last < 0 {
		return lo, lo
	}
	return lo, max(lo, min(g.wo, last/g.s+1))
}

// convChunkCols is the number of columns one unfolded matrix aims at:
// enough for BLAS to run well on small feature maps, small enough for the
// matrix to stay in cache between unfolding and product (a variable so
// that tests can force many chunks).
var convChunkCols = 16384

// chunk is how many images share one gemm.
func (g convGeom) chunk() int { return max(1, min(g.b, convChunkCols/g.p())) }

// im2col writes the columns of image x (cin×h×w) for channels [cLo, cHi)
// into dst: row (c·k + ki)·k + kj, column off + oy·wo + ox holds
// x[c, oy·s - pad + ki, ox·s - pad + kj] (0 outside the image); rows are
// ld apart.
func im2col[T Float](dst []T, ld, off int, x []T, g convGeom, cLo, cHi int) {
	hw := g.h * g.w
	same := g.s == 1 && g.ho == g.h && g.wo == g.w
	for c := cLo; c < cHi; c++ {
		plane := x[c*hw : (c+1)*hw]
		for ki := 0; ki < g.k; ki++ {
			for kj := 0; kj < g.k; kj++ {
				row := dst[((c*g.k+ki)*g.k+kj)*ld+off:]
				if same {
					shiftRow(row[:hw], plane, g.w, ki-g.pad, kj-g.pad)
					continue
				}
				lo, hi := g.span(kj)
				for oy := 0; oy < g.ho; oy++ {
					seg := row[oy*g.wo : (oy+1)*g.wo]
					iy := oy*g.s - g.pad + ki
					if iy < 0 || iy >= g.h {
						clear(seg)
						continue
					}
					src := plane[iy*g.w : (iy+1)*g.w]
					clear(seg[:lo])
					clear(seg[hi:])
					if g.s == 1 {
						if hi > lo {
							copy(seg[lo:hi], src[lo-g.pad+kj:])
						}
					} else {
						for ox := lo; ox < hi; ox++ {
							seg[ox] = src[ox*g.s-g.pad+kj]
						}
					}
				}
			}
		}
	}
}

// shiftRow writes row[oy·w + ox] = plane[(oy+di)·w + ox+dj], 0 outside the
// plane: one unfolded row of a stride-1 convolution that keeps the image
// size, as one block copy plus the edges.
func shiftRow[T Float](row, plane []T, w, di, dj int) {
	n := len(row)
	delta := di*w + dj
	lo, hi := max(0, -delta), min(n, n-delta)
	if lo >= hi {
		clear(row)
		return
	}
	clear(row[:lo])
	copy(row[lo:hi], plane[lo+delta:hi+delta])
	clear(row[hi:])
	h := n / w
	for oy := 0; oy < h; oy++ {
		if iy := oy + di; iy < 0 || iy >= h {
			clear(row[oy*w : (oy+1)*w])
		}
	}
	switch {
	case dj < 0:
		for oy := 0; oy < h; oy++ {
			clear(row[oy*w : oy*w+min(w, -dj)])
		}
	case dj > 0:
		for oy := 0; oy < h; oy++ {
			clear(row[oy*w+max(0, w-dj) : (oy+1)*w])
		}
	}
}

// col2im adds the columns of src (laid out as im2col writes them) back
// into image dx (cin×h×w) for channels [cLo, cHi): im2col's adjoint.
func col2im[T Float](dx []T, src []T, ld, off int, g convGeom, cLo, cHi int) {
	hw := g.h * g.w
	for c := cLo; c < cHi; c++ {
		plane := dx[c*hw : (c+1)*hw]
		for ki := 0; ki < g.k; ki++ {
			for kj := 0; kj < g.k; kj++ {
				row := src[((c*g.k+ki)*g.k+kj)*ld+off:]
				lo, hi := g.span(kj)
				for oy := 0; oy < g.ho; oy++ {
					iy := oy*g.s - g.pad + ki
					if iy < 0 || iy >= g.h {
						continue
					}
					seg := row[oy*g.wo : (oy+1)*g.wo]
					dst := plane[iy*g.w : (iy+1)*g.w]
					if g.s == 1 && hi > lo {
						src := seg[lo:hi]
						d := dst[lo-g.pad+kj:]
						d = d[:len(src)]
						for i, v := range src {
							d[i] += v
						}
					} else {
						for ox := lo; ox < hi; ox++ {
							dst[ox*g.s-g.pad+kj] += seg[ox]
						}
					}
				}
			}
		}
	}
}

// unfold fills cols (kdim × n·p, row stride n·p) with images b0..b0+n-1 of x.
func unfold[T Float](cols, x []T, g convGeom, b0, n int) {
	p, ld, img := g.p(), n*g.p(), g.cin*g.h*g.w
	Parallel(g.cin, n*g.k*g.k*p, func(lo, hi int) {
		for i := 0; i < n; i++ {
			xb := x[(b0+i)*img : (b0+i+1)*img]
			if g.direct() {
				for c := lo; c < hi; c++ {
					copy(cols[c*ld+i*p:c*ld+(i+1)*p], xb[c*p:(c+1)*p])
				}
				continue
			}
			im2col(cols, ld, i*p, xb, g, lo, hi)
		}
	})
}

// gather copies images b0..b0+n-1 of y (cout×p each) into dst as one
// cout × n·p matrix.
func gather[T Float](dst, y []T, g convGeom, b0, n int) {
	p, ld := g.p(), n*g.p()
	Parallel(g.cout, n*p, func(lo, hi int) {
		for co := lo; co < hi; co++ {
			for i := 0; i < n; i++ {
				copy(dst[co*ld+i*p:co*ld+(i+1)*p], y[((b0+i)*g.cout+co)*p:])
			}
		}
	})
}

// A convolution's products can be formed on either side. Unfolding
// (im2col) the input and multiplying by the weights costs a cin·k²-row
// matrix per output pixel; multiplying first and folding the product back
// (col2im) costs a cout·k²-row one. For a stride-1 convolution that keeps
// the image size, each product is also the other kind of product of the
// "swapped" convolution (cout → cin, flipped and transposed filters), so
// forward, input gradient and weight gradient each unfold the side with
// fewer channels: a 64 → 1 output layer unfolds 9 rows, not 576.

// swappable tells whether g is a stride-1 convolution that keeps the size.
func (g convGeom) swappable() bool {
	return g.s == 1 && g.ho == g.h && g.wo == g.w && 2*g.pad == g.k-1 && !g.direct()
}

// swapped is the convolution cout → cin of the same geometry.
func (g convGeom) swapped() convGeom { return newConvGeom(g.b, g.cout, g.h, g.w, g.cin, g.k, 1, g.pad) }

// foldFwd tells whether the forward pass multiplies first and folds.
func (g convGeom) foldFwd() bool { return g.swappable() && g.cout < g.cin }

// flipT writes dst[ci][co][k-1-ki][k-1-kj] = w[co][ci][ki][kj]: the filters
// of the swapped convolution (and, applied to the swapped convolution's
// weight gradient, the gradient of this one).
func flipT[T Float](dst, w []T, g convGeom) {
	k := g.k
	for co := 0; co < g.cout; co++ {
		for ci := 0; ci < g.cin; ci++ {
			src := w[(co*g.cin+ci)*k*k:][:k*k]
			d := dst[(ci*g.cout+co)*k*k:][:k*k]
			for i, v := range src {
				d[k*k-1-i] = v
			}
		}
	}
}

// convFwd is y = conv(x, w) + bias (bias may be nil).
func convFwd[T Float](y, x, w, bias []T, g convGeom, sc *scratch) {
	defer record(time.Now(), g.flops())
	if g.foldFwd() {
		wf := scratchOf[T](sc, 2, len(w))
		flipT(wf, w, g)
		foldProduct(y, wf, x, g.swapped(), sc)
		if bias != nil {
			p := g.p()
			Parallel(g.b*g.cout, p, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					bc := bias[i%g.cout]
					for j, v := range y[i*p : (i+1)*p] {
						y[i*p+j] = v + bc
					}
				}
			})
		}
		return
	}
	unfoldProduct(y, x, w, bias, g, sc)
}

// chunkCols is the unfolded matrix (kdim × n·p) of images b0..b0+n-1 of x:
// x itself for one image of a 1×1 convolution, else unfolded into scratch.
func chunkCols[T Float](x []T, g convGeom, b0, n int, sc *scratch) []T {
	kd, p := g.kdim(), g.p()
	if g.direct() && n == 1 {
		return x[b0*kd*p : (b0+1)*kd*p]
	}
	cols := scratchOf[T](sc, 0, kd*n*p)
	unfold(cols, x, g, b0, n)
	return cols
}

// chunkRows is images b0..b0+n-1 of y (cout×p each) as one cout × n·p
// matrix: y itself for one image, else gathered into scratch.
func chunkRows[T Float](y []T, g convGeom, b0, n int, sc *scratch) []T {
	p := g.p()
	if n == 1 {
		return y[b0*g.cout*p : (b0+1)*g.cout*p]
	}
	rows := scratchOf[T](sc, 1, g.cout*n*p)
	gather(rows, y, g, b0, n)
	return rows
}

// unfoldProduct is y = w·cols(x) + bias, chunk by chunk of images.
func unfoldProduct[T Float](y, x, w, bias []T, g convGeom, sc *scratch) {
	p, kd, nb := g.p(), g.kdim(), g.chunk()
	for b0 := 0; b0 < g.b; b0 += nb {
		n := min(nb, g.b-b0)
		cols := chunkCols(x, g, b0, n, sc)
		dst := y[b0*g.cout*p : (b0+1)*g.cout*p]
		if n > 1 {
			dst = scratchOf[T](sc, 1, g.cout*n*p)
		}
		var beta T
		if bias != nil {
			beta = 1
			for co := 0; co < g.cout; co++ {
				r := dst[co*n*p : (co+1)*n*p]
				for j := range r {
					r[j] = bias[co]
				}
			}
		}
		Gemm(false, false, g.cout, n*p, kd, w, kd, cols, n*p, beta, dst, n*p)
		if n > 1 {
			scatter(y, dst, g, b0, n)
		}
	}
}

// scatter copies a cout × n·p matrix back into images b0..b0+n-1 of y
// (gather's inverse).
func scatter[T Float](y, src []T, g convGeom, b0, n int) {
	p := g.p()
	Parallel(g.cout, n*p, func(lo, hi int) {
		for co := lo; co < hi; co++ {
			for i := 0; i < n; i++ {
				copy(y[((b0+i)*g.cout+co)*p:((b0+i)*g.cout+co+1)*p], src[co*n*p+i*p:])
			}
		}
	})
}

// convDX is dx = conv_transpose(dy, w), the gradient with respect to x:
// wᵀ·dy folded back, or, where dy has no more channels than x, the
// swapped convolution's forward product on dy.
func convDX[T Float](dx, w, dy []T, g convGeom, sc *scratch) {
	defer record(time.Now(), g.flops())
	// With as many channels on both sides, unfolding (copies) beats
	// folding (scattered adds).
	if g.swappable() && g.cout <= g.cin {
		wf := scratchOf[T](sc, 2, len(w))
		flipT(wf, w, g)
		unfoldProduct(dx, dy, wf, nil, g.swapped(), sc)
		return
	}
	foldProduct(dx, w, dy, g, sc)
}

// foldProduct is dx = col2im(wᵀ·dy), chunk by chunk of images.
func foldProduct[T Float](dx, w, dy []T, g convGeom, sc *scratch) {
	p, kd, nb, img := g.p(), g.kdim(), g.chunk(), g.cin*g.h*g.w
	for b0 := 0; b0 < g.b; b0 += nb {
		n := min(nb, g.b-b0)
		gy := chunkRows(dy, g, b0, n, sc)
		if g.direct() && n == 1 {
			Gemm(true, false, kd, p, g.cout, w, kd, gy, p, 0, dx[b0*img:(b0+1)*img], p)
			continue
		}
		dcols := scratchOf[T](sc, 0, kd*n*p)
		Gemm(true, false, kd, n*p, g.cout, w, kd, gy, n*p, 0, dcols, n*p)
		ld := n * p
		Parallel(g.cin, n*g.k*g.k*p, func(lo, hi int) {
			for i := 0; i < n; i++ {
				xb := dx[(b0+i)*img : (b0+i+1)*img]
				if g.direct() {
					for c := lo; c < hi; c++ {
						copy(xb[c*p:(c+1)*p], dcols[c*ld+i*p:])
					}
					continue
				}
				clear(xb[lo*g.h*g.w : hi*g.h*g.w])
				col2im(xb, dcols, ld, i*p, g, lo, hi)
			}
		})
	}
}

// convDW is dw = Σ_b dy_b · cols(x_b)ᵀ, the gradient with respect to w;
// where dy has fewer channels, the swapped convolution's weight gradient
// (which unfolds dy), flipped back.
func convDW[T Float](dw, x, dy []T, g convGeom, sc *scratch) {
	defer record(time.Now(), g.flops())
	if g.foldFwd() {
		gs := g.swapped()
		dws := scratchOf[T](sc, 3, len(dw))
		weightProduct(dws, dy, x, gs, sc)
		flipT(dw, dws, gs)
		return
	}
	weightProduct(dw, x, dy, g, sc)
}

// weightProduct is dw = Σ dy·cols(x)ᵀ, chunk by chunk of images.
func weightProduct[T Float](dw, x, dy []T, g convGeom, sc *scratch) {
	p, kd, nb := g.p(), g.kdim(), g.chunk()
	var beta T
	for b0 := 0; b0 < g.b; b0 += nb {
		n := min(nb, g.b-b0)
		cols := chunkCols(x, g, b0, n, sc)
		gy := chunkRows(dy, g, b0, n, sc)
		Gemm(false, true, g.cout, kd, n*p, gy, n*p, cols, n*p, beta, dw, kd)
		beta = 1
	}
}

// convDB sums dy over images and pixels per output channel (in float64).
func convDB[T Float](db, dy []T, g convGeom) {
	defer record(time.Now(), g.b*g.cout*g.p())
	p := g.p()
	Parallel(g.cout, g.b*p, func(lo, hi int) {
		for co := lo; co < hi; co++ {
			var s float64
			for b := 0; b < g.b; b++ {
				for _, v := range dy[(b*g.cout+co)*p : (b*g.cout+co+1)*p] {
					s += float64(v)
				}
			}
			db[co] = T(s)
		}
	})
}
