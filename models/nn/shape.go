package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Add is a + b for tensors of one shape, in one pass into a kept buffer
// (Gorgonia's Add clones a first): a residual connection.
func Add(a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("add %v and %v", a.Shape(), b.Shape())
	}
	return Apply("Add", a.Shape(), Kernels(addKernel[float32], addKernel[float64]),
		[]bool{true, true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			return G.Nodes{gy, gy}, nil
		}, a, b)
}

func addKernel[T Float](out []T, in [][]T) error {
	a, b := in[0], in[1]
	Parallel(len(out), 1, func(lo, hi int) {
		o, x, y := out[lo:hi], a[lo:hi], b[lo:hi]
		y = y[:len(x)]
		o = o[:len(x)]
		for i, v := range x {
			o[i] = v + y[i]
		}
	})
	return nil
}

// AddChannel is x[b, c, :, :] + e[b, c] for x [B, C, H, W] and e [B, C]
// (a time embedding added to every pixel of a feature map).
func AddChannel(x, e *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 || e.Dims() != 2 || e.Shape()[0] != s[0] || e.Shape()[1] != s[1] {
		return nil, fmt.Errorf("channel add: %v to %v", e.Shape(), s)
	}
	hw := s[2] * s[3]
	return Apply("AddChannel", s, Kernels(
		func(out []float32, in [][]float32) error { return chanAddKernel(out, in[0], in[1], hw) },
		func(out []float64, in [][]float64) error { return chanAddKernel(out, in[0], in[1], hw) }),
		[]bool{true, true}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			de, err := Apply("ChannelSum", e.Shape(), Kernels(
				func(out []float32, in [][]float32) error { return planeSums(out, in[0], hw) },
				func(out []float64, in [][]float64) error { return planeSums(out, in[0], hw) }), nil, nil, gy)
			return G.Nodes{gy, de}, err
		}, x, e)
}

func chanAddKernel[T Float](out, x, e []T, hw int) error {
	Parallel(len(e), hw, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := e[i]
			o, s := out[i*hw:(i+1)*hw], x[i*hw:(i+1)*hw]
			for j := range o {
				o[j] = s[j] + v
			}
		}
	})
	return nil
}

// planeSums sums each hw-long plane of g into out.
func planeSums[T Float](out, g []T, hw int) error {
	for i := range out {
		var s T
		for _, v := range g[i*hw : (i+1)*hw] {
			s += v
		}
		out[i] = s
	}
	return nil
}

// Upsample2x is PyTorch's nn.Upsample(scale_factor=2, mode="nearest") on
// NCHW data; its backward sums each 2×2 block.
func Upsample2x(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 {
		return nil, fmt.Errorf("upsample: input %v is not NCHW", s)
	}
	h, w := s[2], s[3]
	planes := s[0] * s[1]
	return Apply("Upsample2x", tensor.Shape{s[0], s[1], 2 * h, 2 * w}, Kernels(
		func(out []float32, in [][]float32) error { return upKernel(out, in[0], planes, h, w) },
		func(out []float64, in [][]float64) error { return upKernel(out, in[0], planes, h, w) }),
		[]bool{true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			dx, err := Apply("Upsample2xGrad", s, Kernels(
				func(out []float32, in [][]float32) error { return upGradKernel(out, in[0], planes, h, w) },
				func(out []float64, in [][]float64) error { return upGradKernel(out, in[0], planes, h, w) }), nil, nil, gy)
			return G.Nodes{dx}, err
		}, x)
}

func upKernel[T Float](out, x []T, planes, h, w int) error {
	Parallel(planes, 4*h*w, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := x[p*h*w:(p+1)*h*w], out[p*4*h*w:(p+1)*4*h*w]
			for i := 0; i < h; i++ {
				r0 := dst[2*i*2*w : (2*i+1)*2*w]
				for j, v := range src[i*w : (i+1)*w] {
					r0[2*j], r0[2*j+1] = v, v
				}
				copy(dst[(2*i+1)*2*w:(2*i+2)*2*w], r0)
			}
		}
	})
	return nil
}

func upGradKernel[T Float](out, g []T, planes, h, w int) error {
	Parallel(planes, 4*h*w, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := g[p*4*h*w:(p+1)*4*h*w], out[p*h*w:(p+1)*h*w]
			for i := 0; i < h; i++ {
				r0, r1 := src[2*i*2*w:(2*i+1)*2*w], src[(2*i+1)*2*w:(2*i+2)*2*w]
				for j := 0; j < w; j++ {
					dst[i*w+j] = (r0[2*j] + r0[2*j+1]) + (r1[2*j] + r1[2*j+1])
				}
			}
		}
	})
	return nil
}

// Cat is torch.cat([a, b], dim=1) for NCHW tensors of the same N, H, W.
func Cat(a, b *G.Node) (*G.Node, error) {
	sa, sb := a.Shape(), b.Shape()
	if sa.Dims() != 4 || sb.Dims() != 4 || sa[0] != sb[0] || sa[2] != sb[2] || sa[3] != sb[3] {
		return nil, fmt.Errorf("concat %v and %v", sa, sb)
	}
	bt, hw, ca, cb := sa[0], sa[2]*sa[3], sa[1], sb[1]
	return Apply("Cat", tensor.Shape{bt, ca + cb, sa[2], sa[3]}, Kernels(
		func(out []float32, in [][]float32) error { return catKernel(out, in[0], in[1], bt, ca*hw, cb*hw) },
		func(out []float64, in [][]float64) error { return catKernel(out, in[0], in[1], bt, ca*hw, cb*hw) }),
		[]bool{true, true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			slice := func(lo, n int, shape tensor.Shape) (*G.Node, error) {
				return Apply("SliceChannels", shape, Kernels(
					func(out []float32, in [][]float32) error {
						return sliceKernel(out, in[0], bt, (ca+cb)*hw, lo*hw, n*hw)
					},
					func(out []float64, in [][]float64) error {
						return sliceKernel(out, in[0], bt, (ca+cb)*hw, lo*hw, n*hw)
					}), nil, nil, gy)
			}
			da, err := slice(0, ca, sa)
			if err != nil {
				return nil, err
			}
			db, err := slice(ca, cb, sb)
			return G.Nodes{da, db}, err
		}, a, b)
}

func catKernel[T Float](out, a, b []T, bt, na, nb int) error {
	for i := 0; i < bt; i++ {
		copy(out[i*(na+nb):], a[i*na:(i+1)*na])
		copy(out[i*(na+nb)+na:], b[i*nb:(i+1)*nb])
	}
	return nil
}

func sliceKernel[T Float](out, g []T, bt, row, off, n int) error {
	for i := 0; i < bt; i++ {
		copy(out[i*n:(i+1)*n], g[i*row+off:i*row+off+n])
	}
	return nil
}
