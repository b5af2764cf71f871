package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one tensor of a layer's state with its PyTorch state_dict name.
// Transposed marks weights stored in×out that checkpoints write out×in (a
// Linear's); Buffer marks state that is not learnt (BatchNorm's running
// statistics and its num_batches_tracked counter, an int64 tensor);
// Optimizer marks an optimizer's state (Adam's moments).
type Param struct {
	Name       string
	T          *tensor.Dense
	Transposed bool
	Buffer     bool
	Optimizer  bool
}

// Weights keeps the learnt parameters of ps, in order.
func Weights(ps []Param) []Param {
	return keep(ps, func(p Param) bool { return !p.Buffer && !p.Optimizer })
}

// Buffers keeps the state of ps that is neither learnt nor the optimizer's.
func Buffers(ps []Param) []Param { return keep(ps, func(p Param) bool { return p.Buffer }) }

// OptimizerState keeps the optimizer's state in ps.
func OptimizerState(ps []Param) []Param { return keep(ps, func(p Param) bool { return p.Optimizer }) }

func keep(ps []Param, f func(Param) bool) []Param {
	var out []Param
	for _, p := range ps {
		if f(p) {
			out = append(out, p)
		}
	}
	return out
}

// Tensors returns the tensors of ps, in order.
func Tensors(ps []Param) []*tensor.Dense {
	out := make([]*tensor.Dense, len(ps))
	for i, p := range ps {
		out[i] = p.T
	}
	return out
}

// weightBias is a layer's name.weight (w) and, when b is set, name.bias.
func weightBias(name string, w, b *tensor.Dense, transposed bool) []Param {
	ps := []Param{{Name: name + ".weight", T: w, Transposed: transposed}}
	if b != nil {
		ps = append(ps, Param{Name: name + ".bias", T: b})
	}
	return ps
}

// Module is anything that owns parameters; Params lists them in
// state_dict order.
type Module interface {
	Params() []Param
}

// ParamsOf concatenates the parameters of ms in order (a model's
// state_dict when ms are its layers in definition order).
func ParamsOf(ms ...Module) []Param {
	var out []Param
	for _, m := range ms {
		out = append(out, m.Params()...)
	}
	return out
}

// SetAt writes v into element i of a float32 or float64 tensor.
func SetAt(t *tensor.Dense, i int, v float64) {
	switch d := t.Data().(type) {
	case []float32:
		d[i] = float32(v)
	case []float64:
		d[i] = v
	}
}

// uniform fills t in row-major order with draws from U(-bound, bound), as
// PyTorch's default Conv2d and Linear initialisation does.
func uniform(t *tensor.Dense, bound float64, rng *rand.Rand) {
	for i := 0; i < t.Shape().TotalSize(); i++ {
		SetAt(t, i, (rng.Float64()*2-1)*bound)
	}
}

// fanInBound is PyTorch's default bound 1/sqrt(fan_in) (kaiming_uniform
// with a = sqrt(5) for weights, the same bound for biases).
func fanInBound(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }

// Graph is one Gorgonia graph's view of a model's layers: each parameter
// tensor becomes one node (bound to the shared tensor), frozen parameters
// and input nodes take no gradient, and the graph's ops share its scratch
// buffers (a tape machine runs them one at a time).
type Graph struct {
	*G.ExprGraph
	// Train selects training behaviour: batch statistics in BatchNorm2d.
	Train bool
	// TrackStats (with Train) makes BatchNorm2d layers record their batch
	// statistics for UpdateStats.
	TrackStats bool

	nodes   map[*tensor.Dense]*G.Node
	frozen  map[*tensor.Dense]bool
	noGrad  map[*G.Node]bool
	sn      map[*SpectralNorm]*G.Node
	updates []func() error
	scratch scratch
}

// NewGraph makes an empty graph; train selects training behaviour.
func NewGraph(train bool) *Graph {
	return &Graph{ExprGraph: G.NewGraph(), Train: train,
		nodes: map[*tensor.Dense]*G.Node{}, frozen: map[*tensor.Dense]bool{}, noGrad: map[*G.Node]bool{},
		sn: map[*SpectralNorm]*G.Node{}}
}

// Node returns the graph's node of p, made on first use.
func (g *Graph) Node(p Param) *G.Node {
	if n, ok := g.nodes[p.T]; ok {
		return n
	}
	n := G.NewTensor(g.ExprGraph, p.T.Dtype(), p.T.Dims(), G.WithShape(p.T.Shape().Clone()...), G.WithValue(p.T), G.WithName(p.Name))
	g.nodes[p.T] = n
	if p.Buffer {
		g.noGrad[n] = true
	}
	return n
}

// Nodes returns the nodes of ps, in order.
func (g *Graph) Nodes(ps []Param) G.Nodes {
	out := make(G.Nodes, len(ps))
	for i, p := range ps {
		out[i] = g.Node(p)
	}
	return out
}

// Freeze marks ps as fixed in this graph: layers build no gradients for them.
func (g *Graph) Freeze(ps []Param) {
	for _, p := range ps {
		g.frozen[p.T] = true
	}
}

// Input adds a graph input holding t (a batch, noise), which takes no gradient.
func (g *Graph) Input(name string, t *tensor.Dense) *G.Node {
	n := G.NewTensor(g.ExprGraph, t.Dtype(), t.Dims(), G.WithShape(t.Shape().Clone()...), G.WithValue(t), G.WithName(name))
	g.noGrad[n] = true
	return n
}

// NoGrad marks n (a reshaped input, say) as taking no gradient and returns it.
func (g *Graph) NoGrad(n *G.Node) *G.Node {
	g.noGrad[n] = true
	return n
}

// needsGrad tells whether anything upstream of n is learnt in this graph.
func (g *Graph) needsGrad(n *G.Node) bool { return !g.noGrad[n] }

// layerInputs is a layer's op inputs: x, then the nodes of its parameters
// ps (weight first), with which of them take gradients: x when it needs
// one, the parameters when the layer is learnt in this graph.
// With sn set, the weight's node is its spectral normalisation.
func (g *Graph) layerInputs(x *G.Node, ps []Param, sn *SpectralNorm) (in G.Nodes, wrt []bool, err error) {
	ps = Weights(ps)
	in = append(G.Nodes{x}, g.Nodes(ps)...)
	wrt = make([]bool, len(in))
	wrt[0] = g.needsGrad(x)
	for i := 1; i < len(in); i++ {
		wrt[i] = g.learnt(ps[0])
	}
	if sn != nil {
		in[1], err = g.spectral(sn, in[1], wrt[1])
	}
	return in, wrt, err
}

// learnt tells whether p takes a gradient in this graph.
func (g *Graph) learnt(p Param) bool { return !g.frozen[p.T] && !p.Buffer }

// OnUpdate registers f to run in UpdateStats.
func (g *Graph) OnUpdate(f func() error) { g.updates = append(g.updates, f) }

// UpdateStats folds what the last run of the graph measured (batch-norm
// statistics) into the layers' buffers. Call it after a run that the
// model keeps (a finite loss).
func (g *Graph) UpdateStats() error {
	for _, f := range g.updates {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// scratch holds the unfolded matrices of a graph's convolutions.
type scratch struct {
	f32 [4][]float32
	f64 [4][]float64
}

func scratchOf[T Float](s *scratch, slot, n int) []T {
	var z T
	if _, ok := any(z).(float32); ok {
		if cap(s.f32[slot]) < n {
			s.f32[slot] = make([]float32, n)
		}
		return any(s.f32[slot][:n]).([]T)
	}
	if cap(s.f64[slot]) < n {
		s.f64[slot] = make([]float64, n)
	}
	return any(s.f64[slot][:n]).([]T)
}

// wrap adds layer context to an error.
func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}
