package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// penaltyCase is D's input gradient squared, (∂ΣD/∂x)², for a small
// DCGAN-like D (Conv 4×4/2, LeakyReLU, Conv 4×4/2, LeakyReLU, Linear) or
// an MLP D (Linear, LeakyReLU with a dropout mask, Linear through
// Gorgonia's Mul): the gradient check differentiates it with respect to
// every weight, through the backward ops InputGrad builds.
func penaltyCase(conv bool) opCase {
	if conv {
		return opCase{name: "R1 penalty, conv D", train: true, data: []bool{true},
			ins: func(rng *rand.Rand) []*tensor.Dense {
				return []*tensor.Dense{randTensor(rng, 1, 3, 2, 8, 8),
					randTensor(rng, 0.3, 3, 2, 4, 4), randTensor(rng, 0.1, 3),
					randTensor(rng, 0.3, 4, 3, 4, 4), randTensor(rng, 0.1, 4),
					randTensor(rng, 0.3, 16, 1), randTensor(rng, 0.1, 1)}
			},
			build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
				c1 := &Conv2d{Name: "c1", In: 2, Out: 3, K: 4, Stride: 2, Pad: 1, W: ins[1], B: ins[2]}
				c2 := &Conv2d{Name: "c2", In: 3, Out: 4, K: 4, Stride: 2, Pad: 1, W: ins[3], B: ins[4]}
				fc := &Linear{Name: "fc", In: 16, Out: 1, W: ins[5], B: ins[6]}
				xg, err := G.Reshape(x[0], x[0].Shape().Clone()) // a node that takes a gradient
				if err != nil {
					return nil, err
				}
				h, err := c1.Forward(g, xg)
				if err == nil {
					h, err = LeakyReLU(h, 0.2, nil)
				}
				if err == nil {
					h, err = c2.Forward(g, h)
				}
				if err == nil {
					h, err = LeakyReLU(h, 0.2, nil)
				}
				if err == nil {
					h, err = G.Reshape(h, tensor.Shape{3, 16})
				}
				if err == nil {
					h, err = fc.Forward(g, h)
				}
				if err != nil {
					return nil, err
				}
				return penaltyPlusOutput(h, xg)
			}}
	}
	return opCase{name: "R1 penalty, MLP D", train: true, data: []bool{true, false, false, false, false, true},
		ins: func(rng *rand.Rand) []*tensor.Dense {
			mask := tensor.New(tensor.WithShape(4, 5), tensor.WithBacking([]float64{2, 0, 2, 2, 0, 2, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 0, 2, 2, 2}))
			return []*tensor.Dense{randTensor(rng, 1, 4, 6), randTensor(rng, 0.5, 6, 5), randTensor(rng, 0.1, 5),
				randTensor(rng, 0.5, 5, 1), randTensor(rng, 0.1, 1), mask}
		},
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			xg, err := G.Reshape(x[0], x[0].Shape().Clone())
			if err != nil {
				return nil, err
			}
			h, err := Affine(xg, x[1], x[2])
			if err == nil {
				h, err = LeakyReLU(h, 0.2, x[5])
			}
			if err == nil {
				h, err = Affine(h, x[3], x[4])
			}
			if err != nil {
				return nil, err
			}
			return penaltyPlusOutput(h, xg)
		}}
}

// penaltyPlusOutput is Σ (∂ΣD/∂x)² + Σ D(x): a D loss's two paths to the
// weights, through the penalty and through the output itself.
func penaltyPlusOutput(out, x *G.Node) (*G.Node, error) {
	gx, err := InputGrad(out, x)
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(gx)
	if err != nil {
		return nil, err
	}
	p, err := G.Sum(sq)
	if err != nil {
		return nil, err
	}
	o, err := G.Sum(out)
	if err != nil {
		return nil, err
	}
	y, err := G.Add(p, o)
	if err != nil {
		return nil, err
	}
	return G.Reshape(y, tensor.Shape{1}) // the check's loss weights a tensor
}

// TestInputGradPenalty: a gradient penalty's gradients with respect to
// D's weights, through InputGrad's backward ops, match central differences
// (float64), and the input gradient itself is D's.
func TestInputGradPenalty(t *testing.T) {
	for _, conv := range []bool{false, true} {
		c := penaltyCase(conv)
		t.Run(c.name, func(t *testing.T) {
			rng := newRNG()
			checkGrad(t, c, c.ins(rng), rng)
		})
	}
}

// TestPenaltyRows: R1's and WGAN-GP's per-row terms against their
// definitions, and their backward against central differences.
func TestPenaltyRows(t *testing.T) {
	for _, lip := range []bool{false, true} {
		c := opCase{name: "PenaltyRows", data: []bool{false},
			ins: func(rng *rand.Rand) []*tensor.Dense { return []*tensor.Dense{randTensor(rng, 0.5, 3, 5)} },
			build: func(g *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) {
				return PenaltyRows(x[0], 2.5, lip)
			}}
		rng := newRNG()
		ins := c.ins(rng)
		got, err := forward(c, ins)
		if err != nil {
			t.Fatal(err)
		}
		v := ins[0].Float64s()
		for i := 0; i < 3; i++ {
			var q float64
			for _, x := range v[i*5 : (i+1)*5] {
				q += x * x
			}
			want := 2.5 / 2 * q
			if lip {
				want = 2.5 * (math.Sqrt(q) - 1) * (math.Sqrt(q) - 1)
			}
			if math.Abs(got[i]-want) > 1e-9 {
				t.Errorf("lipschitz %v, row %d: %g, want %g", lip, i, got[i], want)
			}
		}
		checkGrad(t, c, ins, rng)
	}
}
