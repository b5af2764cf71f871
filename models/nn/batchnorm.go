package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchNorm2d is PyTorch's nn.BatchNorm2d (affine, momentum 0.1, eps 1e-5)
// on NCHW data. In a training graph it normalises with the batch mean and
// biased variance over (N, H, W), and, when the graph tracks statistics,
// UpdateStats folds them into the running ones; in an evaluation graph it
// uses the running statistics. With x̂ = (x − μ)/sqrt(σ² + ε) over the
// M = N·H·W values of a channel:
//
//	y  = γ·x̂ + β
//	dβ = Σ dy,  dγ = Σ dy·x̂
//	dx = γ/sqrt(σ² + ε) · (dy − dβ/M − x̂·dγ/M)
//
// Statistics are accumulated in float64, as PyTorch's CPU kernels do.
// (Gorgonia's BatchNorm keeps its running statistics inside each graph's
// op, resets them in SetTraining and initialises γ and β from the clock;
// a composition of its ops needs Reshape, whose shared memory its register
// allocator does not see.)
type BatchNorm2d struct {
	Name            string
	C               int
	Momentum, Eps   float64
	Gamma, Beta     *tensor.Dense // learnt: PyTorch's weight and bias
	RunMean, RunVar *tensor.Dense // buffers: running_mean, running_var
	Tracked         *tensor.Dense // buffer: num_batches_tracked, an int64 scalar
}

// NewBatchNorm2d makes a layer over c channels with γ = 1, β = 0, running
// mean 0 and running variance 1.
func NewBatchNorm2d(name string, c int, dt tensor.Dtype) *BatchNorm2d {
	bn := &BatchNorm2d{Name: name, C: c, Momentum: 0.1, Eps: 1e-5,
		Gamma:   tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		Beta:    tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		RunMean: tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		RunVar:  tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		Tracked: tensor.New(tensor.WithShape(), tensor.Of(tensor.Int64)),
	}
	for i := 0; i < c; i++ {
		SetAt(bn.Gamma, i, 1)
		SetAt(bn.RunVar, i, 1)
	}
	return bn
}

// Params implements Module, in state_dict order.
func (bn *BatchNorm2d) Params() []Param {
	return []Param{
		{Name: bn.Name + ".weight", T: bn.Gamma},
		{Name: bn.Name + ".bias", T: bn.Beta},
		{Name: bn.Name + ".running_mean", T: bn.RunMean, Buffer: true},
		{Name: bn.Name + ".running_var", T: bn.RunVar, Buffer: true},
		{Name: bn.Name + ".num_batches_tracked", T: bn.Tracked, Buffer: true},
	}
}

// Forward normalises x (N, C, H, W).
func (bn *BatchNorm2d) Forward(g *Graph, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 || s[1] != bn.C {
		return nil, fmt.Errorf("%s: input shape %v, want (N, %d, H, W)", bn.Name, s, bn.C)
	}
	n, c, hw := s[0], s[1], s[2]*s[3]
	ps := bn.Params()
	gamma, beta := g.Node(ps[0]), g.Node(ps[1])
	k := func(kind int) Kernel {
		return Kernels(
			func(out []float32, in [][]float32) error { return bnRun(kind, bn.Eps, in, out, n, c, hw) },
			func(out []float64, in [][]float64) error { return bnRun(kind, bn.Eps, in, out, n, c, hw) })
	}
	if !g.Train {
		y, err := Apply(bn.Name+"(BatchNormEval)", s, k(bnEval), nil, nil, x, gamma, beta, g.Node(ps[2]), g.Node(ps[3]))
		return y, wrap(bn.Name, err)
	}
	learnt := g.learnt(ps[0])
	y, err := Apply(bn.Name+"(BatchNorm)", s, k(bnTrain), []bool{g.needsGrad(x), learnt, learnt},
		func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			grads := make(G.Nodes, 3)
			var err error
			if g.needsGrad(x) {
				if grads[0], err = Apply("BatchNormDX", s, k(bnGradX), nil, nil, in[0], in[1], gy); err != nil {
					return nil, err
				}
			}
			if learnt {
				if grads[1], err = Apply("BatchNormDGamma", tensor.Shape{c}, k(bnGradGamma), nil, nil, in[0], gy); err != nil {
					return nil, err
				}
				grads[2], err = Apply("BatchNormDBeta", tensor.Shape{c}, k(bnGradBeta), nil, nil, gy)
			}
			return grads, err
		}, x, gamma, beta)
	if err != nil || !g.TrackStats {
		return y, wrap(bn.Name, err)
	}
	st, err := Apply(bn.Name+"(BatchStats)", tensor.Shape{2, c}, k(bnStats), nil, nil, x)
	if err != nil {
		return nil, wrap(bn.Name, err)
	}
	var v G.Value
	G.Read(st, &v)
	g.OnUpdate(func() error {
		t, ok := v.(*tensor.Dense)
		if !ok {
			return fmt.Errorf("%s: no batch statistics were computed", bn.Name)
		}
		return bn.update(t, n*hw)
	})
	return y, nil
}

// update folds one training batch's statistics (a (2, C) tensor: mean and
// biased variance) into the running ones, as PyTorch does: r ← (1−m)·r +
// m·stat, with the unbiased variance (σ²·n/(n−1), n values per channel),
// and counts the batch.
func (bn *BatchNorm2d) update(st *tensor.Dense, n int) error {
	var mean, variance []float64
	switch d := st.Data().(type) {
	case []float32:
		for i, v := range d {
			if i < bn.C {
				mean = append(mean, float64(v))
			} else {
				variance = append(variance, float64(v))
			}
		}
	case []float64:
		mean, variance = d[:bn.C], d[bn.C:2*bn.C]
	}
	for i := range mean {
		if math.IsNaN(mean[i]) || math.IsInf(mean[i], 0) || math.IsNaN(variance[i]) || math.IsInf(variance[i], 0) {
			return fmt.Errorf("%s: batch statistics are not finite", bn.Name)
		}
	}
	unbias := 1.0
	if n > 1 {
		unbias = float64(n) / float64(n-1)
	}
	m := bn.Momentum
	switch rm := bn.RunMean.Data().(type) {
	case []float32:
		rv := bn.RunVar.Data().([]float32)
		for c := range rm {
			rm[c] = float32(1-m)*rm[c] + float32(m)*float32(mean[c])
			rv[c] = float32(1-m)*rv[c] + float32(m)*float32(variance[c]*unbias)
		}
	case []float64:
		rv := bn.RunVar.Data().([]float64)
		for c := range rm {
			rm[c] = (1-m)*rm[c] + m*mean[c]
			rv[c] = (1-m)*rv[c] + m*variance[c]*unbias
		}
	}
	return bn.Tracked.Memset(bn.Batches() + 1)
}

// Batches is num_batches_tracked: how many training batches the running
// statistics have seen.
func (bn *BatchNorm2d) Batches() int64 {
	switch d := bn.Tracked.Data().(type) {
	case int64:
		return d
	case []int64:
		return d[0]
	}
	return 0
}

// The kernels of BatchNorm2d.
const (
	bnTrain     = iota // (x, γ, β) → y, batch statistics
	bnEval             // (x, γ, β, running mean, running var) → y
	bnStats            // x → (2, C): batch mean and biased variance
	bnGradX            // (x, γ, dy) → dx
	bnGradGamma        // (x, dy) → dγ
	bnGradBeta         // dy → dβ
)

func bnRun[T Float](kind int, eps float64, all [][]T, out []T, n, c, hw int) error {
	m := float64(n * hw)
	Parallel(c, 3*n*hw, func(c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			// plane(k) is channel ch of sample k.
			plane := func(x []T, k int) []T { return x[(k*c+ch)*hw:][:hw] }
			var mean, variance float64
			if kind != bnGradBeta && kind != bnEval {
				x := all[0]
				for k := 0; k < n; k++ {
					for _, v := range plane(x, k) {
						mean += float64(v)
					}
				}
				mean /= m
				for k := 0; k < n; k++ {
					for _, v := range plane(x, k) {
						d := float64(v) - mean
						variance += d * d
					}
				}
				variance /= m
			}
			switch kind {
			case bnStats:
				out[ch], out[c+ch] = T(mean), T(variance)
			case bnTrain, bnEval:
				if kind == bnEval {
					mean, variance = float64(all[3][ch]), float64(all[4][ch])
				}
				scale := float64(all[1][ch]) / math.Sqrt(variance+eps)
				shift := float64(all[2][ch]) - mean*scale
				sc, sh := T(scale), T(shift)
				for k := 0; k < n; k++ {
					dst := plane(out, k)
					for i, v := range plane(all[0], k) {
						dst[i] = v*sc + sh
					}
				}
			case bnGradBeta:
				var s float64
				for k := 0; k < n; k++ {
					for _, g := range plane(all[0], k) {
						s += float64(g)
					}
				}
				out[ch] = T(s)
			case bnGradGamma, bnGradX:
				dy := all[len(all)-1]
				inv := 1 / math.Sqrt(variance+eps)
				var sdy, sdyx float64
				for k := 0; k < n; k++ {
					xs, gs := plane(all[0], k), plane(dy, k)
					for i, v := range xs {
						g := float64(gs[i])
						sdy += g
						sdyx += g * (float64(v) - mean)
					}
				}
				if kind == bnGradGamma {
					out[ch] = T(sdyx * inv)
					continue
				}
				// dx = a·dy + b·x + d with a = γ·inv, b = −γ·inv³·Σdy(x−μ)/M,
				// d = −γ·inv·Σdy/M − b·μ.
				a := float64(all[1][ch]) * inv
				b := -a * inv * inv * sdyx / m
				d := -a*sdy/m - b*mean
				ta, tb, td := T(a), T(b), T(d)
				for k := 0; k < n; k++ {
					dst, xs, gs := plane(out, k), plane(all[0], k), plane(dy, k)
					for i, v := range xs {
						dst[i] = ta*gs[i] + tb*v + td
					}
				}
			}
		}
	})
	return nil
}
