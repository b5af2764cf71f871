package models

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is a fully connected layer y = x·W + b whose weights live in
// tensors kept apart from any graph, so that the training and the sampling
// graphs share them. W is stored in×out (x·W needs no transpose); checkpoints
// write it out×in, as PyTorch's nn.Linear does.
type Linear struct {
	Name    string // PyTorch state_dict prefix, e.g. "generator.0"
	In, Out int
	W, B    *tensor.Dense
}

// NewLinear makes a layer with PyTorch's default nn.Linear initialisation:
// W and b uniform in ±1/sqrt(in), drawn from rng.
func NewLinear(name string, in, out int, dt tensor.Dtype, rng *rand.Rand) *Linear {
	bound := 1 / math.Sqrt(float64(in))
	l := &Linear{Name: name, In: in, Out: out,
		W: tensor.New(tensor.WithShape(in, out), tensor.Of(dt)),
		B: tensor.New(tensor.WithShape(out), tensor.Of(dt)),
	}
	// PyTorch draws W (out×in, row-major) first, then b. Draw in that order so
	// that the same stream gives the same numbers in the same places.
	wt := make([]float64, in*out)
	for i := range wt {
		wt[i] = (rng.Float64()*2 - 1) * bound
	}
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			setAt(l.W, i*out+o, wt[o*in+i])
		}
	}
	for o := 0; o < out; o++ {
		setAt(l.B, o, (rng.Float64()*2-1)*bound)
	}
	return l
}

func setAt(t *tensor.Dense, i int, v float64) {
	switch d := t.Data().(type) {
	case []float32:
		d[i] = float32(v)
	case []float64:
		d[i] = v
	}
}

// Nodes adds the layer's weights to g as learnable nodes bound to the shared tensors.
func (l *Linear) Nodes(g *G.ExprGraph) (w, b *G.Node) {
	w = G.NewMatrix(g, l.W.Dtype(), G.WithShape(l.In, l.Out), G.WithValue(l.W), G.WithName(l.Name+".weight"))
	b = G.NewVector(g, l.B.Dtype(), G.WithShape(l.Out), G.WithValue(l.B), G.WithName(l.Name+".bias"))
	return w, b
}

// Apply builds x·W + b on g for the given weight nodes.
func Apply(x, w, b *G.Node) (*G.Node, error) {
	xw, err := G.Mul(x, w)
	if err != nil {
		return nil, fmt.Errorf("linear %s: %w", w.Name(), err)
	}
	y, err := G.BroadcastAdd(xw, b, nil, []byte{0})
	if err != nil {
		return nil, fmt.Errorf("linear bias %s: %w", b.Name(), err)
	}
	return y, nil
}

// Activation names an elementwise non-linearity.
type Activation int

// The activations the networks use.
const (
	ActNone Activation = iota
	ActReLU
	ActLeakyReLU
	ActTanh
	ActSigmoid
)

func activate(x *G.Node, a Activation, slope float64) (*G.Node, error) {
	switch a {
	case ActReLU:
		return G.Rectify(x)
	case ActLeakyReLU:
		return G.LeakyRelu(x, slope)
	case ActTanh:
		return G.Tanh(x)
	case ActSigmoid:
		return G.Sigmoid(x)
	}
	return x, nil
}

// MLP is a stack of Linear layers with one activation between them and
// another after the last, plus optional inverted dropout after each hidden
// activation. Dropout masks are graph inputs filled from a seeded source
// (Gorgonia's own Dropout seeds itself from the clock).
type MLP struct {
	Layers   []*Linear
	Hidden   Activation // after each layer but the last
	Output   Activation // after the last layer
	Slope    float64    // LeakyReLU negative slope
	DropoutP float64    // 0 = no dropout
}

// Params lists the MLP's weight tensors with their state_dict names.
func (m *MLP) Params() []NamedTensor {
	var ps []NamedTensor
	for _, l := range m.Layers {
		ps = append(ps, NamedTensor{Name: l.Name + ".weight", T: l.W, Transposed: true}, NamedTensor{Name: l.Name + ".bias", T: l.B})
	}
	return ps
}

// mlpNodes are one graph's view of an MLP's weights.
type mlpNodes struct {
	w, b []*G.Node
}

func (m *MLP) nodes(g *G.ExprGraph) *mlpNodes {
	n := &mlpNodes{}
	for _, l := range m.Layers {
		w, b := l.Nodes(g)
		n.w = append(n.w, w)
		n.b = append(n.b, b)
	}
	return n
}

func (n *mlpNodes) all() G.Nodes {
	var out G.Nodes
	for i := range n.w {
		out = append(out, n.w[i], n.b[i])
	}
	return out
}

// dropoutMasks holds the per-forward mask inputs of one MLP application.
type dropoutMasks struct {
	nodes []*G.Node
	vals  []*tensor.Dense
}

// fill draws fresh inverted-dropout masks: 0 with probability p, else 1/(1-p).
func (d *dropoutMasks) fill(p float64, rng *rand.Rand) {
	keep := 1 / (1 - p)
	for _, t := range d.vals {
		switch data := t.Data().(type) {
		case []float32:
			k := float32(keep)
			for i := range data {
				if rng.Float64() < p {
					data[i] = 0
				} else {
					data[i] = k
				}
			}
		case []float64:
			for i := range data {
				if rng.Float64() < p {
					data[i] = 0
				} else {
					data[i] = keep
				}
			}
		}
	}
}

// forward builds the MLP on x. With dropout on, it creates mask inputs of
// the right shapes for a batch of `batch` rows and returns them.
func (m *MLP) forward(g *G.ExprGraph, n *mlpNodes, x *G.Node, batch int, dropout bool) (*G.Node, *dropoutMasks, error) {
	h := x
	masks := &dropoutMasks{}
	for i := range m.Layers {
		y, err := Apply(h, n.w[i], n.b[i])
		if err != nil {
			return nil, nil, err
		}
		last := i == len(m.Layers)-1
		act := m.Hidden
		if last {
			act = m.Output
		}
		if y, err = activate(y, act, m.Slope); err != nil {
			return nil, nil, fmt.Errorf("%s activation: %w", m.Layers[i].Name, err)
		}
		if dropout && !last && m.DropoutP > 0 {
			mt := tensor.New(tensor.WithShape(batch, m.Layers[i].Out), tensor.Of(m.Layers[i].W.Dtype()))
			mn := G.NewMatrix(g, mt.Dtype(), G.WithShape(batch, m.Layers[i].Out), G.WithValue(mt), G.WithName(fmt.Sprintf("%s.mask%d", m.Layers[i].Name, len(g.AllNodes()))))
			if y, err = G.HadamardProd(y, mn); err != nil {
				return nil, nil, fmt.Errorf("%s dropout: %w", m.Layers[i].Name, err)
			}
			masks.nodes = append(masks.nodes, mn)
			masks.vals = append(masks.vals, mt)
		}
		h = y
	}
	return h, masks, nil
}

// NamedTensor is one tensor of a model's state with its checkpoint name.
// Transposed marks weights stored in×out that checkpoints write out×in.
type NamedTensor struct {
	Name       string
	T          *tensor.Dense
	Transposed bool
}
