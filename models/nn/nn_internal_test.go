package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Every op of the package appears once in opCases: a float64 input
// generator, a graph builder and one plain-loop reference. TestForward
// compares each op with its reference in float64 and float32, and
// TestGradients checks each op's backward by central differences.

// newRNG is the tests' seeded stream.
func newRNG() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// randTensor is a float64 tensor of the given shape, uniform in ±scale.
func randTensor(rng *rand.Rand, scale float64, shape ...int) *tensor.Dense {
	d := make([]float64, tensor.Shape(shape).TotalSize())
	for i := range d {
		d[i] = (2*rng.Float64() - 1) * scale
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}

// awayFromZero is a float64 tensor with |v| in [0.1, 1.1): no kinks of
// (leaky) ReLU within a finite-difference step.
func awayFromZero(rng *rand.Rand, shape ...int) *tensor.Dense {
	t := randTensor(rng, 1, shape...)
	for i, v := range t.Float64s() {
		t.Float64s()[i] = math.Copysign(0.1+math.Abs(v), v)
	}
	return t
}

// values copies a float32 or float64 value's data as float64.
func values(v G.Value) []float64 {
	switch d := v.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case float64:
		return []float64{d}
	case float32:
		return []float64{float64(d)}
	}
	panic(fmt.Sprintf("values of %T", v.Data()))
}

// to32 is a float32 copy of a float64 tensor.
func to32(t *tensor.Dense) *tensor.Dense {
	d := t.Float64s()
	out := make([]float32, len(d))
	for i, v := range d {
		out[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(out))
}

// opCase is one op under test.
type opCase struct {
	name  string
	train bool // the graph's mode
	ins   func(rng *rand.Rand) []*tensor.Dense
	// data marks the inputs that are graph inputs (g.Input, no gradient);
	// the others are learnt parameters (g.Node), gradient-checked.
	data  []bool
	build func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error)
	ref   func(in [][]float64) []float64
	// noGrad: the op has no backward (BatchNorm2d in evaluation).
	noGrad bool
	// chunk, when set, is convChunkCols during the case.
	chunk int
}

// withChunk sets convChunkCols for the case and returns its restorer.
func (c opCase) withChunk() func() {
	old := convChunkCols
	if c.chunk > 0 {
		convChunkCols = c.chunk
	}
	return func() { convChunkCols = old }
}

// nodesOf makes the graph nodes of ins: inputs for data, parameters
// otherwise (so that a layer holding the same tensor finds the same node).
func nodesOf(g *Graph, ins []*tensor.Dense, data []bool) G.Nodes {
	x := make(G.Nodes, len(ins))
	for i, t := range ins {
		name := fmt.Sprintf("in%d", i)
		if i < len(data) && data[i] {
			x[i] = g.Input(name, t)
		} else {
			x[i] = g.Node(Param{Name: name, T: t})
		}
	}
	return x
}

// forwardGraph builds the case on ins and returns its output and a
// machine that runs it.
func forwardGraph(c opCase, ins []*tensor.Dense) (*G.Node, G.VM, error) {
	g := NewGraph(c.train)
	y, err := c.build(g, ins, nodesOf(g, ins, c.data))
	if err != nil {
		return nil, nil, err
	}
	return y, G.NewTapeMachine(g.ExprGraph), nil
}

// forward runs the case once on ins.
func forward(c opCase, ins []*tensor.Dense) ([]float64, error) {
	y, m, err := forwardGraph(c, ins)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, err
	}
	return values(y.Value()), nil
}

// checkGrad compares the gradients that the case's graph builds for its
// learnt inputs with central differences of loss = Σ y⊙r for a fixed
// random r. The analytic gradients come from one run of a fresh machine
// with bound dual values (Gorgonia adds each run's gradients into them).
// Small inputs are checked element by element; large ones (whose kernels
// split over the cores) along a few random directions.
func checkGrad(t *testing.T, c opCase, ins []*tensor.Dense, rng *rand.Rand) {
	t.Helper()
	const eps, rtol, atol = 1e-6, 1e-5, 1e-7
	g := NewGraph(c.train)
	x := nodesOf(g, ins, c.data)
	y, err := c.build(g, ins, x)
	if err != nil {
		t.Fatal(err)
	}
	r := randTensor(rng, 1, y.Shape()...)
	rn := G.NewTensor(g.ExprGraph, tensor.Float64, y.Dims(), G.WithShape(y.Shape().Clone()...), G.WithValue(r), G.WithName("r"))
	prod, err := G.HadamardProd(y, rn)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	var wrt G.Nodes
	var wrtT []*tensor.Dense
	for i := range ins {
		if i >= len(c.data) || !c.data[i] {
			wrt = append(wrt, x[i])
			wrtT = append(wrtT, ins[i])
		}
	}
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := G.NewTapeMachine(g.ExprGraph, G.BindDualValues(wrt...))
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	ana := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("input %s: %v", n.Name(), err)
		}
		ana[i] = values(gv)
	}
	m.Close()

	fy, fm, err := forwardGraph(c, ins)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	rv := r.Float64s()
	lossAt := func() float64 {
		fm.Reset()
		if err := fm.RunAll(); err != nil {
			t.Fatal(err)
		}
		var s float64
		for i, v := range values(fy.Value()) {
			s += v * rv[i]
		}
		return s
	}
	close := func(a, n float64) bool { return math.Abs(a-n) <= rtol*max(math.Abs(a), math.Abs(n))+atol }

	total := 0
	for _, w := range wrtT {
		total += w.Shape().TotalSize()
	}
	if total <= 3000 {
		for j, w := range wrtT {
			d := w.Float64s()
			bad := 0
			for i := range d {
				old := d[i]
				d[i] = old + eps
				lp := lossAt()
				d[i] = old - eps
				lm := lossAt()
				d[i] = old
				num := (lp - lm) / (2 * eps)
				if !close(ana[j][i], num) {
					if bad++; bad <= 5 {
						t.Errorf("d loss/d %s[%d]: backward %.10g, central difference %.10g", wrt[j].Name(), i, ana[j][i], num)
					}
				}
			}
			if bad > 5 {
				t.Errorf("d loss/d %s: %d of %d elements wrong", wrt[j].Name(), bad, len(d))
			}
		}
		return
	}
	for probe := 0; probe < 3; probe++ {
		dirs := make([][]float64, len(wrtT))
		var dot float64
		for j, w := range wrtT {
			dirs[j] = randTensor(rng, 1, w.Shape()...).Float64s()
			for i, v := range dirs[j] {
				dot += v * ana[j][i]
			}
		}
		step := func(s float64) {
			for j, w := range wrtT {
				d := w.Float64s()
				for i, v := range dirs[j] {
					d[i] += s * v
				}
			}
		}
		step(eps)
		lp := lossAt()
		step(-2 * eps)
		lm := lossAt()
		step(eps)
		if num := (lp - lm) / (2 * eps); !close(dot, num) {
			t.Errorf("probe %d: backward directional derivative %.10g, central difference %.10g", probe, dot, num)
		}
	}
}

// refConv is the plain loop of Conv2d: cross-correlation with zero
// padding, w [cout, cin, k, k], b [cout] or nil.
func refConv(x, w, b []float64, n, cin, h, wd, cout, k, s, p int) []float64 {
	ho, wo := (h+2*p-k)/s+1, (wd+2*p-k)/s+1
	y := make([]float64, n*cout*ho*wo)
	for i := 0; i < n; i++ {
		for co := 0; co < cout; co++ {
			for oy := 0; oy < ho; oy++ {
				for ox := 0; ox < wo; ox++ {
					var sum float64
					if b != nil {
						sum = b[co]
					}
					for ci := 0; ci < cin; ci++ {
						for ki := 0; ki < k; ki++ {
							for kj := 0; kj < k; kj++ {
								iy, ix := oy*s-p+ki, ox*s-p+kj
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								sum += w[((co*cin+ci)*k+ki)*k+kj] * x[((i*cin+ci)*h+iy)*wd+ix]
							}
						}
					}
					y[((i*cout+co)*ho+oy)*wo+ox] = sum
				}
			}
		}
	}
	return y
}

// convCase is Conv2d on n×cin×h×w images with cout filters k×k, stride s
// and padding p; chunk, when set, overrides convChunkCols.
func convCase(name string, n, cin, h, w, cout, k, s, p int, bias bool, chunk int) opCase {
	return opCase{
		name: "Conv2d/" + name, train: true, chunk: chunk,
		ins: func(rng *rand.Rand) []*tensor.Dense {
			ins := []*tensor.Dense{randTensor(rng, 1, n, cin, h, w), randTensor(rng, 0.5, cout, cin, k, k)}
			if bias {
				ins = append(ins, randTensor(rng, 0.5, cout))
			}
			return ins
		},
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			c := &Conv2d{Name: "conv", In: cin, Out: cout, K: k, Stride: s, Pad: p, W: ins[1]}
			if bias {
				c.B = ins[2]
			}
			return c.Forward(g, x[0])
		},
		ref: func(in [][]float64) []float64 {
			var b []float64
			if bias {
				b = in[2]
			}
			return refConv(in[0], in[1], b, n, cin, h, w, cout, k, s, p)
		},
	}
}

// refAct is the plain loop of the elementwise activations.
func refAct(kind string, x, mask []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		switch kind {
		case "LeakyReLU":
			if v < 0 {
				v *= 0.2
			}
		case "ReLU":
			v = max(v, 0)
		case "SiLU":
			v /= 1 + math.Exp(-v)
		case "Tanh":
			v = math.Tanh(v)
		case "Sigmoid":
			v = 1 / (1 + math.Exp(-v))
		}
		if mask != nil {
			v *= mask[i]
		}
		y[i] = v
	}
	return y
}

func actCase(kind string, withMask bool, shape ...int) opCase {
	f := map[string]func(*G.Node) (*G.Node, error){"ReLU": ReLU, "SiLU": SiLU, "Tanh": Tanh, "Sigmoid": Sigmoid}[kind]
	name := kind
	if withMask {
		name += "/mask"
	}
	return opCase{
		name: name, train: true,
		data: []bool{false, true},
		ins: func(rng *rand.Rand) []*tensor.Dense {
			var x *tensor.Dense
			switch kind {
			case "LeakyReLU", "ReLU":
				x = awayFromZero(rng, shape...)
			default:
				x = randTensor(rng, 4, shape...)
			}
			if !withMask {
				return []*tensor.Dense{x}
			}
			m := randTensor(rng, 1, shape...)
			for i, v := range m.Float64s() {
				m.Float64s()[i] = 0 // inverted dropout, p = 0.5
				if v > 0 {
					m.Float64s()[i] = 2
				}
			}
			return []*tensor.Dense{x, m}
		},
		build: func(g *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			if kind != "LeakyReLU" {
				return f(x[0])
			}
			var m *G.Node
			if withMask {
				m = x[1]
			}
			return LeakyReLU(x[0], 0.2, m)
		},
		ref: func(in [][]float64) []float64 {
			var m []float64
			if withMask {
				m = in[1]
			}
			return refAct(kind, in[0], m)
		},
	}
}

// refBatchNorm is the plain loop of BatchNorm2d: batch mean and biased
// variance per channel (train) or the running ones (eval).
func refBatchNorm(train bool, in [][]float64, n, c, hw int) []float64 {
	x, gamma, beta := in[0], in[1], in[2]
	y := make([]float64, len(x))
	for ch := 0; ch < c; ch++ {
		var mean, variance float64
		if train {
			for i := 0; i < n; i++ {
				for j := 0; j < hw; j++ {
					mean += x[(i*c+ch)*hw+j]
				}
			}
			mean /= float64(n * hw)
			for i := 0; i < n; i++ {
				for j := 0; j < hw; j++ {
					d := x[(i*c+ch)*hw+j] - mean
					variance += d * d
				}
			}
			variance /= float64(n * hw)
		} else {
			mean, variance = in[3][ch], in[4][ch]
		}
		for i := 0; i < n; i++ {
			for j := 0; j < hw; j++ {
				k := (i*c+ch)*hw + j
				y[k] = gamma[ch]*(x[k]-mean)/math.Sqrt(variance+1e-5) + beta[ch]
			}
		}
	}
	return y
}

func bnCase(train bool, n, c, h, w int) opCase {
	name := "BatchNorm2d/eval"
	if train {
		name = "BatchNorm2d/train"
	}
	return opCase{
		name: name, train: train, noGrad: !train,
		ins: func(rng *rand.Rand) []*tensor.Dense {
			x := randTensor(rng, 1, n, c, h, w)
			d := x.Float64s()
			for i := range d {
				ch := i / (h * w) % c
				d[i] = d[i]*float64(ch+1) + float64(ch) - 1 // channels of different scale and mean
			}
			gamma, beta := randTensor(rng, 1, c), randTensor(rng, 1, c)
			for i, v := range gamma.Float64s() {
				gamma.Float64s()[i] = 1 + v/2
			}
			if train {
				return []*tensor.Dense{x, gamma, beta}
			}
			rv := randTensor(rng, 1, c)
			for i, v := range rv.Float64s() {
				rv.Float64s()[i] = 1.5 + v
			}
			return []*tensor.Dense{x, gamma, beta, randTensor(rng, 1, c), rv}
		},
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			bn := NewBatchNorm2d("bn", c, ins[0].Dtype())
			bn.Gamma, bn.Beta = ins[1], ins[2]
			if !train {
				bn.RunMean, bn.RunVar = ins[3], ins[4]
			}
			return bn.Forward(g, x[0])
		},
		ref: func(in [][]float64) []float64 { return refBatchNorm(train, in, n, c, h*w) },
	}
}

// refLinear is the plain loop of Linear: y = x·W + b, W in×out.
func refLinear(x, w, b []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			var s float64
			if b != nil {
				s = b[o]
			}
			for k := 0; k < in; k++ {
				s += x[i*in+k] * w[k*out+o]
			}
			y[i*out+o] = s
		}
	}
	return y
}

func linearCase(bias bool) opCase {
	const n, in, out = 4, 5, 3
	name := "Linear/nobias"
	if bias {
		name = "Linear/bias"
	}
	return opCase{
		name: name, train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense {
			ins := []*tensor.Dense{randTensor(rng, 1, n, in), randTensor(rng, 1, in, out)}
			if bias {
				ins = append(ins, randTensor(rng, 1, out))
			}
			return ins
		},
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			l := &Linear{Name: "fc", In: in, Out: out, W: ins[1]}
			if bias {
				l.B = ins[2]
			}
			return l.Forward(g, x[0])
		},
		ref: func(v [][]float64) []float64 {
			var b []float64
			if bias {
				b = v[2]
			}
			return refLinear(v[0], v[1], b, n, in, out)
		},
	}
}

// refUpsample is the plain loop of Upsample2x (nearest).
func refUpsample(x []float64, planes, h, w int) []float64 {
	y := make([]float64, planes*4*h*w)
	for p := 0; p < planes; p++ {
		for i := 0; i < 2*h; i++ {
			for j := 0; j < 2*w; j++ {
				y[(p*2*h+i)*2*w+j] = x[(p*h+i/2)*w+j/2]
			}
		}
	}
	return y
}

// refCat is the plain loop of Cat (channels of a, then of b).
func refCat(a, b []float64, n, ca, cb, hw int) []float64 {
	y := make([]float64, 0, len(a)+len(b))
	for i := 0; i < n; i++ {
		for c := 0; c < ca+cb; c++ {
			for j := 0; j < hw; j++ {
				if c < ca {
					y = append(y, a[(i*ca+c)*hw+j])
				} else {
					y = append(y, b[(i*cb+c-ca)*hw+j])
				}
			}
		}
	}
	return y
}

// refAdd is the plain loop of Add.
func refAdd(a, b []float64) []float64 {
	y := make([]float64, len(a))
	for i := range a {
		y[i] = a[i] + b[i]
	}
	return y
}

// refAddChannel is the plain loop of AddChannel.
func refAddChannel(x, e []float64, n, c, hw int) []float64 {
	y := make([]float64, len(x))
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for j := 0; j < hw; j++ {
				k := (i*c+ch)*hw + j
				y[k] = x[k] + e[i*c+ch]
			}
		}
	}
	return y
}

func opCases() []opCase {
	return []opCase{
		convCase("k3s1p1", 2, 3, 5, 6, 4, 3, 1, 1, true, 0),
		convCase("k3s1p1/nobias", 2, 3, 5, 6, 4, 3, 1, 1, false, 0),
		// fewer output than input channels: the products fold (swapped side)
		convCase("k3s1p1/fold", 2, 4, 5, 6, 2, 3, 1, 1, true, 0),
		convCase("k3s1p1/square", 2, 3, 5, 6, 3, 3, 1, 1, true, 0),
		convCase("k3s1p1/fold/nobias", 2, 5, 4, 4, 1, 3, 1, 1, false, 0),
		convCase("k5s1p2/fold", 2, 3, 5, 5, 2, 5, 1, 2, true, 0),
		convCase("k3s1p1/fold/chunks", 3, 4, 3, 3, 2, 3, 1, 1, true, 18),
		convCase("k4s2p1", 2, 3, 6, 6, 4, 4, 2, 1, true, 0),
		convCase("k3s2p1", 2, 3, 5, 6, 4, 3, 2, 1, true, 0),
		convCase("k1s1p0", 2, 3, 5, 6, 4, 1, 1, 0, true, 0),
		convCase("k5s1p2", 2, 2, 5, 5, 3, 5, 1, 2, true, 0),
		convCase("k3s1p0", 2, 3, 5, 6, 2, 3, 1, 0, true, 0),
		convCase("k4s2p1/2x2", 2, 3, 2, 2, 2, 4, 2, 1, true, 0),
		// Three images of 9 output pixels with 18-column chunks: a chunk
		// of two images, then one of one.
		convCase("k3s1p1/chunks", 3, 3, 3, 3, 4, 3, 1, 1, true, 18),
		convCase("k4s2p1/chunks", 3, 3, 6, 6, 4, 4, 2, 1, true, 18),
		convCase("k3s2p1/chunks", 3, 2, 5, 5, 3, 3, 2, 1, true, 18),
		convCase("k1s1p0/chunks", 3, 3, 3, 3, 4, 1, 1, 0, true, 18),
		convCase("k3s1p1/chunk16", 2, 3, 5, 5, 4, 3, 1, 1, true, 16),
		// Large enough for the kernels to split over the cores.
		upsampleCase(2, 3, 3, 4),
		catCase(2, 2, 3, 3, 4),
		addCase(2, 3, 4, 5),
		addChannelCase(2, 3, 4, 5),
		actCase("LeakyReLU", false, 2, 3, 4, 5),
		actCase("LeakyReLU", true, 2, 3, 4, 5),
		actCase("ReLU", false, 2, 3, 4, 5),
		actCase("SiLU", false, 2, 3, 4, 5),
		actCase("Tanh", false, 2, 3, 4, 5),
		actCase("Sigmoid", false, 2, 3, 4, 5),
		bnCase(true, 2, 3, 4, 5),
		bnCase(false, 2, 3, 4, 5),
		linearCase(true),
		linearCase(false),
		crossEntropyCase(5, 4),
		named("/large", crossEntropyCase(300, 10)),
		// Large enough for the kernels to split over the cores (with
		// GOMAXPROCS ≥ 2); their gradients are checked along random
		// directions.
		named("/large", convCase("k3s1p1", 2, 4, 32, 32, 16, 3, 1, 1, true, 0)),
		named("/large", convCase("k3s2p1", 2, 4, 64, 64, 16, 3, 2, 1, true, 0)),
		named("/large", upsampleCase(2, 4, 32, 32)),
		named("/large", addCase(2, 4, 64, 64)),
		named("/large", addChannelCase(2, 4, 64, 64)),
		named("/large", actCase("LeakyReLU", true, 2, 4, 64, 64)),
		named("/large", actCase("SiLU", false, 2, 4, 64, 64)),
		named("/large", actCase("Tanh", false, 2, 4, 64, 64)),
		named("/large", actCase("Sigmoid", false, 2, 4, 64, 64)),
		named("/large", bnCase(true, 2, 4, 48, 48)),
	}
}

// refCrossEntropy is the plain loop of CrossEntropy.
func refCrossEntropy(l, t []float64, n, k int) []float64 {
	y := make([]float64, n)
	for i := 0; i < n; i++ {
		var sum float64
		for j := 0; j < k; j++ {
			sum += math.Exp(l[i*k+j])
		}
		for j := 0; j < k; j++ {
			y[i] -= t[i*k+j] * math.Log(math.Exp(l[i*k+j])/sum)
		}
	}
	return y
}

// crossEntropyCase has soft targets (rows summing to 1, not one-hot) so
// that every term of the gradient is exercised; the targets are data.
func crossEntropyCase(n, k int) opCase {
	return opCase{
		name: "CrossEntropy", train: true, data: []bool{false, true},
		ins: func(rng *rand.Rand) []*tensor.Dense {
			t := make([]float64, n*k)
			for i := 0; i < n; i++ {
				var sum float64
				for j := 0; j < k; j++ {
					t[i*k+j] = rng.Float64()
					sum += t[i*k+j]
				}
				for j := 0; j < k; j++ {
					t[i*k+j] /= sum
				}
			}
			return []*tensor.Dense{randTensor(rng, 3, n, k), tensor.New(tensor.WithShape(n, k), tensor.WithBacking(t))}
		},
		build: func(_ *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) { return CrossEntropy(x[0], x[1]) },
		ref:   func(in [][]float64) []float64 { return refCrossEntropy(in[0], in[1], n, k) },
	}
}

// TestSoftmax checks Softmax against exp(l)/Σexp(l), also for logits
// large enough to overflow a plain exp.
func TestSoftmax(t *testing.T) {
	l := []float64{1, 2, 3, 1000, 1001, 999}
	p := make([]float64, len(l))
	Softmax(p, l, 3)
	e := []float64{math.Exp(1), math.Exp(2), math.Exp(3)}
	want := []float64{e[0] / (e[0] + e[1] + e[2]), e[1] / (e[0] + e[1] + e[2]), e[2] / (e[0] + e[1] + e[2])}
	want = append(want, want[1], want[2], want[0])
	for i := range p {
		if math.Abs(p[i]-want[i]) > 1e-12 {
			t.Errorf("softmax[%d] = %v, want %v", i, p[i], want[i])
		}
	}
}

// named appends suffix to the case's name.
func named(suffix string, c opCase) opCase {
	c.name += suffix
	return c
}

func upsampleCase(n, c, h, w int) opCase {
	return opCase{
		name: "Upsample2x", train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense { return []*tensor.Dense{randTensor(rng, 1, n, c, h, w)} },
		build: func(_ *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			return Upsample2x(x[0])
		},
		ref: func(in [][]float64) []float64 { return refUpsample(in[0], n*c, h, w) },
	}
}

func catCase(n, ca, cb, h, w int) opCase {
	return opCase{
		name: "Cat", train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense {
			return []*tensor.Dense{randTensor(rng, 1, n, ca, h, w), randTensor(rng, 1, n, cb, h, w)}
		},
		build: func(_ *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) { return Cat(x[0], x[1]) },
		ref:   func(in [][]float64) []float64 { return refCat(in[0], in[1], n, ca, cb, h*w) },
	}
}

func addCase(shape ...int) opCase {
	return opCase{
		name: "Add", train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense {
			return []*tensor.Dense{randTensor(rng, 1, shape...), randTensor(rng, 1, shape...)}
		},
		build: func(_ *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) { return Add(x[0], x[1]) },
		ref:   func(in [][]float64) []float64 { return refAdd(in[0], in[1]) },
	}
}

func addChannelCase(n, c, h, w int) opCase {
	return opCase{
		name: "AddChannel", train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense {
			return []*tensor.Dense{randTensor(rng, 1, n, c, h, w), randTensor(rng, 1, n, c)}
		},
		build: func(_ *Graph, _ []*tensor.Dense, x G.Nodes) (*G.Node, error) { return AddChannel(x[0], x[1]) },
		ref:   func(in [][]float64) []float64 { return refAddChannel(in[0], in[1], n, c, h*w) },
	}
}

// TestForward compares each op's output with its reference loop: within
// 1e-12 in float64 and 1e-5 (relative, with an absolute floor) in float32.
func TestForward(t *testing.T) {
	for _, c := range opCases() {
		t.Run(c.name, func(t *testing.T) {
			defer c.withChunk()()
			ins := c.ins(newRNG())
			raw := make([][]float64, len(ins))
			for i, in := range ins {
				raw[i] = in.Float64s()
			}
			want := c.ref(raw)
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				t.Run(dt.String(), func(t *testing.T) {
					tol := func(w float64) float64 { return 1e-12 }
					use := ins
					if dt == tensor.Float32 {
						tol = func(w float64) float64 { return 1e-5 * (1 + math.Abs(w)) }
						use = make([]*tensor.Dense, len(ins))
						for i, in := range ins {
							use[i] = to32(in)
						}
					}
					got, err := forward(c, use)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != len(want) {
						t.Fatalf("%d values, want %d", len(got), len(want))
					}
					bad := 0
					for i := range want {
						if math.Abs(got[i]-want[i]) > tol(want[i]) || math.IsNaN(got[i]) {
							if bad++; bad <= 5 {
								t.Errorf("[%d] = %.15g, want %.15g", i, got[i], want[i])
							}
						}
					}
					if bad > 5 {
						t.Errorf("%d of %d values wrong", bad, len(want))
					}
				})
			}
		})
	}
}

// TestGradients checks each differentiable op's backward with respect to
// all its learnt inputs by central differences.
func TestGradients(t *testing.T) {
	for _, c := range opCases() {
		if c.noGrad {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			defer c.withChunk()()
			rng := newRNG()
			checkGrad(t, c, c.ins(rng), rng)
		})
	}
}

// TestRepeatedRuns checks that running one machine again (the ops keep
// their output buffers between runs) gives the same output.
func TestRepeatedRuns(t *testing.T) {
	c := convCase("k3s2p1", 2, 3, 5, 6, 4, 3, 2, 1, true, 0)
	y, m, err := forwardGraph(c, c.ins(newRNG()))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var first []float64
	for run := 0; run < 3; run++ {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := values(y.Value())
		if run == 0 {
			first = got
			continue
		}
		for i := range got {
			if got[i] != first[i] {
				t.Fatalf("run %d: [%d] = %g, first run %g", run, i, got[i], first[i])
			}
		}
	}
}

// countOps counts the nodes of g whose op's name starts with prefix.
func countOps(g *Graph, prefix string) int {
	n := 0
	for _, nd := range g.AllNodes() {
		if op := nd.Op(); op != nil && strings.HasPrefix(op.String(), prefix) {
			n++
		}
	}
	return n
}

// convLoss builds loss = Σ conv(x) for a fresh 3→4 k3 s1 p1 layer on
// 2×3×5×5 images; x is a parameter node unless input is set.
func convLoss(t *testing.T, input, freeze bool) (*Graph, *Conv2d, *G.Node, *G.Node) {
	t.Helper()
	rng := newRNG()
	c := NewConv2d("conv", 3, 4, 3, 1, 1, true, tensor.Float64, rng)
	g := NewGraph(true)
	if freeze {
		g.Freeze(c.Params())
	}
	xt := randTensor(rng, 1, 2, 3, 5, 5)
	var x *G.Node
	if input {
		x = g.Input("x", xt)
	} else {
		x = g.Node(Param{Name: "x", T: xt})
	}
	y, err := c.Forward(g, x)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(y)
	if err != nil {
		t.Fatal(err)
	}
	return g, c, x, loss
}

// TestGraphFreeze checks that a frozen Conv2d builds the input gradient
// only, and that its weights then have no gradient.
func TestGraphFreeze(t *testing.T) {
	g, c, x, loss := convLoss(t, false, true)
	if _, err := G.Grad(loss, x); err != nil {
		t.Fatalf("Grad wrt x: %v", err)
	}
	if n := countOps(g, "ConvDW") + countOps(g, "ConvDB"); n != 0 {
		t.Errorf("frozen layer: %d weight-gradient ops", n)
	}
	if n := countOps(g, "ConvDX"); n != 1 {
		t.Errorf("%d ConvDX ops, want 1", n)
	}
	g, c, _, loss = convLoss(t, false, true)
	if _, err := G.Grad(loss, g.Nodes(c.Params())...); err == nil {
		t.Errorf("Grad wrt frozen weights succeeded")
	}
}

// TestGraphInput checks that a Conv2d on an input node builds the weight
// gradients only, and that they match those of a graph that also
// differentiates x.
func TestGraphInput(t *testing.T) {
	grads := func(input bool) [][]float64 {
		g, c, _, loss := convLoss(t, input, false)
		ps := g.Nodes(c.Params())
		if _, err := G.Grad(loss, ps...); err != nil {
			t.Fatalf("Grad: %v", err)
		}
		if input {
			if n := countOps(g, "ConvDX"); n != 0 {
				t.Errorf("input x: %d ConvDX ops", n)
			}
			if n := countOps(g, "ConvDW") + countOps(g, "ConvDB"); n != 2 {
				t.Errorf("%d weight-gradient ops, want 2", n)
			}
		}
		m := G.NewTapeMachine(g.ExprGraph, G.BindDualValues(ps...))
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		var out [][]float64
		for _, p := range ps {
			gv, err := p.Grad()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, values(gv))
		}
		return out
	}
	a, b := grads(true), grads(false)
	for i := range a {
		for j := range a[i] {
			if math.Abs(a[i][j]-b[i][j]) > 1e-12 {
				t.Fatalf("param %d [%d]: %g with input x, %g with learnt x", i, j, a[i][j], b[i][j])
			}
		}
	}
}

// TestGraphBatchNormGrads checks which gradient ops a training
// BatchNorm2d builds: none for frozen γ and β, none for an input x.
func TestGraphBatchNormGrads(t *testing.T) {
	for _, c := range []struct {
		name          string
		input, freeze bool
		dx, dgamma    int
	}{
		{"learnt", false, false, 1, 1},
		{"frozen", false, true, 1, 0},
		{"input", true, false, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			bn := NewBatchNorm2d("bn", 3, tensor.Float64)
			g := NewGraph(true)
			xt := randTensor(newRNG(), 1, 2, 3, 4, 4)
			var x *G.Node
			if c.input {
				x = g.Input("x", xt)
			} else {
				x = g.Node(Param{Name: "x", T: xt})
			}
			if c.freeze {
				g.Freeze(bn.Params())
			}
			y, err := bn.Forward(g, x)
			if err != nil {
				t.Fatal(err)
			}
			loss, err := G.Sum(y)
			if err != nil {
				t.Fatal(err)
			}
			var wrt G.Nodes
			if !c.input {
				wrt = append(wrt, x)
			}
			if !c.freeze {
				wrt = append(wrt, g.Nodes(Weights(bn.Params()))...)
			}
			if _, err := G.Grad(loss, wrt...); err != nil {
				t.Fatalf("Grad: %v", err)
			}
			dx, dg, db := countOps(g, "BatchNormDX"), countOps(g, "BatchNormDGamma"), countOps(g, "BatchNormDBeta")
			if dx != c.dx || dg != c.dgamma || db != c.dgamma {
				t.Errorf("%d BatchNormDX, %d BatchNormDGamma, %d BatchNormDBeta ops; want %d, %d, %d", dx, dg, db, c.dx, c.dgamma, c.dgamma)
			}
		})
	}
}

// TestBatchNormTrackStats checks UpdateStats: running statistics become
// (1−0.1)·old + 0.1·batch (unbiased variance) and num_batches_tracked, a
// 0-dim int64 tensor, counts the batch.
func TestBatchNormTrackStats(t *testing.T) {
	const n, c, h, w = 2, 3, 4, 5
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			rng := newRNG()
			bn := NewBatchNorm2d("bn", c, dt)
			if s := bn.Tracked.Shape(); s.Dims() != 0 || bn.Tracked.Dtype() != tensor.Int64 || len(bn.Tracked.Int64s()) != 1 {
				t.Fatalf("num_batches_tracked: shape %v, %v, %d values; want a 0-dim int64 scalar", s, bn.Tracked.Dtype(), len(bn.Tracked.Int64s()))
			}
			if v := bn.Tracked.Int64s()[0]; v != 0 {
				t.Fatalf("num_batches_tracked starts at %d", v)
			}
			oldMean, oldVar := randTensor(rng, 1, c).Float64s(), randTensor(rng, 0.5, c).Float64s()
			for i := range oldVar {
				oldVar[i] += 1
			}
			for i := 0; i < c; i++ {
				SetAt(bn.RunMean, i, oldMean[i])
				SetAt(bn.RunVar, i, oldVar[i])
				oldMean[i], oldVar[i] = values(bn.RunMean)[i], values(bn.RunVar)[i] // as stored
			}
			xt := randTensor(rng, 2, n, c, h, w)
			x64 := xt.Float64s()
			if dt == tensor.Float32 {
				xt = to32(xt)
				x64 = values(xt)
			}
			g := NewGraph(true)
			g.TrackStats = true
			if _, err := bn.Forward(g, g.Input("x", xt)); err != nil {
				t.Fatal(err)
			}
			m := G.NewTapeMachine(g.ExprGraph)
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			if got := values(bn.RunMean); got[0] != oldMean[0] {
				t.Fatalf("running mean changed before UpdateStats")
			}
			if err := g.UpdateStats(); err != nil {
				t.Fatal(err)
			}
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-6
			}
			rm, rv := values(bn.RunMean), values(bn.RunVar)
			m0 := float64(n * h * w)
			for ch := 0; ch < c; ch++ {
				var mean, ss float64
				for i := 0; i < n; i++ {
					for j := 0; j < h*w; j++ {
						mean += x64[(i*c+ch)*h*w+j]
					}
				}
				mean /= m0
				for i := 0; i < n; i++ {
					for j := 0; j < h*w; j++ {
						d := x64[(i*c+ch)*h*w+j] - mean
						ss += d * d
					}
				}
				wantMean := 0.9*oldMean[ch] + 0.1*mean
				wantVar := 0.9*oldVar[ch] + 0.1*ss/(m0-1)
				if math.Abs(rm[ch]-wantMean) > tol*(1+math.Abs(wantMean)) {
					t.Errorf("running_mean[%d] = %.15g, want %.15g", ch, rm[ch], wantMean)
				}
				if math.Abs(rv[ch]-wantVar) > tol*(1+math.Abs(wantVar)) {
					t.Errorf("running_var[%d] = %.15g, want %.15g", ch, rv[ch], wantVar)
				}
			}
			if v := bn.Tracked.Int64s(); len(v) != 1 || v[0] != 1 {
				t.Errorf("num_batches_tracked = %v after one batch, want [1]", v)
			}
			if s := bn.Tracked.Shape(); s.Dims() != 0 {
				t.Errorf("num_batches_tracked shape %v after update", s)
			}
		})
	}
}

// TestBatchNormNoTrack checks that a training graph without TrackStats
// leaves the buffers alone.
func TestBatchNormNoTrack(t *testing.T) {
	bn := NewBatchNorm2d("bn", 3, tensor.Float64)
	g := NewGraph(true)
	if _, err := bn.Forward(g, g.Input("x", randTensor(newRNG(), 1, 2, 3, 4, 4))); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g.ExprGraph)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if err := g.UpdateStats(); err != nil {
		t.Fatal(err)
	}
	for i, v := range values(bn.RunMean) {
		if v != 0 || values(bn.RunVar)[i] != 1 {
			t.Fatalf("running stats changed: %v %v", values(bn.RunMean), values(bn.RunVar))
		}
	}
	if v := bn.Tracked.Int64s()[0]; v != 0 {
		t.Errorf("num_batches_tracked = %d", v)
	}
}

// TestParams checks the state_dict names and order of the layers and the
// split into weights and buffers.
func TestParams(t *testing.T) {
	rng := newRNG()
	ps := ParamsOf(
		NewConv2d("c", 3, 4, 3, 1, 1, true, tensor.Float32, rng),
		NewBatchNorm2d("bn", 4, tensor.Float32),
		NewLinear("fc", 5, 2, false, tensor.Float32, rng))
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	want := "c.weight c.bias bn.weight bn.bias bn.running_mean bn.running_var bn.num_batches_tracked fc.weight"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("params %q, want %q", got, want)
	}
	if n, b := len(Weights(ps)), len(Buffers(ps)); n != 5 || b != 3 {
		t.Errorf("%d weights and %d buffers, want 5 and 3", n, b)
	}
	if !ps[7].Transposed || ps[0].Transposed {
		t.Errorf("only the Linear weight is transposed in checkpoints")
	}
}

// TestNewLinearOrder checks that NewLinear draws W in PyTorch's out×in
// order and stores it in×out.
func TestNewLinearOrder(t *testing.T) {
	const in, out = 3, 2
	l := NewLinear("fc", in, out, true, tensor.Float64, newRNG())
	rng := newRNG()
	w := l.W.Float64s()
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			want := (rng.Float64()*2 - 1) * fanInBound(in)
			if w[i*out+o] != want {
				t.Fatalf("W[%d, %d] = %g, want %g", i, o, w[i*out+o], want)
			}
		}
	}
	for o, v := range l.B.Float64s() {
		if want := (rng.Float64()*2 - 1) * fanInBound(in); v != want {
			t.Fatalf("b[%d] = %g, want %g", o, v, want)
		}
	}
}

// TestSigmoids32 checks the float32 sigmoid against math.Exp over a wide
// range, including the clamped tails.
func TestSigmoids32(t *testing.T) {
	var x []float32
	for v := -100.0; v <= 100; v += 0.0137 {
		x = append(x, float32(v))
	}
	s := make([]float32, len(x))
	Sigmoids32(s, x)
	for i, v := range x {
		want := 1 / (1 + math.Exp(-float64(v)))
		if d := math.Abs(float64(s[i]) - want); d > 4e-7*want+1e-34 {
			t.Fatalf("sigmoid(%g) = %g, want %g", v, s[i], want)
		}
	}
}

// TestConvStats checks that the convolution kernels are counted.
func TestConvStats(t *testing.T) {
	ResetConvStats()
	c := convCase("k3s1p1", 2, 3, 5, 6, 4, 3, 1, 1, true, 0)
	if _, err := forward(c, c.ins(newRNG())); err != nil {
		t.Fatal(err)
	}
	st := ReadConvStats()
	if st.Calls != 1 || st.FLOPs != float64(2*2*4*5*6*27) {
		t.Errorf("conv stats %+v, want 1 call of %d flops", st, 2*2*4*5*6*27)
	}
}
