package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// cvTinyConfig is a conv VAE small enough for finite differences: 3×8×12
// images (not square, so that height and width cannot be swapped
// unnoticed), 2 and 4 feature maps, latent 3, batch 2.
func cvTinyConfig() ConvVAEConfig {
	c := DefaultConvVAEConfig()
	c.Width, c.Height, c.Channels = 12, 8, 3
	c.Features, c.Latent, c.Batch = 2, 3, 2
	c.Beta = 1.3
	return c
}

// cvTinyInputs draws a batch of pixels over the full 0..255 range and a
// fixed eps.
func cvTinyInputs(v *ConvVAE, seed uint64) ([]uint8, []float32) {
	rng := rand.New(rand.NewPCG(seed, 9))
	batch := make([]uint8, v.cfg.Batch*v.shape.Size())
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	batch[0], batch[1] = 0, 255
	eps := make([]float32, v.cfg.Batch*v.cfg.Latent)
	FillNormal(eps, rng)
	return batch, eps
}

// TestConvVAEGradientsMatchFiniteDifferences checks Gorgonia's gradients
// of the full conv VAE loss (BCE from logits + w*KL, through both strided
// convolutions, the linear layers, the reparameterisation, both upsamplings
// and both decoder convolutions) with respect to every weight against
// central differences, in float64; then that a second identical run gives
// the same gradients (they must not accumulate).
func TestConvVAEGradientsMatchFiniteDifferences(t *testing.T) {
	v, err := newConvVAE(cvTinyConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	batch, eps := cvTinyInputs(v, 7)
	const w = 1.3
	lossAt := func() float64 {
		l, _, _, err := v.evaluate(batch, eps, w)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lossAt()
	grads, err := gradsOf(v.train.weights)
	if err != nil {
		t.Fatal(err)
	}
	analytic := make([][]float64, len(grads))
	for i, g := range grads {
		analytic[i] = append([]float64(nil), g.Data().([]float64)...)
	}
	const h = 1e-6
	checked, bad := 0, 0
	for pi, p := range v.Params() {
		data := p.T.Data().([]float64)
		nonzero := false
		for j := range data {
			orig := data[j]
			data[j] = orig + h
			lp := lossAt()
			data[j] = orig - h
			lm := lossAt()
			data[j] = orig
			num := (lp - lm) / (2 * h)
			an := analytic[pi][j]
			if diff := math.Abs(num - an); diff > 1e-5+1e-4*math.Abs(num) {
				t.Errorf("%s[%d]: analytic %.9g, numeric %.9g", p.Name, j, an, num)
				if bad++; bad > 20 {
					t.FailNow()
				}
			}
			nonzero = nonzero || an != 0
			checked++
		}
		if !nonzero {
			t.Errorf("%s has an all-zero gradient", p.Name)
		}
	}
	// conv1 3→2 4×4, conv2 2→4 4×4, flat 4*2*3 = 24, latent 3,
	// decoder conv1 4→2 3×3, conv2 2→3 3×3.
	want := (2*3*16 + 2) + (4*2*16 + 4) + 2*(24*3+3) + (3*24 + 24) + (2*4*9 + 2) + (3*2*9 + 3)
	if checked != want {
		t.Fatalf("checked %d parameters, want %d", checked, want)
	}
	lossAt()
	again, err := gradsOf(v.train.weights)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range again {
		for j, x := range g.Data().([]float64) {
			if math.Abs(x-analytic[i][j]) > 1e-12 {
				t.Fatalf("gradient %d[%d] changed between identical runs: %g vs %g", i, j, analytic[i][j], x)
			}
		}
	}
}

// cvRefConv is a direct NCHW cross-correlation, as PyTorch's Conv2d
// computes it, of one image x (in×h×w) with zero padding.
func cvRefConv(l *cvConv, x []float64, h, w int) (y []float64, oh, ow int) {
	W, B := l.W.Data().([]float64), l.B.Data().([]float64)
	k, s, p := l.K, l.Stride, l.Pad
	oh, ow = (h+2*p-k)/s+1, (w+2*p-k)/s+1
	y = make([]float64, l.Out*oh*ow)
	for o := 0; o < l.Out; o++ {
		for r := 0; r < oh; r++ {
			for c := 0; c < ow; c++ {
				sum := B[o]
				for i := 0; i < l.In; i++ {
					for kr := 0; kr < k; kr++ {
						for kc := 0; kc < k; kc++ {
							yr, xc := r*s-p+kr, c*s-p+kc
							if yr < 0 || yr >= h || xc < 0 || xc >= w {
								continue
							}
							sum += W[((o*l.In+i)*k+kr)*k+kc] * x[(i*h+yr)*w+xc]
						}
					}
				}
				y[(o*oh+r)*ow+c] = sum
			}
		}
	}
	return y, oh, ow
}

// cvRefUpsample is nearest-neighbour ×2 upsampling of a c×h×w image.
func cvRefUpsample(x []float64, c, h, w int) []float64 {
	y := make([]float64, c*4*h*w)
	for i := 0; i < c; i++ {
		for r := 0; r < 2*h; r++ {
			for q := 0; q < 2*w; q++ {
				y[(i*2*h+r)*2*w+q] = x[(i*h+r/2)*w+q/2]
			}
		}
	}
	return y
}

// cvRefForward computes the loss terms of the PyTorch definition directly,
// in float64, from the layer tensors.
func cvRefForward(v *ConvVAE, batch []uint8, eps []float32) (recon, kl float64) {
	lin := func(l *Linear, x []float64) []float64 {
		w, b := l.W.Data().([]float64), l.B.Data().([]float64)
		y := make([]float64, l.Out)
		for o := range y {
			s := b[o]
			for i, xi := range x {
				s += xi * w[i*l.Out+o]
			}
			y[o] = s
		}
		return y
	}
	relu := func(x []float64) []float64 {
		for i := range x {
			x[i] = max(x[i], 0)
		}
		return x
	}
	cfg := v.cfg
	n, L, F := v.shape.Size(), cfg.Latent, cfg.Features
	for r := 0; r < cfg.Batch; r++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(batch[r*n+i]) / 255
		}
		h1, oh, ow := cvRefConv(v.encConv1, x, cfg.Height, cfg.Width)
		h2, oh, ow := cvRefConv(v.encConv2, relu(h1), oh, ow)
		flat := relu(h2) // torch.flatten(h, 1): channel-major
		mu, lv := lin(v.fcMu, flat), lin(v.fcLogvar, flat)
		z := make([]float64, L)
		for i := range z {
			z[i] = mu[i] + float64(eps[r*L+i])*math.Exp(0.5*lv[i])
			kl += -0.5 * (1 + lv[i] - mu[i]*mu[i] - math.Exp(lv[i]))
		}
		d := relu(lin(v.decFC, z)) // view(2F, H/4, W/4)
		d = cvRefUpsample(d, 2*F, oh, ow)
		d, oh, ow = cvRefConv(v.decConv1, d, 2*oh, 2*ow)
		d = cvRefUpsample(relu(d), F, oh, ow)
		logits, _, _ := cvRefConv(v.decConv2, d, 2*oh, 2*ow)
		for i, l := range logits {
			p := 1 / (1 + math.Exp(-l))
			recon -= x[i]*math.Log(p) + (1-x[i])*math.Log(1-p)
		}
	}
	return recon, kl
}

// TestConvVAELossMatchesReference checks the graph's loss terms against a
// direct computation of the PyTorch definition (NCHW layout, cross-
// correlation, zero padding, channel-major flatten and view).
func TestConvVAELossMatchesReference(t *testing.T) {
	v, err := newConvVAE(cvTinyConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	batch, eps := cvTinyInputs(v, 11)
	const w = 0.7
	loss, recon, kl, err := v.evaluate(batch, eps, w)
	if err != nil {
		t.Fatal(err)
	}
	wantRecon, wantKL := cvRefForward(v, batch, eps)
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	if !close(recon, wantRecon) || !close(kl, wantKL) || !close(loss, wantRecon+w*wantKL) {
		t.Fatalf("graph gives loss %.12g recon %.12g KL %.12g; direct recon %.12g KL %.12g (loss %.12g)",
			loss, recon, kl, wantRecon, wantKL, wantRecon+w*wantKL)
	}
}

// TestConvVAEKLZeroAtPrior checks that KL is exactly zero when the
// posterior is N(0, 1) (fc_mu and fc_logvar all zero) and positive
// otherwise, in the float32 model.
func TestConvVAEKLZeroAtPrior(t *testing.T) {
	cfg := DefaultConvVAEConfig()
	cfg.Features, cfg.Batch = 4, 4
	v, err := NewConvVAE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]uint8, cfg.Batch*v.shape.Size())
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	eps := make([]float32, cfg.Batch*cfg.Latent)
	FillNormal(eps, rng)
	_, _, kl, err := v.evaluate(batch, eps, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !(kl > 0) {
		t.Fatalf("KL of a random posterior is %g, want > 0", kl)
	}
	for _, l := range []*Linear{v.fcMu, v.fcLogvar} {
		l.W.Zero()
		l.B.Zero()
	}
	_, _, kl, err = v.evaluate(batch, eps, 1)
	if err != nil {
		t.Fatal(err)
	}
	if kl != 0 {
		t.Fatalf("KL at the prior is %g, want exactly 0", kl)
	}
	losses, err := v.TrainStep(batch, rng)
	if err != nil {
		t.Fatal(err)
	}
	if losses[2] != 0 || losses[0] != losses[1] {
		t.Fatalf("TrainStep at the prior reports %v, want KL 0 and loss = recon", losses)
	}
}

// TestConvVAEInit checks PyTorch's default Conv2d initialisation: weights
// and biases uniform in ±1/sqrt(in*k*k), filling that range.
func TestConvVAEInit(t *testing.T) {
	v, err := NewConvVAE(DefaultConvVAEConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, l := range v.convs() {
		bound := 1 / math.Sqrt(float64(l.In*l.K*l.K))
		for _, x := range []*tensor.Dense{l.W, l.B} {
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, f := range x.Data().([]float32) {
				lo, hi = math.Min(lo, float64(f)), math.Max(hi, float64(f))
			}
			if lo < -bound || hi > bound {
				t.Errorf("%s: values in [%g, %g], bound %g", l.Name, lo, hi, bound)
			}
			if x.Shape().TotalSize() >= 32 && (lo > -0.8*bound || hi < 0.8*bound) {
				t.Errorf("%s: values in [%g, %g] do not fill ±%g", l.Name, lo, hi, bound)
			}
		}
	}
}

// cvUpsampleOutputs runs up(x) and d/dx sum(up(x)*r) for an x of shape
// (2, 3, 4, 5) and returns the output and the gradient, as float64s.
func cvUpsampleOutputs(t *testing.T, dt tensor.Dtype, up func(*G.Node) (*G.Node, error)) (out, grad []float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(s ...int) *tensor.Dense {
		v := tensor.New(tensor.WithShape(s...), tensor.Of(dt))
		for i := 0; i < v.Shape().TotalSize(); i++ {
			setAt(v, i, rng.NormFloat64())
		}
		return v
	}
	g := G.NewGraph()
	x := G.NewTensor(g, dt, 4, G.WithShape(2, 3, 4, 5), G.WithValue(fill(2, 3, 4, 5)), G.WithName("x"))
	r := G.NewTensor(g, dt, 4, G.WithShape(2, 3, 8, 10), G.WithValue(fill(2, 3, 8, 10)), G.WithName("r"))
	y, err := up(x)
	if err != nil {
		t.Fatal(err)
	}
	yr, err := G.HadamardProd(y, r)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := G.Sum(yr)
	if err != nil {
		t.Fatal(err)
	}
	var yv G.Value
	G.Read(y, &yv)
	if _, err := G.Grad(cost, x); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(x))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := x.Grad()
	if err != nil {
		t.Fatal(err)
	}
	flat := func(v G.Value) []float64 {
		switch d := v.(tensor.Tensor).Data().(type) {
		case []float32:
			out := make([]float64, len(d))
			for i, x := range d {
				out[i] = float64(x)
			}
			return out
		case []float64:
			return append([]float64(nil), d...)
		}
		t.Fatalf("unexpected value %v", v)
		return nil
	}
	if s := yv.Shape(); !s.Eq(tensor.Shape{2, 3, 8, 10}) {
		t.Fatalf("upsampled shape %v", s)
	}
	return flat(yv), flat(gv)
}

// TestCVUpsampleMatchesGorgonia checks that the conv VAE's upsampling op
// gives G.Upsample2D(x, 2)'s outputs and gradients bit for bit.
func TestCVUpsampleMatchesGorgonia(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		out, grad := cvUpsampleOutputs(t, dt, cvUpsample2)
		wantOut, wantGrad := cvUpsampleOutputs(t, dt, func(x *G.Node) (*G.Node, error) { return G.Upsample2D(x, 2) })
		if !slices.Equal(out, wantOut) {
			t.Errorf("%v: upsampled values differ from G.Upsample2D's", dt)
		}
		if !slices.Equal(grad, wantGrad) {
			t.Errorf("%v: gradients differ from G.Upsample2D's", dt)
		}
	}
}
