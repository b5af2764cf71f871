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

// Params implements Module: weight (transposed in checkpoints), then bias.
func (l *Linear) Params() []Param {
	ps := []Param{{Name: l.Name + ".weight", T: l.W, Transposed: true}}
	if l.B != nil {
		ps = append(ps, Param{Name: l.Name + ".bias", T: l.B})
	}
	return ps
}

// Forward is x·W + b for x (batch × In).
func (l *Linear) Forward(g *Graph, x *G.Node) (*G.Node, error) {
	ps := l.Params()
	var b *G.Node
	if l.B != nil {
		b = g.Node(ps[1])
	}
	return Affine(x, g.Node(ps[0]), b)
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
