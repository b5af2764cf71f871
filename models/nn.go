package models

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/chewxy/hm"
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
			op := maskActOp{relu: act == ActReLU, drop: true}
			if !op.relu {
				op.slope = m.Slope
			}
			if y, err = G.ApplyOp(op, y, mn); err != nil {
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

// NamedTensor is one tensor of a model's state with its checkpoint name.
// Transposed marks weights stored in×out that checkpoints write out×in.
type NamedTensor struct {
	Name       string
	T          *tensor.Dense
	Transposed bool
}

// fusedActivations makes activate build ReLU and LeakyReLU as one op each
// (maskActOp) instead of Gorgonia's composites; false only in the tests
// that check both give the same numbers.
var fusedActivations = true

// maskActOp is ReLU (slope 0) or LeakyReLU as one elementwise op, with
// grad set its backward pass (x, dy) → dy·(1 or slope). Gorgonia's
// Rectify is x⊙(x ≥ 0) and its LeakyRelu x⊙(x ≥ 0) + (x⊙(x < 0))⊙slope:
// two to six full-size temporaries forward, about as many backward, and a
// gradient for the slope constant that nothing reads. The fused op gives
// the same numbers bit for bit: for x ≥ 0 it returns x·1 (ReLU) or x, and
// for x < 0 x·0 or x·slope, and the gradient dy·1 or dy·0 / dy·slope,
// with the comparison x ≥ 0 the composites use (x = 0 counts as positive).
// (They differ only where x or dy is infinite or NaN, where the
// composites' 0·∞ makes NaN: such a step fails on its loss either way.)
//
// With drop set the op also takes an inverted-dropout mask m, a graph input
// that takes no gradient: forward act(x)⊙m, backward (m⊙dy)·(1 or slope),
// the composites' values and order of operations again, without the
// product's temporaries and its gradient for the mask.
type maskActOp struct {
	slope float64 // 0 for ReLU
	relu  bool    // ReLU: positive side x·1, as x⊙mask
	drop  bool    // a dropout mask follows x
	grad  bool
}

func (op maskActOp) Arity() int {
	n := 1
	if op.drop {
		n++
	}
	if op.grad {
		n++
	}
	return n
}

func (op maskActOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make(hm.Types, op.Arity()+1)
	for i := range ts {
		ts[i] = a
	}
	return hm.NewFnType(ts...)
}

func (op maskActOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if len(ds) != op.Arity() {
		return nil, fmt.Errorf("%v: %d inputs", op, len(ds))
	}
	s, ok := ds[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input has no shape", op)
	}
	return s.Clone(), nil
}

func (op maskActOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

// UsePreallocDo writes into prealloc when it has x's dtype and shape.
func (op maskActOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	if len(vs) != op.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", op, len(vs), op.Arity())
	}
	x, ok := vs[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%v: input is %T, not a dense tensor", op, vs[0])
	}
	var mask, dy *tensor.Dense
	next := 1
	for _, p := range []struct {
		on  bool
		dst **tensor.Dense
	}{{op.drop, &mask}, {op.grad, &dy}} {
		if !p.on {
			continue
		}
		t, ok := vs[next].(*tensor.Dense)
		if !ok || t.Dtype() != x.Dtype() || t.Shape().TotalSize() != x.Shape().TotalSize() {
			return nil, fmt.Errorf("%v: input %d (%v) does not match x %v", op, next, vs[next], x.Shape())
		}
		*p.dst = t
		next++
	}
	out, ok := prealloc.(*tensor.Dense)
	if !ok || out.Dtype() != x.Dtype() || !out.Shape().Eq(x.Shape()) || !out.IsNativelyAccessible() {
		out = tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.Of(x.Dtype()))
	}
	switch xs := x.Data().(type) {
	case []float32:
		maskActParallel(xs, denseData[float32](mask), denseData[float32](dy), out.Data().([]float32), float32(op.slope), op.relu)
	case []float64:
		maskActParallel(xs, denseData[float64](mask), denseData[float64](dy), out.Data().([]float64), op.slope, op.relu)
	default:
		return nil, fmt.Errorf("%v: unsupported dtype %v", op, x.Dtype())
	}
	return out, nil
}

func denseData[T float32 | float64](t *tensor.Dense) []T {
	if t == nil {
		return nil
	}
	return t.Data().([]T)
}

// maskActParallel is maskActRun split over the cores when x is large (a
// conv net's feature maps); each element is computed the same way.
func maskActParallel[T float32 | float64](x, m, dy, out []T, slope T, relu bool) {
	part := func(s []T, lo, hi int) []T {
		if s == nil {
			return nil
		}
		return s[lo:hi]
	}
	dcParallel(len(x), len(x), func(lo, hi int) {
		maskActRun(x[lo:hi], part(m, lo, hi), part(dy, lo, hi), out[lo:hi], slope, relu)
	})
}

// maskActRun computes out = x·k (dy nil) or dy·k with k = 1 where x ≥ 0
// and slope elsewhere, the slope being 0 for ReLU; with a dropout mask m,
// out = (x·k)·m or (m·dy)·k.
func maskActRun[T float32 | float64](x, m, dy, out []T, slope T, relu bool) {
	out = out[:len(x)]
	if m != nil {
		m = m[:len(x)]
		if dy != nil {
			dy = dy[:len(x)]
			for i, v := range x {
				if v >= 0 {
					out[i] = (m[i] * dy[i]) * 1
				} else {
					out[i] = (m[i] * dy[i]) * slope
				}
			}
			return
		}
		for i, v := range x {
			if v < 0 {
				v *= slope
			}
			out[i] = v * m[i]
		}
		return
	}
	if dy != nil {
		dy = dy[:len(x)]
		for i, v := range x {
			if v >= 0 {
				out[i] = dy[i] * 1
			} else {
				out[i] = dy[i] * slope
			}
		}
		return
	}
	if relu {
		for i, v := range x {
			if v >= 0 {
				out[i] = v
			} else {
				out[i] = v * 0
			}
		}
		return
	}
	for i, v := range x {
		if v >= 0 {
			out[i] = v
		} else {
			out[i] = v * slope
		}
	}
}

func (op maskActOp) ReturnsPtr() bool      { return false }
func (op maskActOp) CallsExtern() bool     { return false }
func (op maskActOp) OverwritesInput() int  { return -1 }
func (op maskActOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op maskActOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op maskActOp) String() string {
	name := fmt.Sprintf("LeakyReLU{%g}", op.slope)
	if op.relu {
		name = "ReLU"
	}
	if op.drop {
		name += "Dropout"
	}
	if op.grad {
		return name + "Grad"
	}
	return name
}

// DiffWRT: the forward op is differentiable in x; the backward op is not
// differentiated again.
func (op maskActOp) DiffWRT(n int) []bool {
	out := make([]bool, n)
	if !op.grad && n > 0 {
		out[0] = true
	}
	return out
}

func (op maskActOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.grad || len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v has no derivative here", op)
	}
	g := op
	g.grad = true
	dx, err := G.ApplyOp(g, append(inputs[:len(inputs):len(inputs)], grad)...)
	if err != nil {
		return nil, err
	}
	out := make(G.Nodes, len(inputs)) // the mask takes no gradient
	out[0] = dx
	return out, nil
}

// rectify is ReLU: the fused op, or Gorgonia's Rectify.
func rectify(x *G.Node) (*G.Node, error) {
	if !fusedActivations {
		return G.Rectify(x)
	}
	return G.ApplyOp(maskActOp{relu: true}, x)
}

// leakyRelu is LeakyReLU with the given slope: the fused op, or Gorgonia's.
func leakyRelu(x *G.Node, slope float64) (*G.Node, error) {
	if !fusedActivations {
		return G.LeakyRelu(x, slope)
	}
	return G.ApplyOp(maskActOp{slope: slope}, x)
}
