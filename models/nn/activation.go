package nn

import (
	"errors"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LeakyReLU is x for x ≥ 0 and slope·x elsewhere (slope 0: ReLU), in one
// op, with the comparison x ≥ 0 of Gorgonia's composites (x = 0 counts as
// positive) and their order of operations, so that it gives their numbers
// bit for bit. With mask set (an inverted-dropout mask of x's shape, a
// graph input that takes no gradient) it is act(x)⊙mask, the backward
// (mask⊙dy)·(1 or slope). Gorgonia's LeakyRelu is x⊙(x ≥ 0) +
// (x⊙(x < 0))⊙slope: several full-size temporaries each way and a
// gradient for the slope constant that nothing reads.
func LeakyReLU(x *G.Node, slope float64, mask *G.Node) (*G.Node, error) {
	relu := slope == 0
	in := G.Nodes{x}
	if mask != nil {
		if !mask.Shape().Eq(x.Shape()) {
			return nil, fmt.Errorf("dropout mask %v for input %v", mask.Shape(), x.Shape())
		}
		in = append(in, mask)
	}
	name := fmt.Sprintf("LeakyReLU{%g}", slope)
	if relu {
		name = "ReLU"
	}
	hasMask := mask != nil
	fwd := Kernels(
		func(out []float32, in [][]float32) error {
			leakyParallel(in[0], maskOf(in, hasMask), nil, out, float32(slope))
			return nil
		},
		func(out []float64, in [][]float64) error {
			leakyParallel(in[0], maskOf(in, hasMask), nil, out, slope)
			return nil
		})
	wrt := make([]bool, len(in))
	wrt[0] = true
	return Apply(name, x.Shape(), fwd, wrt, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
		args := append(G.Nodes{}, in...)
		args = append(args, gy)
		dx, err := leakyGrad(name, x.Shape(), slope, hasMask, args)
		grads := make(G.Nodes, len(in))
		grads[0] = dx
		return grads, err
	}, in...)
}

// ReLU is LeakyReLU with slope 0.
func ReLU(x *G.Node) (*G.Node, error) { return LeakyReLU(x, 0, nil) }

func maskOf[T Float](in [][]T, on bool) []T {
	if on {
		return in[1]
	}
	return nil
}

// leakyParallel is leakyRun split over the cores when x is large; each
// element is computed the same way whatever the split.
func leakyParallel[T Float](x, m, dy, out []T, slope T) {
	part := func(s []T, lo, hi int) []T {
		if s == nil {
			return nil
		}
		return s[lo:hi]
	}
	Parallel(len(x), 1, func(lo, hi int) {
		leakyRun(x[lo:hi], part(m, lo, hi), part(dy, lo, hi), out[lo:hi], slope)
	})
}

// leakyRun computes out = x·k (dy nil) or dy·k with k = 1 where x ≥ 0 and
// slope elsewhere; with a dropout mask m, out = (x·k)·m or (m·dy)·k. The
// factor is selected without a branch (a sign that changes at random
// defeats the branch predictor); x·1 is x exactly, so the values are those
// of Gorgonia's composites.
func leakyRun[T Float](x, m, dy, out []T, slope T) {
	out = out[:len(x)]
	switch {
	case m != nil && dy != nil:
		m, dy = m[:len(x)], dy[:len(x)]
		for i, v := range x {
			k := slope
			if v >= 0 {
				k = 1
			}
			out[i] = (m[i] * dy[i]) * k
		}
	case m != nil:
		m = m[:len(x)]
		for i, v := range x {
			k := slope
			if v >= 0 {
				k = 1
			}
			out[i] = (v * k) * m[i]
		}
	case dy != nil:
		dy = dy[:len(x)]
		for i, v := range x {
			k := slope
			if v >= 0 {
				k = 1
			}
			out[i] = dy[i] * k
		}
	default:
		for i, v := range x {
			k := slope
			if v >= 0 {
				k = 1
			}
			out[i] = v * k
		}
	}
}

// outputGrad makes the activation y = f(x) whose derivative is a function
// of y alone: fwd writes y, grad writes dx from (y, dy). The backward op
// reads the forward op's output, so nothing is recomputed.
func outputGrad(name string, x *G.Node, fwd, grad Kernel) (*G.Node, error) {
	return Apply(name, x.Shape(), fwd, []bool{true}, func(_ G.Nodes, y, gy *G.Node) (G.Nodes, error) {
		dx, err := Apply(name+"Grad", x.Shape(), grad, nil, nil, y, gy)
		return G.Nodes{dx}, err
	}, x)
}

// Tanh is tanh(x), its backward dy·(1 − y²).
func Tanh(x *G.Node) (*G.Node, error) {
	return outputGrad("Tanh", x, Kernels(tanhKernel[float32], tanhKernel[float64]),
		Kernels(tanhGrad[float32], tanhGrad[float64]))
}

func tanhKernel[T Float](out []T, in [][]T) error {
	x := in[0]
	Parallel(len(x), 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = T(math.Tanh(float64(x[i])))
		}
	})
	return nil
}

func tanhGrad[T Float](out []T, in [][]T) error {
	y, g := in[0], in[1]
	for i, v := range y {
		out[i] = g[i] * (1 - v*v)
	}
	return nil
}

// Sigmoid is 1/(1 + e^−x), its backward dy·y·(1 − y).
func Sigmoid(x *G.Node) (*G.Node, error) {
	return outputGrad("Sigmoid", x, Kernels(sigmoidKernel[float32], sigmoidKernel[float64]),
		Kernels(sigmoidGrad[float32], sigmoidGrad[float64]))
}

func sigmoidKernel[T Float](out []T, in [][]T) error {
	x := in[0]
	Parallel(len(x), 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = T(1 / (1 + math.Exp(-float64(x[i]))))
		}
	})
	return nil
}

func sigmoidGrad[T Float](out []T, in [][]T) error {
	y, g := in[0], in[1]
	for i, v := range y {
		out[i] = g[i] * v * (1 - v)
	}
	return nil
}

// siluCache keeps the forward pass's sigmoid(x) for the backward pass when
// the graph has one (the op's gradient turns it on at build time).
type siluCache struct {
	on  bool
	s32 []float32
	s64 []float64
}

// SiLU is x·sigmoid(x), elementwise on a tensor of any shape; its backward
// dy·(s + x·s·(1 − s)) reuses the forward's s = sigmoid(x).
func SiLU(x *G.Node) (*G.Node, error) {
	c := &siluCache{}
	run := Kernels(
		func(out []float32, in [][]float32) error { silu32(out, in[0], c); return nil },
		func(out []float64, in [][]float64) error { silu64(out, in[0], c); return nil })
	return Apply("SiLU", x.Shape(), run, []bool{true}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
		c.on = true
		dx, err := Apply("SiLUGrad", in[0].Shape(), Kernels(
			func(out []float32, in [][]float32) error { return siluGrad(out, in[0], in[1], c.s32) },
			func(out []float64, in [][]float64) error { return siluGrad(out, in[0], in[1], c.s64) }), nil, nil, in[0], gy)
		return G.Nodes{dx}, err
	}, x)
}

func silu32(out, x []float32, c *siluCache) {
	if c.on && len(c.s32) != len(x) {
		c.s32 = make([]float32, len(x))
	}
	Parallel(len(x), 8, func(lo, hi int) {
		var tmp [256]float32
		for a := lo; a < hi; a += len(tmp) {
			b := min(hi, a+len(tmp))
			s := tmp[:b-a]
			if c.on {
				s = c.s32[a:b]
			}
			Sigmoids32(s, x[a:b])
			o := out[a:b]
			for i, v := range x[a:b] {
				o[i] = v * s[i]
			}
		}
	})
}

func silu64(out, x []float64, c *siluCache) {
	if c.on && len(c.s64) != len(x) {
		c.s64 = make([]float64, len(x))
	}
	for i, v := range x {
		s := 1 / (1 + math.Exp(-v))
		if c.on {
			c.s64[i] = s
		}
		out[i] = v * s
	}
}

func siluGrad[T Float](out, x, g, s []T) error {
	if len(s) != len(x) {
		return errors.New("SiLU gradient before its forward pass")
	}
	Parallel(len(x), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = g[i] * s[i] * (1 + x[i]*(1-s[i]))
		}
	})
	return nil
}

// Sigmoids32 writes s[i] = 1/(1+exp(-x[i])) in float32, within a few ulps:
// e^u = 2^n · e^f with n = round(u·log2 e), f = u - n·ln 2 (ln 2 split in
// two so that f is exact) and e^f, |f| ≤ 0.35, from its degree-7 Taylor
// polynomial, written out in the loop (a call per element would spill
// every register).
func Sigmoids32(s, x []float32) {
	const ln2Hi, ln2Lo = 0.693359375, -2.12194440e-4
	s = s[:len(x)]
	for i, v := range x {
		u := -v
		switch {
		case u > 80:
			s[i] = 0
			continue
		case u < -80:
			s[i] = 1
			continue
		}
		r := u*math.Log2E + 12582912
		n := int32(math.Float32bits(r)) - 0x4b400000
		fn := r - 12582912
		f := (u - fn*ln2Hi) - fn*ln2Lo
		p := float32(1.0 / 5040)
		p = p*f + 1.0/720
		p = p*f + 1.0/120
		p = p*f + 1.0/24
		p = p*f + 1.0/6
		p = p*f + 0.5
		p = p*f + 1
		p = p*f + 1
		s[i] = 1 / (1 + p*math.Float32frombits(uint32(n+127)<<23))
	}
}

// leakyGrad is LeakyReLU's backward, gy scaled by the slope (and the
// mask) where x is negative: args are x, the mask when there is one, and
// gy. It is linear in gy, and differentiable in it by itself (the slopes
// do not change with x but at 0), so a gradient penalty can differentiate
// through it.
func leakyGrad(name string, shape tensor.Shape, slope float64, hasMask bool, args G.Nodes) (*G.Node, error) {
	wrt := make([]bool, len(args))
	wrt[len(args)-1] = true
	return Apply(name+"Grad", shape, Kernels(
		func(out []float32, in [][]float32) error {
			leakyParallel(in[0], maskOf(in, hasMask), in[len(in)-1], out, float32(slope))
			return nil
		},
		func(out []float64, in [][]float64) error {
			leakyParallel(in[0], maskOf(in, hasMask), in[len(in)-1], out, slope)
			return nil
		}), wrt, func(in G.Nodes, _, gg *G.Node) (G.Nodes, error) {
		up := append(append(G.Nodes{}, in[:len(in)-1]...), gg)
		d, err := leakyGrad(name+"'", shape, slope, hasMask, up)
		grads := make(G.Nodes, len(in))
		grads[len(in)-1] = d
		return grads, err
	}, args...)
}
