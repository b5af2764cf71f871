package models

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// NamedTensor is one tensor of a model's state with its checkpoint name
// (weights, buffers and optimizer moments alike).
type NamedTensor = nn.Param

// Linear is nn.Linear, the fully connected layer of every model.
type Linear = nn.Linear

// NewLinear makes a Linear layer with bias and PyTorch's default initialisation.
func NewLinear(name string, in, out int, dt tensor.Dtype, rng *rand.Rand) *Linear {
	return nn.NewLinear(name, in, out, true, dt, rng)
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
		return rectify(x)
	case ActLeakyReLU:
		return leakyRelu(x, slope)
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
	// StdBeforeLast appends the minibatch standard deviation
	// (nn.MinibatchStd) to the input of the last layer.
	StdBeforeLast bool
}

// Params lists the MLP's weight tensors with their state_dict names.
func (m *MLP) Params() []NamedTensor {
	var ps []NamedTensor
	for _, l := range m.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// mlpNodes are one graph's view of an MLP's weights.
type mlpNodes struct {
	w, b []*G.Node
	eff  []*G.Node // the weights the layers use: w, or w spectrally normalised
}

// weight is layer i's weight as the forward uses it: spectral
// normalisation (one op per graph, so that D on the real and on the fake
// batch share one power-iteration step) when the layer has it.
func (n *mlpNodes) weight(l *Linear, i int) (*G.Node, error) {
	if l.SN == nil {
		return n.w[i], nil
	}
	if n.eff == nil {
		n.eff = make([]*G.Node, len(n.w))
	}
	if n.eff[i] == nil {
		w, err := l.SN.Apply(n.w[i], true, true)
		if err != nil {
			return nil, err
		}
		n.eff[i] = w
	}
	return n.eff[i], nil
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
	if d == nil {
		return
	}
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
		if m.StdBeforeLast && i == len(m.Layers)-1 {
			var err error
			if h, err = nn.MinibatchStd(h); err != nil {
				return nil, nil, err
			}
		}
		w, err := n.weight(m.Layers[i], i)
		if err != nil {
			return nil, nil, err
		}
		y, err := nn.Affine(h, w, n.b[i])
		if err != nil {
			return nil, nil, err
		}
		last := i == len(m.Layers)-1
		act := m.Hidden
		if last {
			act = m.Output
		}
		drop := dropout && !last && m.DropoutP > 0
		var mn *G.Node
		if drop {
			mt := tensor.New(tensor.WithShape(batch, m.Layers[i].Out), tensor.Of(m.Layers[i].W.Dtype()))
			mn = G.NewMatrix(g, mt.Dtype(), G.WithShape(batch, m.Layers[i].Out), G.WithValue(mt), G.WithName(fmt.Sprintf("%s.mask%d", m.Layers[i].Name, len(g.AllNodes()))))
			masks.nodes = append(masks.nodes, mn)
			masks.vals = append(masks.vals, mt)
		}
		if drop && fusedActivations && (act == ActReLU || act == ActLeakyReLU) {
			// the activation and the mask as one op
			slope := m.Slope
			if act == ActReLU {
				slope = 0
			}
			if y, err = nn.LeakyReLU(y, slope, mn); err != nil {
				return nil, nil, fmt.Errorf("%s activation and dropout: %w", m.Layers[i].Name, err)
			}
			h = y
			continue
		}
		if y, err = activate(y, act, m.Slope); err != nil {
			return nil, nil, fmt.Errorf("%s activation: %w", m.Layers[i].Name, err)
		}
		if drop {
			if y, err = G.HadamardProd(y, mn); err != nil {
				return nil, nil, fmt.Errorf("%s dropout: %w", m.Layers[i].Name, err)
			}
		}
		h = y
	}
	return h, masks, nil
}

// fusedActivations makes activate build ReLU and LeakyReLU as one op each
// (maskActOp) instead of Gorgonia's composites; false only in the tests
// that check both give the same numbers.
var fusedActivations = true

// rectify is ReLU: the fused op, or Gorgonia's Rectify.
func rectify(x *G.Node) (*G.Node, error) {
	if !fusedActivations {
		return G.Rectify(x)
	}
	return nn.ReLU(x)
}

// leakyRelu is LeakyReLU with the given slope: the fused op, or Gorgonia's.
func leakyRelu(x *G.Node, slope float64) (*G.Node, error) {
	if !fusedActivations {
		return G.LeakyRelu(x, slope)
	}
	return nn.LeakyReLU(x, slope, nil)
}
