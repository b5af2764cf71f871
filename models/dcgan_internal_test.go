package models

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// tinyDCGANConfig is a DCGAN small enough for finite differences on every
// weight: 8×8×3 images, 2 feature maps, batch 3.
func tinyDCGANConfig() DCGANConfig {
	c := DefaultDCGANConfig()
	c.Latent, c.Width, c.Height, c.Channels = 3, 8, 8, 3
	c.GFeatures, c.DFeatures, c.Batch = 2, 2, 3
	return c
}

func newTinyDCGAN(t *testing.T) *DCGAN {
	t.Helper()
	m, err := newDCGAN(tinyDCGANConfig(), tensor.Float64, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func dcF64(t *tensor.Dense) []float64 {
	if t == nil {
		return nil
	}
	switch d := t.Data().(type) {
	case []float64:
		return d
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}

// dcRefConv is a direct (N, Cin, H, W) cross-correlation, PyTorch's Conv2d.
func dcRefConv(x []float64, n, h, w int, c *dcConv) (y []float64, ho, wo int) {
	W, B := dcF64(c.W), dcF64(c.B)
	ho = (h+2*c.Pad-c.K)/c.Stride + 1
	wo = (w+2*c.Pad-c.K)/c.Stride + 1
	y = make([]float64, n*c.Out*ho*wo)
	for b := 0; b < n; b++ {
		for o := 0; o < c.Out; o++ {
			for i := 0; i < ho; i++ {
				for j := 0; j < wo; j++ {
					s := 0.0
					if B != nil {
						s = B[o]
					}
					for ci := 0; ci < c.In; ci++ {
						for ki := 0; ki < c.K; ki++ {
							for kj := 0; kj < c.K; kj++ {
								yi, xj := i*c.Stride-c.Pad+ki, j*c.Stride-c.Pad+kj
								if yi < 0 || yi >= h || xj < 0 || xj >= w {
									continue
								}
								s += W[((o*c.In+ci)*c.K+ki)*c.K+kj] * x[((b*c.In+ci)*h+yi)*w+xj]
							}
						}
					}
					y[((b*c.Out+o)*ho+i)*wo+j] = s
				}
			}
		}
	}
	return y, ho, wo
}

// dcRefBN normalises x (n, c, hw) in place with batch statistics (train)
// or the running ones, returning the batch mean and biased variance.
func dcRefBN(x []float64, n, c, hw int, bn *dcBatchNorm, train bool) (mean, variance []float64) {
	g, b := dcF64(bn.Gamma), dcF64(bn.Beta)
	mean, variance = make([]float64, c), make([]float64, c)
	cnt := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		for s := 0; s < n; s++ {
			for k := 0; k < hw; k++ {
				mean[ch] += x[(s*c+ch)*hw+k]
			}
		}
		mean[ch] /= cnt
		for s := 0; s < n; s++ {
			for k := 0; k < hw; k++ {
				d := x[(s*c+ch)*hw+k] - mean[ch]
				variance[ch] += d * d
			}
		}
		variance[ch] /= cnt
		mu, v := mean[ch], variance[ch]
		if !train {
			mu, v = dcF64(bn.RunMean)[ch], dcF64(bn.RunVar)[ch]
		}
		for s := 0; s < n; s++ {
			for k := 0; k < hw; k++ {
				i := (s*c+ch)*hw + k
				x[i] = (x[i]-mu)/math.Sqrt(v+bn.Eps)*g[ch] + b[ch]
			}
		}
	}
	return mean, variance
}

func dcRefUpsample(x []float64, planes, h, w int) []float64 {
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

// dcRefGenerate is the generator written out with loops: tanh images and
// the batch statistics of bn0 and bn1.
func dcRefGenerate(m *DCGAN, z []float64, n int, train bool) (img []float64, means, vars [2][]float64) {
	gn := m.gen
	fc := dcF64(gn.FC.W) // in×out
	h := make([]float64, n*gn.FC.Out)
	for b := 0; b < n; b++ {
		for o := 0; o < gn.FC.Out; o++ {
			for i := 0; i < gn.FC.In; i++ {
				h[b*gn.FC.Out+o] += z[b*gn.FC.In+i] * fc[i*gn.FC.Out+o]
			}
		}
	}
	side := gn.S4
	means[0], vars[0] = dcRefBN(h, n, gn.F2, side*side, gn.BN0, train)
	for i, v := range h {
		h[i] = math.Max(v, 0)
	}
	h = dcRefUpsample(h, n*gn.F2, side, side)
	side *= 2
	h, _, _ = dcRefConv(h, n, side, side, gn.Conv1)
	means[1], vars[1] = dcRefBN(h, n, gn.Conv1.Out, side*side, gn.BN1, train)
	for i, v := range h {
		h[i] = math.Max(v, 0)
	}
	h = dcRefUpsample(h, n*gn.Conv1.Out, side, side)
	side *= 2
	h, _, _ = dcRefConv(h, n, side, side, gn.Conv2)
	for i, v := range h {
		h[i] = math.Tanh(v)
	}
	return h, means, vars
}

// dcRefDiscriminate is the discriminator written out with loops.
func dcRefDiscriminate(m *DCGAN, x []float64, n int) []float64 {
	d, side := m.disc, m.cfg.Width
	leaky := func(v []float64) {
		for i, x := range v {
			if x < 0 {
				v[i] = x * d.Slope
			}
		}
	}
	h, ho, wo := dcRefConv(x, n, side, side, d.Conv1)
	leaky(h)
	h, _, _ = dcRefConv(h, n, ho, wo, d.Conv2)
	leaky(h)
	w, bias := dcF64(d.FC.W), dcF64(d.FC.B)
	out := make([]float64, n)
	for b := 0; b < n; b++ {
		out[b] = bias[0]
		for i := 0; i < d.FC.In; i++ {
			out[b] += h[b*d.FC.In+i] * w[i]
		}
	}
	return out
}

func dcSoftplus(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

func dcCloseTo(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// dcRandomizeBN gives the batch norms non-trivial γ, β and running statistics.
func dcRandomizeBN(m *DCGAN, rng *rand.Rand) {
	for _, bn := range []*dcBatchNorm{m.gen.BN0, m.gen.BN1} {
		for i := 0; i < bn.C; i++ {
			setAt(bn.Gamma, i, 0.5+rng.Float64())
			setAt(bn.Beta, i, rng.Float64()-0.5)
			setAt(bn.RunMean, i, rng.Float64()-0.5)
			setAt(bn.RunVar, i, 0.5+rng.Float64())
		}
	}
}

// TestDCGANGraphsMatchLoops checks the Gorgonia graphs against the networks
// written out with loops: layouts (NCHW, out×in×kh×kw weights, PyTorch's
// flatten order), padding, stride, upsampling, batch norm in both modes and
// the losses.
func TestDCGANGraphsMatchLoops(t *testing.T) {
	m := newTinyDCGAN(t)
	rng := rand.New(rand.NewPCG(1, 2))
	dcRandomizeBN(m, rng)
	n, size := m.cfg.Batch, m.shape.Size()
	FillNormal(m.z, rng)
	z := make([]float64, len(m.z))
	for i, v := range m.z {
		z[i] = float64(v)
	}

	mean, variance, err := m.generateTrain()
	if err != nil {
		t.Fatal(err)
	}
	want, wm, wv := dcRefGenerate(m, z, n, true)
	for i := range want {
		if !dcCloseTo(float64(m.fake[i]), want[i], 1e-6) {
			t.Fatalf("training forward [%d] = %g, loops give %g", i, m.fake[i], want[i])
		}
	}
	for k := 0; k < 2; k++ {
		for c := range wm[k] {
			if !dcCloseTo(mean[k][c], wm[k][c], 1e-9) || !dcCloseTo(variance[k][c], wv[k][c], 1e-9) {
				t.Fatalf("bn%d channel %d statistics (%g, %g), loops give (%g, %g)", k, c, mean[k][c], variance[k][c], wm[k][c], wv[k][c])
			}
		}
	}

	// Evaluation mode (Sample): running statistics, and samples are
	// independent of their batch mates.
	got, err := m.Sample(m.z)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ = dcRefGenerate(m, z, n, false)
	for i := range want {
		if !dcCloseTo(float64(got[i]), (want[i]+1)/2, 1e-6) {
			t.Fatalf("sample [%d] = %g, loops give %g", i, got[i], (want[i]+1)/2)
		}
	}
	one, err := m.Sample(m.z[m.cfg.Latent : 2*m.cfg.Latent])
	if err != nil {
		t.Fatal(err)
	}
	for i := range one {
		if one[i] != got[size+i] {
			t.Fatal("a sample depends on the other samples of its batch")
		}
	}

	// D loss.
	batch := make([]uint8, n*size)
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	real := make([]float64, len(batch))
	for i, p := range batch {
		real[i] = float64(p)/127.5 - 1
	}
	fake := make([]float64, len(m.fake))
	for i, v := range m.fake {
		fake[i] = float64(v)
	}
	wantD := 0.0
	for _, l := range dcRefDiscriminate(m, real, n) {
		wantD += dcSoftplus(-l) / float64(n)
	}
	for _, l := range dcRefDiscriminate(m, fake, n) {
		wantD += dcSoftplus(l) / float64(n)
	}
	scalePixels(m.dstep.real, batch)
	if err := copyInto(m.dstep.fake, m.fake); err != nil {
		t.Fatal(err)
	}
	if err := runGrad(m.dstep.vm, m.dstep.weights); err != nil {
		t.Fatal(err)
	}
	if d, _ := scalar(m.dstep.loss); !dcCloseTo(d, wantD, 1e-9) {
		t.Fatalf("D loss %g, loops give %g", d, wantD)
	}

	// G loss (training-mode generator through D).
	fakeRef, _, _ := dcRefGenerate(m, z, n, true)
	wantG := 0.0
	for _, l := range dcRefDiscriminate(m, fakeRef, n) {
		wantG += dcSoftplus(-l) / float64(n)
	}
	if err := copyInto(m.gstep.z, m.z); err != nil {
		t.Fatal(err)
	}
	if err := runGrad(m.gstep.vm, m.gstep.weights); err != nil {
		t.Fatal(err)
	}
	if g, _ := scalar(m.gstep.loss); !dcCloseTo(g, wantG, 1e-9) {
		t.Fatalf("G loss %g, loops give %g", g, wantG)
	}
}

// TestDCGANRunningStatsUpdate checks one running-statistics update against
// PyTorch's rule: r ← 0.9·r + 0.1·stat, with the unbiased batch variance.
func TestDCGANRunningStatsUpdate(t *testing.T) {
	m := newTinyDCGAN(t)
	rng := rand.New(rand.NewPCG(3, 4))
	dcRandomizeBN(m, rng)
	before := [2][2][]float64{}
	for k, bn := range []*dcBatchNorm{m.gen.BN0, m.gen.BN1} {
		before[k] = [2][]float64{append([]float64(nil), dcF64(bn.RunMean)...), append([]float64(nil), dcF64(bn.RunVar)...)}
	}
	batch := make([]uint8, m.cfg.Batch*m.shape.Size())
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	// The step's z is the first draw of its rng: replay it for the loops.
	z := make([]float32, len(m.z))
	FillNormal(z, rand.New(rand.NewPCG(5, 6)))
	z64 := make([]float64, len(z))
	for i, v := range z {
		z64[i] = float64(v)
	}
	_, mean, variance := dcRefGenerate(m, z64, m.cfg.Batch, true)
	if _, err := m.TrainStep(batch, rand.New(rand.NewPCG(5, 6))); err != nil {
		t.Fatal(err)
	}
	for k, bn := range []*dcBatchNorm{m.gen.BN0, m.gen.BN1} {
		side := m.gen.S4 << k
		cnt := float64(m.cfg.Batch * side * side)
		for c := 0; c < bn.C; c++ {
			wm := 0.9*before[k][0][c] + 0.1*mean[k][c]
			wv := 0.9*before[k][1][c] + 0.1*variance[k][c]*cnt/(cnt-1)
			if gm, gv := dcF64(bn.RunMean)[c], dcF64(bn.RunVar)[c]; !dcCloseTo(gm, wm, 1e-12) || !dcCloseTo(gv, wv, 1e-12) {
				t.Errorf("%s[%d]: running (%g, %g), want (%g, %g)", bn.Name, c, gm, gv, wm, wv)
			}
		}
	}
}

// TestDCGANGradientsMatchFiniteDifferences checks Gorgonia's symbolic
// gradients of both losses with respect to every weight (fc, convolutions,
// upsampling, batch norm in training mode, LeakyReLU, tanh, BCE) against
// central differences, in float64.
func TestDCGANGradientsMatchFiniteDifferences(t *testing.T) {
	m := newTinyDCGAN(t)
	rng := rand.New(rand.NewPCG(7, 8))
	dcRandomizeBN(m, rng)
	batch := make([]uint8, m.cfg.Batch*m.shape.Size())
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	FillNormal(m.z, rng)
	if _, _, err := m.generateTrain(); err != nil {
		t.Fatal(err)
	}
	scalePixels(m.dstep.real, batch)
	if err := copyInto(m.dstep.fake, m.fake); err != nil {
		t.Fatal(err)
	}
	if err := copyInto(m.gstep.z, m.z); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		vm     stepGraph
		value  func() float64
		params []NamedTensor
	}{
		{"D loss wrt D", stepGraph{m.dstep.vm, m.dstep.weights}, func() float64 { v, _ := scalar(m.dstep.loss); return v }, m.disc.params()},
		{"G loss wrt G", stepGraph{m.gstep.vm, m.gstep.weights}, func() float64 { v, _ := scalar(m.gstep.loss); return v }, m.gen.params()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func() float64 {
				if err := runGrad(tc.vm.vm, tc.vm.weights); err != nil {
					t.Fatal(err)
				}
				return tc.value()
			}
			run()
			grads, err := gradsOf(tc.vm.weights)
			if err != nil {
				t.Fatal(err)
			}
			if len(grads) != len(tc.params) {
				t.Fatalf("%d gradients for %d parameters", len(grads), len(tc.params))
			}
			analytic := make([][]float64, len(grads))
			for i, g := range grads {
				analytic[i] = append([]float64(nil), g.Data().([]float64)...)
			}
			const h = 1e-6
			checked := 0
			for pi, p := range tc.params {
				data := p.T.Data().([]float64)
				nonzero := false
				for j := range data {
					orig := data[j]
					data[j] = orig + h
					lp := run()
					data[j] = orig - h
					lm := run()
					data[j] = orig
					num := (lp - lm) / (2 * h)
					an := analytic[pi][j]
					if math.Abs(num-an) > 1e-6+1e-4*math.Abs(num) {
						t.Errorf("%s[%d]: analytic %.9g, numeric %.9g", p.Name, j, an, num)
					}
					if an != 0 {
						nonzero = true
					}
					checked++
				}
				if !nonzero {
					t.Errorf("%s has an all-zero gradient", p.Name)
				}
			}
			// Gradients must not accumulate across runs.
			run()
			again, err := gradsOf(tc.vm.weights)
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range again {
				for j, v := range g.Data().([]float64) {
					if math.Abs(v-analytic[i][j]) > 1e-12 {
						t.Fatalf("gradient %s[%d] changed between identical runs: %g vs %g", tc.params[i].Name, j, analytic[i][j], v)
					}
				}
			}
			t.Logf("%d parameters checked", checked)
		})
	}
}

// TestDCGANUpsampleOp checks the upsampling op and its adjoint directly.
func TestDCGANUpsampleOp(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 3, 2, 3), tensor.WithBacking(make([]float32, 36)))
	for i := range x.Data().([]float32) {
		x.Data().([]float32)[i] = float32(i)
	}
	y, err := dcUpsampleOp{}.Do(x)
	if err != nil {
		t.Fatal(err)
	}
	if !y.Shape().Eq(tensor.Shape{2, 3, 4, 6}) {
		t.Fatalf("shape %v", y.Shape())
	}
	yd := y.Data().([]float32)
	for p := 0; p < 6; p++ {
		for i := 0; i < 4; i++ {
			for j := 0; j < 6; j++ {
				if want := float32((p*2+i/2)*3 + j/2); yd[(p*4+i)*6+j] != want {
					t.Fatalf("y[%d,%d,%d] = %v, want %v", p, i, j, yd[(p*4+i)*6+j], want)
				}
			}
		}
	}
	g, err := dcUpsampleOp{grad: true}.Do(y)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range g.Data().([]float32) {
		if v != 4*float32(i) {
			t.Fatalf("adjoint [%d] = %v, want %v", i, v, 4*float32(i))
		}
	}
}

// TestDCGANConvOp checks the convolution op on its own, for geometries the
// networks do not use (odd sides, no padding, 1×1 kernels, rectangular
// images, several unfolding groups with a remainder): forward against the
// loops, gradients with respect to input, weights and bias against central
// differences.
func TestDCGANConvOp(t *testing.T) {
	defer func(v int) { dcConvGroupValues = v }(dcConvGroupValues)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		n, cin, h, w, cout, k, stride, pad int
		bias                               bool
		group                              int // dcConvGroupValues
	}{
		{3, 2, 5, 7, 3, 3, 1, 1, true, 1 << 19},
		{3, 2, 7, 5, 2, 4, 2, 1, true, 1},
		{3, 3, 6, 6, 2, 3, 2, 0, false, 2 * 3 * 9 * 4}, // 2 samples a group, then 1
		{2, 2, 4, 3, 3, 1, 1, 0, true, 1 << 19},
		{2, 1, 5, 5, 2, 5, 1, 2, true, 1 << 19},
	} {
		dcConvGroupValues = tc.group
		c := &dcConv{Name: "conv", In: tc.cin, Out: tc.cout, K: tc.k, Stride: tc.stride, Pad: tc.pad,
			W: tensor.New(tensor.WithShape(tc.cout, tc.cin, tc.k, tc.k), tensor.Of(tensor.Float64))}
		if tc.bias {
			c.B = tensor.New(tensor.WithShape(tc.cout), tensor.Of(tensor.Float64))
		}
		xt := tensor.New(tensor.WithShape(tc.n, tc.cin, tc.h, tc.w), tensor.Of(tensor.Float64))
		params := []*tensor.Dense{xt, c.W}
		if c.B != nil {
			params = append(params, c.B)
		}
		for _, p := range params {
			for i := range p.Data().([]float64) {
				p.Data().([]float64)[i] = rng.NormFloat64()
			}
		}
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(xt.Shape().Clone()...), G.WithValue(xt), G.WithName("x"))
		w, b := c.nodes(g)
		y, err := c.apply(x, w, b, true, true)
		if err != nil {
			t.Fatal(err)
		}
		want, ho, wo := dcRefConv(xt.Data().([]float64), tc.n, tc.h, tc.w, c)
		if !y.Shape().Eq(tensor.Shape{tc.n, tc.cout, ho, wo}) {
			t.Fatalf("%+v: output shape %v, want %v", tc, y.Shape(), []int{tc.n, tc.cout, ho, wo})
		}
		// loss = Σ y·r for a fixed random r
		rt := tensor.New(tensor.WithShape(y.Shape().Clone()...), tensor.Of(tensor.Float64))
		r := rt.Data().([]float64)
		for i := range r {
			r[i] = rng.NormFloat64()
		}
		rn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(rt.Shape().Clone()...), G.WithValue(rt), G.WithName("r"))
		prod, err := G.HadamardProd(y, rn)
		if err != nil {
			t.Fatal(err)
		}
		cost, err := G.Sum(prod)
		if err != nil {
			t.Fatal(err)
		}
		var yv, lv G.Value
		G.Read(y, &yv)
		G.Read(cost, &lv)
		wrt := G.Nodes{x, w}
		if b != nil {
			wrt = append(wrt, b)
		}
		if _, err := G.Grad(cost, wrt...); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
		run := func() float64 {
			if err := runGrad(vm, wrt); err != nil {
				t.Fatal(err)
			}
			v, _ := scalar(lv)
			return v
		}
		run()
		for i, v := range yv.Data().([]float64) {
			if !dcCloseTo(v, want[i], 1e-12) {
				t.Fatalf("%+v: y[%d] = %g, loops give %g", tc, i, v, want[i])
			}
		}
		grads, err := gradsOf(wrt)
		if err != nil {
			t.Fatal(err)
		}
		for pi, p := range params {
			an := append([]float64(nil), grads[pi].Data().([]float64)...)
			data := p.Data().([]float64)
			for j := range data {
				orig := data[j]
				data[j] = orig + 1e-6
				lp := run()
				data[j] = orig - 1e-6
				lm := run()
				data[j] = orig
				if num := (lp - lm) / 2e-6; math.Abs(num-an[j]) > 1e-6+1e-6*math.Abs(num) {
					t.Fatalf("%+v: gradient of input %d [%d]: analytic %g, numeric %g", tc, pi, j, an[j], num)
				}
			}
		}
		vm.Close()
	}
}
