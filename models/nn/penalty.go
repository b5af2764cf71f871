package nn

import (
	"fmt"
	"math"
	"reflect"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// InputGrad builds ∂(Σ out)/∂x, the gradient of a network's summed
// outputs with respect to its input x, as nodes of out's graph that a
// later G.Grad differentiates again: what gradient penalties (R1, WGAN-GP)
// need. Every op between x and out must have a differentiable backward;
// the layers here do (Linear, Conv2d, LeakyReLU, reshapes; Gorgonia's Mul).
//
// Gorgonia's Backpropagate marks each node it differentiates and reuses
// that derivative in any later differentiation of the graph, which would
// hand the training step's G.Grad this sum's derivatives instead of the
// loss's. So InputGrad clears those marks afterwards (Gorgonia has no call
// for it, hence the reflection on its unexported fields).
func InputGrad(out, x *G.Node) (*G.Node, error) {
	ones := tensor.New(tensor.WithShape(out.Shape().Clone()...), tensor.Of(out.Dtype()))
	switch d := ones.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = 1
		}
	case []float64:
		for i := range d {
			d[i] = 1
		}
	}
	seed := G.NewTensor(out.Graph(), out.Dtype(), out.Dims(), G.WithShape(out.Shape().Clone()...), G.WithValue(ones),
		G.WithName(fmt.Sprintf("ones(%s)#%d", out.Name(), len(out.Graph().AllNodes()))))
	gs, err := G.Backpropagate(G.Nodes{out}, G.Nodes{seed}, G.Nodes{x})
	if err != nil {
		return nil, fmt.Errorf("input gradient: %w", err)
	}
	for _, n := range out.Graph().AllNodes() {
		clearDeriv(n)
	}
	return gs[0], nil
}

// clearDeriv forgets which nodes n is the derivative of, and its own
// derivative.
func clearDeriv(n *G.Node) {
	v := reflect.ValueOf(n).Elem()
	for _, name := range []string{"deriv", "derivOf"} {
		f := v.FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.Zero(f.Type()))
	}
}

// gpEps is added under WGAN-GP's square root, so that a zero gradient
// has a finite derivative.
const gpEps = 1e-12

// PenaltyRows is, for each row g_i of an input gradient g (rows, m), R1's
// w/2·‖g_i‖² (lipschitz false) or WGAN-GP's w·(‖g_i‖ − 1)² (true, with
// ‖g_i‖ = √(Σ g_i² + 1e-12)): the (rows) terms a gradient penalty averages.
// Its backward scales each row of g: w·g_i, or 2w·(1 − 1/‖g_i‖)·g_i.
func PenaltyRows(g *G.Node, w float64, lipschitz bool) (*G.Node, error) {
	s := g.Shape()
	if s.Dims() != 2 {
		return nil, fmt.Errorf("PenaltyRows: input %v, want (rows, m)", s)
	}
	rows, m := s[0], s[1]
	return Apply(fmt.Sprintf("PenaltyRows{%g,%v}", w, lipschitz), tensor.Shape{rows},
		Kernels(penaltyFwd[float32](rows, m, w, lipschitz), penaltyFwd[float64](rows, m, w, lipschitz)),
		[]bool{true}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			d, err := Apply("PenaltyRowsGrad", s, Kernels(penaltyBwd[float32](rows, m, w, lipschitz), penaltyBwd[float64](rows, m, w, lipschitz)),
				nil, nil, in[0], gy)
			return G.Nodes{d}, err
		}, g)
}

// sumSquares is Σ v² in float64.
func sumSquares[T Float](row []T) float64 {
	var q float64
	for _, v := range row {
		q += float64(v) * float64(v)
	}
	return q
}

func penaltyFwd[T Float](rows, m int, w float64, lipschitz bool) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		for i := 0; i < rows; i++ {
			q := sumSquares(in[0][i*m : (i+1)*m])
			if lipschitz {
				d := math.Sqrt(q+gpEps) - 1
				out[i] = T(w * d * d)
			} else {
				out[i] = T(w / 2 * q)
			}
		}
		return nil
	}
}

func penaltyBwd[T Float](rows, m int, w float64, lipschitz bool) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		g, gy := in[0], in[1]
		for i := 0; i < rows; i++ {
			row := g[i*m : (i+1)*m]
			c := w
			if lipschitz {
				c = 2 * w * (1 - 1/math.Sqrt(sumSquares(row)+gpEps))
			}
			c *= float64(gy[i])
			for j, v := range row {
				out[i*m+j] = T(c * float64(v))
			}
		}
		return nil
	}
}
