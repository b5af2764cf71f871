package models

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// tinyUNetConfig is a U-Net small enough to check every weight by finite
// differences: F = 2, two channels, 8 wide and 12 high (12 → 6 → 3 and
// back), batch 3.
func tinyUNetConfig() DDPMConfig {
	c := DefaultUNetDDPMConfig()
	c.Width, c.Height, c.Channels = 8, 12, 2
	c.Features, c.TEmb, c.Batch = 2, 4, 3
	return c
}

// unRefConv is a direct float64 Conv2d (cross-correlation, zero padding)
// of one image x [cin, h, w] with w [cout, cin, k, k] and bias b.
func unRefConv(x []float64, cin, h, w int, l *unConv) (y []float64, ho, wo int) {
	wt, bs := l.W.Data().([]float64), l.B.Data().([]float64)
	k, s, pad := l.k, l.stride, l.pad
	ho, wo = (h+2*pad-k)/s+1, (w+2*pad-k)/s+1
	y = make([]float64, l.out*ho*wo)
	for co := 0; co < l.out; co++ {
		for oy := 0; oy < ho; oy++ {
			for ox := 0; ox < wo; ox++ {
				sum := bs[co]
				for ci := 0; ci < cin; ci++ {
					for ki := 0; ki < k; ki++ {
						for kj := 0; kj < k; kj++ {
							iy, ix := oy*s-pad+ki, ox*s-pad+kj
							if iy < 0 || iy >= h || ix < 0 || ix >= w {
								continue
							}
							sum += x[(ci*h+iy)*w+ix] * wt[((co*cin+ci)*k+ki)*k+kj]
						}
					}
				}
				y[(co*ho+oy)*wo+ox] = sum
			}
		}
	}
	return y, ho, wo
}

func unRefLinear(l *Linear, x []float64) []float64 {
	w, b := l.W.Data().([]float64), l.B.Data().([]float64)
	y := make([]float64, l.Out)
	for o := range y {
		y[o] = b[o]
		for i, xi := range x {
			y[o] += xi * w[i*l.Out+o]
		}
	}
	return y
}

func unRefSiLU(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = siluF64(v)
	}
	return y
}

// unRefForward evaluates the U-Net of unNet's doc comment on one image
// [C, H, W] with time embedding temb, directly from its definition.
func unRefForward(n *unNet, x, temb []float64) []float64 {
	e := unRefSiLU(unRefLinear(n.temb2, unRefSiLU(unRefLinear(n.temb0, temb))))
	type fm struct {
		v       []float64
		c, h, w int
	}
	conv := func(l *unConv, a fm) fm {
		y, ho, wo := unRefConv(a.v, a.c, a.h, a.w, l)
		return fm{y, l.out, ho, wo}
	}
	silu := func(a fm) fm { return fm{unRefSiLU(a.v), a.c, a.h, a.w} }
	res := func(r *unResBlock, a fm) fm {
		h := conv(r.conv1, silu(a))
		p := unRefLinear(r.temb, e)
		for c := 0; c < h.c; c++ {
			for j := 0; j < h.h*h.w; j++ {
				h.v[c*h.h*h.w+j] += p[c]
			}
		}
		h = conv(r.conv2, silu(h))
		s := a
		if r.skip != nil {
			s = conv(r.skip, a)
		}
		for i := range h.v {
			h.v[i] += s.v[i]
		}
		return h
	}
	up := func(a fm) fm {
		out := fm{make([]float64, a.c*4*a.h*a.w), a.c, 2 * a.h, 2 * a.w}
		for c := 0; c < a.c; c++ {
			for i := 0; i < out.h; i++ {
				for j := 0; j < out.w; j++ {
					out.v[(c*out.h+i)*out.w+j] = a.v[(c*a.h+i/2)*a.w+j/2]
				}
			}
		}
		return out
	}
	cat := func(a, b fm) fm {
		return fm{append(append([]float64(nil), a.v...), b.v...), a.c + b.c, a.h, a.w}
	}
	h := conv(n.inc, fm{x, n.c, n.h, n.w})
	h1 := res(n.down1, h)
	h2 := res(n.down2, conv(n.pool1, h1))
	h = res(n.mid, conv(n.pool2, h2))
	h = res(n.dec2, cat(conv(n.up2, up(h)), h2))
	h = res(n.dec1, cat(conv(n.up1, up(h)), h1))
	return conv(n.out, silu(h)).v
}

// TestUNetForwardMatchesDefinition compares the graph's MSE with the
// U-Net evaluated by hand in float64 (direct convolutions, nothing shared
// with the custom ops), on the graph's own inputs and weights.
func TestUNetForwardMatchesDefinition(t *testing.T) {
	d, err := newDDPM(tinyUNetConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tinyDDPMInputs(t, d)
	if err := runGrad(d.train.vm, d.train.weights); err != nil {
		t.Fatal(err)
	}
	got, err := scalar(d.train.loss)
	if err != nil {
		t.Fatal(err)
	}
	xt, temb, eps := d.train.xt.Data().([]float64), d.train.temb.Data().([]float64), d.train.eps.Data().([]float64)
	n, te := d.shape.Size(), d.cfg.TEmb
	var sum float64
	for r := 0; r < d.cfg.Batch; r++ {
		out := unRefForward(d.unet, xt[r*n:(r+1)*n], temb[r*te:(r+1)*te])
		if len(out) != n {
			t.Fatalf("reference output has %d values, want %d", len(out), n)
		}
		for i, v := range out {
			diff := v - eps[r*n+i]
			sum += diff * diff
		}
	}
	want := sum / float64(d.cfg.Batch*n)
	if math.Abs(got-want) > 1e-12*math.Max(1, want) {
		t.Fatalf("graph loss %.15g, hand-computed %.15g", got, want)
	}
}

// TestUNetGradientsMatchFiniteDifferences checks the gradient of the MSE
// with respect to every U-Net weight (convolutions with stride 1 and 2 and
// 1×1 skips, upsampling, concatenation, the time-embedding MLP and its
// per-channel biases, SiLU) against central differences in float64, and
// that a second identical run gives the same loss and gradients.
func TestUNetGradientsMatchFiniteDifferences(t *testing.T) {
	d, err := newDDPM(tinyUNetConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tinyDDPMInputs(t, d)
	// Every value of the small tensors; the first, the last and 14 random
	// ones of the others (TestUNetConvOps checks whole conv gradients
	// exactly), to keep the test to a few seconds.
	checked := checkFiniteDifferences(t, d.train.vm, d.train.weights, &d.train.loss, d.Params(), 16)
	if len(d.Params()) != 50 || checked != 480 {
		t.Fatalf("%d values in %d tensors checked", checked, len(d.Params()))
	}
}

// TestUNetConvOps checks the convolution op and both its gradients on
// their own, for the geometries the network uses (3×3 stride 1 and 2, 1×1)
// and batches that split unevenly into gemm chunks, against direct sums in
// float64: y = conv(x), dL/dx and dL/dw for L = Σ y·r with a fixed r.
func TestUNetConvOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct{ b, cin, h, w, cout, k, s int }{
		{3, 2, 5, 7, 3, 3, 1},
		{5, 3, 7, 6, 2, 3, 2},
		{4, 3, 4, 4, 5, 1, 1},
		{70, 2, 3, 2, 3, 3, 2}, // p = 2: chunks of 64 and 6 images
		{40, 2, 4, 4, 3, 1, 1}, // 1×1 with chunks
	} {
		l := unNewConv("c", tc.cin, tc.cout, tc.k, tc.s, tensor.Float64, rng)
		geom := unNewGeom(tc.b, tc.cin, tc.h, tc.w, tc.cout, tc.k, tc.s, l.pad)
		x := make([]float64, tc.b*tc.cin*tc.h*tc.w)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		r := make([]float64, tc.b*tc.cout*geom.p())
		for i := range r {
			r[i] = rng.NormFloat64()
		}
		g := G.NewGraph()
		xv := tensor.New(tensor.WithShape(tc.b, tc.cin, tc.h, tc.w), tensor.WithBacking(x))
		xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(xv.Shape()...), G.WithValue(xv), G.WithName("x"))
		wn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(l.W.Shape()...), G.WithValue(l.W), G.WithName("w"))
		bn := G.NewVector(g, tensor.Float64, G.WithShape(tc.cout), G.WithValue(l.B), G.WithName("b"))
		rn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(tc.b, tc.cout, geom.ho, geom.wo),
			G.WithValue(tensor.New(tensor.WithShape(tc.b, tc.cout, geom.ho, geom.wo), tensor.WithBacking(r))), G.WithName("r"))
		y, err := unConv2d(geom, &unScratch{}, true, xn, wn, bn)
		if err != nil {
			t.Fatal(err)
		}
		prod, err := G.HadamardProd(y, rn)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := G.Sum(prod)
		if err != nil {
			t.Fatal(err)
		}
		var yv G.Value
		G.Read(y, &yv)
		if _, err := G.Grad(loss, xn, wn, bn); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(xn, wn, bn))
		if err := runGrad(vm, G.Nodes{xn, wn, bn}); err != nil {
			t.Fatal(err)
		}
		grads, err := gradsOf(G.Nodes{xn, wn, bn})
		if err != nil {
			t.Fatal(err)
		}
		dx, dw, db := grads[0].Data().([]float64), grads[1].Data().([]float64), grads[2].Data().([]float64)
		got := yv.Data().([]float64)
		wantDX := make([]float64, len(x))
		wantDW := make([]float64, tc.cout*tc.cin*tc.k*tc.k)
		wantDB := make([]float64, tc.cout)
		wt := l.W.Data().([]float64)
		img, oimg := tc.cin*tc.h*tc.w, tc.cout*geom.p()
		for b := 0; b < tc.b; b++ {
			want, _, _ := unRefConv(x[b*img:(b+1)*img], tc.cin, tc.h, tc.w, l)
			for i, v := range want {
				if math.Abs(got[b*oimg+i]-v) > 1e-12 {
					t.Fatalf("%+v: y[%d][%d] = %g, want %g", tc, b, i, got[b*oimg+i], v)
				}
			}
			for co := 0; co < tc.cout; co++ {
				for oy := 0; oy < geom.ho; oy++ {
					for ox := 0; ox < geom.wo; ox++ {
						rv := r[b*oimg+(co*geom.ho+oy)*geom.wo+ox]
						wantDB[co] += rv
						for ci := 0; ci < tc.cin; ci++ {
							for ki := 0; ki < tc.k; ki++ {
								for kj := 0; kj < tc.k; kj++ {
									iy, ix := oy*tc.s-l.pad+ki, ox*tc.s-l.pad+kj
									if iy < 0 || iy >= tc.h || ix < 0 || ix >= tc.w {
										continue
									}
									wi := ((co*tc.cin+ci)*tc.k+ki)*tc.k + kj
									xi := b*img + (ci*tc.h+iy)*tc.w + ix
									wantDW[wi] += rv * x[xi]
									wantDX[xi] += rv * wt[wi]
								}
							}
						}
					}
				}
			}
		}
		for _, c := range []struct {
			name      string
			got, want []float64
		}{{"dx", dx, wantDX}, {"dw", dw, wantDW}, {"db", db, wantDB}} {
			for i := range c.want {
				if math.Abs(c.got[i]-c.want[i]) > 1e-10*(1+math.Abs(c.want[i])) {
					t.Fatalf("%+v: %s[%d] = %g, want %g", tc, c.name, i, c.got[i], c.want[i])
				}
			}
		}
	}
}

func TestUNetFastSigmoid(t *testing.T) {
	var xs []float32
	for x := -30.0; x <= 30; x += 0.001 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, -100, 100, -80.5, 80.5, 0)
	s := make([]float32, len(xs))
	unSigmoids(s, xs)
	worst := 0.0
	for i, x := range xs[:len(xs)-5] {
		want := 1 / (1 + math.Exp(-float64(x)))
		worst = max(worst, math.Abs(float64(s[i])-want)/want)
	}
	t.Logf("fast float32 sigmoid: worst relative error %.2g", worst)
	if worst > 5e-7 {
		t.Fatalf("fast float32 sigmoid off by %g relative", worst)
	}
	if n := len(xs); s[n-5] != 0 || s[n-4] != 1 || s[n-1] != 0.5 {
		t.Fatalf("sigmoid(-100, 100, 0) = %g, %g, %g", s[n-5], s[n-4], s[n-1])
	}
}
