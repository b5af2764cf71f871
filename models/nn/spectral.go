package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SpectralNorm is spectral normalisation (Miyato et al. 2018) of a layer's
// weight, as torch.nn.utils.spectral_norm computes it: the weight read as a
// matrix of Rows (output units or channels) by Cols (the rest) is divided
// by σ = uᵀWv, its largest singular value estimated by one step of power
// iteration per training forward (v ← Wᵀu/‖Wᵀu‖, u ← Wv/‖Wv‖). u and v are
// buffers (name.weight_u, name.weight_v): a checkpoint resumes the
// iteration where it stopped, and sampling graphs use them unchanged. As in
// PyTorch, no gradient flows through u and v: ∂L/∂W = (∂L/∂Ŵ − ⟨∂L/∂Ŵ, Ŵ⟩ u vᵀ)/σ
// for Ŵ = W/σ.
type SpectralNorm struct {
	Name       string // the layer's state_dict prefix
	Rows, Cols int
	// Transposed: the weight is stored Cols×Rows (a Linear's in×out).
	Transposed bool
	U, V       *tensor.Dense
	sigma      float64 // σ of the last forward, for its backward
}

// snEps is PyTorch's eps of F.normalize in spectral_norm.
const snEps = 1e-12

// NewSpectralNorm makes the power-iteration state of a rows×cols weight
// (stored transposed when transposed is set): u and v drawn from N(0, 1)
// and normalised, as PyTorch does.
func NewSpectralNorm(name string, rows, cols int, transposed bool, dt tensor.Dtype, rng *rand.Rand) *SpectralNorm {
	s := &SpectralNorm{Name: name, Rows: rows, Cols: cols, Transposed: transposed,
		U: tensor.New(tensor.WithShape(rows), tensor.Of(dt)), V: tensor.New(tensor.WithShape(cols), tensor.Of(dt))}
	for _, t := range []*tensor.Dense{s.U, s.V} {
		n := t.Shape().TotalSize()
		x := make([]float64, n)
		var ss float64
		for i := range x {
			x[i] = rng.NormFloat64()
			ss += x[i] * x[i]
		}
		norm := math.Max(math.Sqrt(ss), snEps)
		for i := range x {
			SetAt(t, i, x[i]/norm)
		}
	}
	return s
}

// Buffers are u and v with their PyTorch names.
func (s *SpectralNorm) Buffers() []Param {
	return []Param{{Name: s.Name + ".weight_u", T: s.U, Buffer: true}, {Name: s.Name + ".weight_v", T: s.V, Buffer: true}}
}

// Sigma is σ as the last forward computed it (0 before any).
func (s *SpectralNorm) Sigma() float64 { return s.sigma }

// snParams is a layer's weight and bias as checkpoints name them: with
// spectral normalisation the learnt weight is name.weight_orig (PyTorch's
// name), followed by its u and v buffers.
func snParams(name string, w, b *tensor.Dense, transposed bool, sn *SpectralNorm) []Param {
	ps := weightBias(name, w, b, transposed)
	if sn != nil {
		ps[0].Name = name + ".weight_orig"
		ps = append(ps, sn.Buffers()...)
	}
	return ps
}

// at is the index in the stored weight of matrix element (o, i).
func (s *SpectralNorm) at(o, i int) int {
	if s.Transposed {
		return i*s.Rows + o
	}
	return o*s.Cols + i
}

// Apply adds Ŵ = W/σ to w's graph. With update set (a training graph),
// each run first takes one power-iteration step; learnt builds W's
// gradient.
func (s *SpectralNorm) Apply(w *G.Node, update, learnt bool) (*G.Node, error) {
	if w.Shape().TotalSize() != s.Rows*s.Cols {
		return nil, fmt.Errorf("%s spectral norm: weight of %d values, want %d×%d", s.Name, w.Shape().TotalSize(), s.Rows, s.Cols)
	}
	shape := w.Shape().Clone()
	return Apply(s.Name+"(SpectralNorm)", shape, Kernels(snForward[float32](s, update), snForward[float64](s, update)),
		[]bool{learnt}, func(in G.Nodes, out, gy *G.Node) (G.Nodes, error) {
			dw, err := Apply(s.Name+"(SpectralNormGrad)", shape, Kernels(snBackward[float32](s), snBackward[float64](s)), nil, nil, gy, out)
			return G.Nodes{dw}, err
		}, w)
}

// snForward writes W/σ, stepping u and v first when update is set.
func snForward[T Float](s *SpectralNorm, update bool) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		w := in[0]
		u, ok1 := s.U.Data().([]T)
		v, ok2 := s.V.Data().([]T)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s spectral norm: u and v are not of the weight's type", s.Name)
		}
		wv := make([]float64, s.Rows) // W·v
		mulWV := func() {
			clear(wv)
			for o := 0; o < s.Rows; o++ {
				if !s.Transposed {
					var acc float64
					row := w[o*s.Cols : (o+1)*s.Cols]
					for i, x := range row {
						acc += float64(x) * float64(v[i])
					}
					wv[o] = acc
				}
			}
			if s.Transposed {
				for i := 0; i < s.Cols; i++ {
					vi := float64(v[i])
					for o, x := range w[i*s.Rows : (i+1)*s.Rows] {
						wv[o] += float64(x) * vi
					}
				}
			}
		}
		if update {
			wtu := make([]float64, s.Cols) // Wᵀ·u
			if s.Transposed {
				for i := 0; i < s.Cols; i++ {
					var acc float64
					for o, x := range w[i*s.Rows : (i+1)*s.Rows] {
						acc += float64(x) * float64(u[o])
					}
					wtu[i] = acc
				}
			} else {
				for o := 0; o < s.Rows; o++ {
					uo := float64(u[o])
					for i, x := range w[o*s.Cols : (o+1)*s.Cols] {
						wtu[i] += float64(x) * uo
					}
				}
			}
			normalizeInto(v, wtu)
			mulWV()
			normalizeInto(u, wv)
		}
		mulWV()
		var sigma float64
		for o, x := range wv {
			sigma += float64(u[o]) * x
		}
		// σ is positive once a training run has stepped u and v; PyTorch's
		// uᵀWv of an untouched state may be negative, and is kept.
		if sigma == 0 || math.IsNaN(sigma) || math.IsInf(sigma, 0) {
			return fmt.Errorf("%s spectral norm: σ = %g (the weight is zero or not finite)", s.Name, sigma)
		}
		s.sigma = sigma
		inv := 1 / sigma
		for i, x := range w {
			out[i] = T(float64(x) * inv)
		}
		return nil
	}
}

// normalizeInto writes x/max(‖x‖, eps) into dst.
func normalizeInto[T Float](dst []T, x []float64) {
	var ss float64
	for _, e := range x {
		ss += e * e
	}
	inv := 1 / math.Max(math.Sqrt(ss), snEps)
	for i, e := range x {
		dst[i] = T(e * inv)
	}
}

// snBackward is ∂L/∂W = (gy − ⟨gy, Ŵ⟩ u vᵀ)/σ, from gy and Ŵ (in[0], in[1]).
func snBackward[T Float](s *SpectralNorm) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		gy, y := in[0], in[1]
		u, v := s.U.Data().([]T), s.V.Data().([]T)
		var c float64
		for i, g := range gy {
			c += float64(g) * float64(y[i])
		}
		inv := 1 / s.sigma
		for o := 0; o < s.Rows; o++ {
			cu := c * float64(u[o])
			for i := 0; i < s.Cols; i++ {
				k := s.at(o, i)
				out[k] = T((float64(gy[k]) - cu*float64(v[i])) * inv)
			}
		}
		return nil
	}
}

// spectral is sn applied to w in g, once per graph: the layers that share
// the weight in one graph (D on the real and on the fake batch) share one
// power-iteration step per run.
func (g *Graph) spectral(sn *SpectralNorm, w *G.Node, learnt bool) (*G.Node, error) {
	if n, ok := g.sn[sn]; ok {
		return n, nil
	}
	n, err := sn.Apply(w, g.Train, learnt)
	if err != nil {
		return nil, err
	}
	g.sn[sn] = n
	return n, nil
}
