package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// mbstdEps is added to each variance before its square root.
const mbstdEps = 1e-8

// MinibatchStd is the minibatch standard-deviation layer (Karras et al.
// 2018, ProGAN) over the whole batch: s, the mean over features of each
// feature's standard deviation across the batch, appended to every
// sample — as one more column of a (N, K) input, or one more constant
// channel of an (N, C, H, W) input — so that D can tell a batch of
// near-copies from a varied one.
func MinibatchStd(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	var out tensor.Shape
	var r int // copies of s per sample
	switch s.Dims() {
	case 2:
		out, r = tensor.Shape{s[0], s[1] + 1}, 1
	case 4:
		out, r = tensor.Shape{s[0], s[1] + 1, s[2], s[3]}, s[2]*s[3]
	default:
		return nil, fmt.Errorf("MinibatchStd: input shape %v, want (N, K) or (N, C, H, W)", s)
	}
	n := s[0]
	if n < 2 {
		return nil, fmt.Errorf("MinibatchStd: a batch of %d has no spread", n)
	}
	m := s.TotalSize() / n
	return Apply("MinibatchStd", out, Kernels(mbstdFwd[float32](n, m, r), mbstdFwd[float64](n, m, r)),
		[]bool{true}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			dx, err := Apply("MinibatchStdGrad", s, Kernels(mbstdBwd[float32](n, m, r), mbstdBwd[float64](n, m, r)), nil, nil, in[0], gy)
			return G.Nodes{dx}, err
		}, x)
}

// mbstdStats returns each feature's mean and standard deviation over the
// batch, and s, the mean of the deviations.
func mbstdStats[T Float](x []T, n, m int) (mu, sd []float64, s float64) {
	mu, sd = make([]float64, m), make([]float64, m)
	for i := 0; i < n; i++ {
		for j, v := range x[i*m : (i+1)*m] {
			mu[j] += float64(v)
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	for i := 0; i < n; i++ {
		for j, v := range x[i*m : (i+1)*m] {
			d := float64(v) - mu[j]
			sd[j] += d * d
		}
	}
	for j := range sd {
		sd[j] = math.Sqrt(sd[j]/float64(n) + mbstdEps)
		s += sd[j]
	}
	return mu, sd, s / float64(m)
}

func mbstdFwd[T Float](n, m, r int) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		x := in[0]
		_, _, s := mbstdStats(x, n, m)
		for i := 0; i < n; i++ {
			row := out[i*(m+r) : (i+1)*(m+r)]
			copy(row, x[i*m:(i+1)*m])
			for k := m; k < m+r; k++ {
				row[k] = T(s)
			}
		}
		return nil
	}
}

// mbstdBwd is dx_ij = dy_ij + g·(x_ij − μ_j)/(N·M·σ_j), g the sum of the
// gradients of every copy of s.
func mbstdBwd[T Float](n, m, r int) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		x, gy := in[0], in[1]
		mu, sd, _ := mbstdStats(x, n, m)
		var g float64
		for i := 0; i < n; i++ {
			for _, v := range gy[i*(m+r)+m : (i+1)*(m+r)] {
				g += float64(v)
			}
		}
		c := g / float64(n*m)
		for i := 0; i < n; i++ {
			for j := 0; j < m; j++ {
				out[i*m+j] = T(float64(gy[i*(m+r)+j]) + c*(float64(x[i*m+j])-mu[j])/sd[j])
			}
		}
		return nil
	}
}
