package nn

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is PyTorch's nn.Linear, y = x·W + b. W is stored in×out (x·W needs
// no transpose); checkpoints write it out×in, as PyTorch does. B is nil
// without bias.
type Linear struct {
	Name    string // state_dict prefix, e.g. "generator.0"
	In, Out int
	W, B    *tensor.Dense
	// SN, when set, spectrally normalises W (see SpectralNorm).
	SN *SpectralNorm
}

// NewLinear makes a layer with PyTorch's default initialisation: W, then
// b, uniform in ±1/sqrt(in), W drawn in PyTorch's out×in order so that the
// same stream gives the same numbers in the same places.
func NewLinear(name string, in, out int, bias bool, dt tensor.Dtype, rng *rand.Rand) *Linear {
	bound := fanInBound(in)
	l := &Linear{Name: name, In: in, Out: out, W: tensor.New(tensor.WithShape(in, out), tensor.Of(dt))}
	wt := make([]float64, in*out)
	for i := range wt {
		wt[i] = (rng.Float64()*2 - 1) * bound
	}
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			SetAt(l.W, i*out+o, wt[o*in+i])
		}
	}
	if bias {
		l.B = tensor.New(tensor.WithShape(out), tensor.Of(dt))
		uniform(l.B, bound, rng)
	}
	return l
}

// Params implements Module: weight (transposed in checkpoints), then bias
// (then u and v with spectral normalisation).
func (l *Linear) Params() []Param { return snParams(l.Name, l.W, l.B, true, l.SN) }

// SpectralNorm switches on spectral normalisation of W, its u and v drawn
// from rng.
func (l *Linear) SpectralNorm(rng *rand.Rand) {
	l.SN = NewSpectralNorm(l.Name, l.Out, l.In, true, l.W.Dtype(), rng)
}

// Forward is x·W + b for x (batch × In), as one op with its own buffers
// (Gorgonia's Mul and BroadcastAdd have the tape allocate their results
// anew whenever another value passed through their register); it builds
// the input gradient only when x needs one and the weight gradients only
// when the layer is learnt in g.
func (l *Linear) Forward(g *Graph, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 2 || s[1] != l.In {
		return nil, fmt.Errorf("%s: input shape %v, want (N, %d)", l.Name, s, l.In)
	}
	n, in, out := s[0], l.In, l.Out
	nodes, wrt, err := g.layerInputs(x, l.Params(), l.SN)
	if err != nil {
		return nil, err
	}
	needDX, needW, hasB := wrt[0], wrt[1], l.B != nil
	fwd := Kernels(linearFwd[float32](n, in, out, hasB), linearFwd[float64](n, in, out, hasB))
	y, err := Apply(l.Name+"(Linear)", tensor.Shape{n, out}, fwd, wrt, func(in2 G.Nodes, _, gy *G.Node) (G.Nodes, error) {
		grads := make(G.Nodes, len(in2))
		var err error
		if needDX { // dx = dy·Wᵀ
			if grads[0], err = linearDX(n, in, out, gy, in2[1]); err != nil {
				return nil, err
			}
		}
		if !needW {
			return grads, nil
		}
		// dW = xᵀ·dy
		if grads[1], err = gemmOp("LinearDW", true, false, in, out, n, nil, nil, in2[0], gy); err != nil {
			return nil, err
		}
		if hasB { // db = Σ_rows dy
			grads[2], err = Apply("LinearDB", tensor.Shape{out}, Kernels(colSums[float32](n, out), colSums[float64](n, out)), nil, nil, gy)
		}
		return grads, err
	}, nodes...)
	return y, wrap(l.Name, err)
}

// linearFwd is the kernel y = x·W (+ b) for n rows.
func linearFwd[T Float](n, in, out int, bias bool) func(y []T, v [][]T) error {
	return func(y []T, v [][]T) error {
		var beta T
		if bias {
			beta = 1
			for r := 0; r < n; r++ {
				copy(y[r*out:(r+1)*out], v[2])
			}
		}
		Gemm(false, false, n, out, in, v[0], in, v[1], out, beta, y, out)
		return nil
	}
}

// colSums is the kernel db[j] = Σ_r dy[r, j] (in float64).
func colSums[T Float](n, out int) func(db []T, v [][]T) error {
	return func(db []T, v [][]T) error {
		dy := v[0]
		Parallel(out, n, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				var s float64
				for r := 0; r < n; r++ {
					s += float64(dy[r*out+j])
				}
				db[j] = T(s)
			}
		})
		return nil
	}
}

// Affine builds x·w + b (b may be nil) from weight nodes, with Gorgonia's
// matrix product and broadcast add.
func Affine(x, w, b *G.Node) (*G.Node, error) {
	xw, err := G.Mul(x, w)
	if err != nil {
		return nil, fmt.Errorf("linear %s: %w", w.Name(), err)
	}
	if b == nil {
		return xw, nil
	}
	y, err := G.BroadcastAdd(xw, b, nil, []byte{0})
	if err != nil {
		return nil, fmt.Errorf("linear bias %s: %w", b.Name(), err)
	}
	return y, nil
}

// Nodes adds the layer's weights to a plain Gorgonia graph as learnable
// nodes bound to the shared tensors (b is nil without bias).
func (l *Linear) Nodes(g *G.ExprGraph) (w, b *G.Node) {
	w = G.NewMatrix(g, l.W.Dtype(), G.WithShape(l.In, l.Out), G.WithValue(l.W), G.WithName(l.Name+".weight"))
	if l.B != nil {
		b = G.NewVector(g, l.B.Dtype(), G.WithShape(l.Out), G.WithValue(l.B), G.WithName(l.Name+".bias"))
	}
	return w, b
}

// linearDX is dx = dy·Wᵀ (n×in from dy n×out and W in×out), itself
// differentiable, so that a gradient penalty can differentiate D's input
// gradient: ∂/∂dy of ⟨G, dy·Wᵀ⟩ is G·W, ∂/∂W is Gᵀ·dy.
func linearDX(n, in, out int, gy, w *G.Node) (*G.Node, error) {
	return gemmOp("LinearDX", false, true, n, in, out, []bool{true, true}, func(_ G.Nodes, _, gg *G.Node) (G.Nodes, error) {
		dgy, err := gemmOp("LinearDX'dy", false, false, n, out, in, nil, nil, gg, w)
		if err != nil {
			return nil, err
		}
		dw, err := gemmOp("LinearDX'W", true, false, in, out, n, nil, nil, gg, gy)
		return G.Nodes{dgy, dw}, err
	}, gy, w)
}

// gemmOp is the op C = op(A)·op(B), m×n with inner size k, for row-major
// A and B (transposed where ta, tb say), with the given gradient rule.
func gemmOp(name string, ta, tb bool, m, n, k int, wrt []bool, diff Diff, a, b *G.Node) (*G.Node, error) {
	lda, ldb := k, n
	if ta {
		lda = m
	}
	if tb {
		ldb = k
	}
	return Apply(name, tensor.Shape{m, n}, Kernels(
		func(o []float32, v [][]float32) error {
			Gemm(ta, tb, m, n, k, v[0], lda, v[1], ldb, 0, o, n)
			return nil
		},
		func(o []float64, v [][]float64) error {
			Gemm(ta, tb, m, n, k, v[0], lda, v[1], ldb, 0, o, n)
			return nil
		}),
		wrt, diff, a, b)
}
