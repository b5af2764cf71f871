package models

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func tinyVAEConfig() VAEConfig {
	c := DefaultVAEConfig()
	c.Width, c.Height, c.Channels = 2, 2, 1
	c.Hidden, c.Latent, c.Batch = 5, 3, 3
	c.Beta = 1.3
	return c
}

// tinyVAEInputs draws a batch of pixels over the full 0..255 range and a
// fixed eps.
func tinyVAEInputs(v *VAE, seed uint64) ([]uint8, []float32) {
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

// TestVAEGradientsMatchFiniteDifferences checks Gorgonia's gradients of the
// full VAE loss (BCE from logits + w*KL, through the reparameterisation)
// with respect to every weight against central differences, in float64.
func TestVAEGradientsMatchFiniteDifferences(t *testing.T) {
	t.Run("plain", func(t *testing.T) { checkVAEGradients(t, tinyVAEConfig()) })
	// with free bits flooring one of the three dimensions
	cfg := tinyVAEConfig()
	cfg.FreeBits = 0.05
	t.Run("free bits", func(t *testing.T) { checkVAEGradients(t, cfg) })
}

func checkVAEGradients(t *testing.T, cfg VAEConfig) {
	v, err := newVAE(cfg, tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	batch, eps := tinyVAEInputs(v, 7)
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
	checked := 0
	for pi, p := range v.Params() {
		data := p.T.Data().([]float64)
		for j := range data {
			orig := data[j]
			data[j] = orig + h
			lp := lossAt()
			data[j] = orig - h
			lm := lossAt()
			data[j] = orig
			num := (lp - lm) / (2 * h)
			an := analytic[pi][j]
			if diff := math.Abs(num - an); diff > 1e-6+1e-4*math.Abs(num) {
				t.Errorf("%s[%d]: analytic %.9g, numeric %.9g", p.Name, j, an, num)
			}
			checked++
		}
	}
	if want := 4*5 + 5 + 2*(5*3+3) + 3*5 + 5 + 5*4 + 4; checked != want {
		t.Fatalf("checked %d parameters, want %d", checked, want)
	}
	// Gradients must not accumulate across runs.
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

// denseForward computes the reference's loss terms directly, in float64,
// from the layer tensors (stored in×out).
func denseForward(v *VAE, batch []uint8, eps []float32) (recon, kl float64) {
	recon, dims := denseTerms(v, batch, eps)
	for _, k := range dims {
		kl += k
	}
	return recon, kl
}

// denseTerms is denseForward with the KL of each latent dimension summed
// over the batch.
func denseTerms(v *VAE, batch []uint8, eps []float32) (recon float64, klDims []float64) {
	klDims = make([]float64, v.cfg.Latent)
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
	n, L := v.shape.Size(), v.cfg.Latent
	for r := 0; r < v.cfg.Batch; r++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(batch[r*n+i]) / 255
		}
		h := relu(lin(v.FC1, x))
		mu, lv := lin(v.FC21, h), lin(v.FC22, h)
		z := make([]float64, L)
		for i := range z {
			z[i] = mu[i] + float64(eps[r*L+i])*math.Exp(0.5*lv[i])
			klDims[i] += -0.5 * (1 + lv[i] - mu[i]*mu[i] - math.Exp(lv[i]))
		}
		logits := lin(v.FC4, relu(lin(v.FC3, z)))
		for i, l := range logits {
			p := 1 / (1 + math.Exp(-l))
			recon -= x[i]*math.Log(p) + (1-x[i])*math.Log(1-p)
		}
	}
	return recon, klDims
}

// TestVAEFreeBits: with free bits λ the loss is recon + w·Σ_j max(λ·B,
// KL_j) (KL_j summed over the batch of B), the reported KL is still the
// plain KL, and the gradients match central differences; a floor above
// every dimension's KL makes the KL term a constant.
func TestVAEFreeBits(t *testing.T) {
	for _, fb := range []float64{0.05, 0.3, 5} {
		cfg := tinyVAEConfig()
		cfg.FreeBits = fb
		v, err := newVAE(cfg, tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		batch, eps := tinyVAEInputs(v, 11)
		const w = 0.7
		loss, recon, kl, err := v.evaluate(batch, eps, w)
		if err != nil {
			t.Fatal(err)
		}
		wantRecon, dims := denseTerms(v, batch, eps)
		var wantKL, floored float64
		below := 0
		for _, k := range dims {
			wantKL += k
			floored += math.Max(fb*float64(cfg.Batch), k)
			if k < fb*float64(cfg.Batch) {
				below++
			}
		}
		close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
		if !close(recon, wantRecon) || !close(kl, wantKL) || !close(loss, wantRecon+w*floored) {
			t.Errorf("free bits %g: loss %.12g recon %.12g KL %.12g; want %.12g, %.12g, %.12g", fb, loss, recon, kl, wantRecon+w*floored, wantRecon, wantKL)
		}
		t.Logf("free bits %g: %d of %d dimensions below the floor", fb, below, len(dims))
		if fb == 5 && below != len(dims) {
			t.Fatalf("a floor of 5 nats is not above every dimension")
		}
		v.Close()
	}
}

// TestVAELossMatchesReference checks the graph's loss terms against a
// direct computation of the reference's definition.
func TestVAELossMatchesReference(t *testing.T) {
	v, err := newVAE(tinyVAEConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	batch, eps := tinyVAEInputs(v, 11)
	const w = 0.7
	loss, recon, kl, err := v.evaluate(batch, eps, w)
	if err != nil {
		t.Fatal(err)
	}
	wantRecon, wantKL := denseForward(v, batch, eps)
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	if !close(recon, wantRecon) || !close(kl, wantKL) || !close(loss, wantRecon+w*wantKL) {
		t.Fatalf("graph gives loss %.12g recon %.12g KL %.12g; direct recon %.12g KL %.12g (loss %.12g)",
			loss, recon, kl, wantRecon, wantKL, wantRecon+w*wantKL)
	}
}

// TestVAEKLZeroAtPrior checks that KL is exactly zero when the posterior
// is N(0, 1) (fc21 and fc22 all zero: mu = 0, logvar = 0) and positive
// otherwise, in the float32 model.
func TestVAEKLZeroAtPrior(t *testing.T) {
	cfg := DefaultVAEConfig()
	cfg.Hidden, cfg.Batch = 32, 8
	v, err := NewVAE(cfg)
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
	for _, l := range []*Linear{v.FC21, v.FC22} {
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

// TestBCELogitsOp checks the fused BCE op's float32 path against the
// float64 one and against log(sigmoid) form, including logits far beyond
// where sigmoid saturates in float32.
func TestBCELogitsOp(t *testing.T) {
	logits := []float64{-300, -100, -30, -15, -3, -0.5, -1e-3, 0, 1e-3, 0.5, 3, 15, 30, 100, 300}
	targets := []float64{0, 1, 0.5, 0.2, 1, 0, 0.7, 0.3, 1, 0, 0.5, 1, 0, 0.9, 1}
	n := len(logits)
	l32 := tensor.New(tensor.WithShape(1, n), tensor.WithBacking(make([]float32, n)))
	x32 := tensor.New(tensor.WithShape(1, n), tensor.WithBacking(make([]float32, n)))
	for i := range logits {
		l32.Data().([]float32)[i] = float32(logits[i])
		x32.Data().([]float32)[i] = float32(targets[i])
	}
	var want float64
	for i, l := range logits {
		// softplus(l) - x*l, with softplus(l) = -log(sigmoid(-l))
		sp := math.Max(l, 0) + math.Log1p(math.Exp(-math.Abs(l)))
		want += sp - float64(float32(targets[i]))*float64(float32(l))
	}
	got32, err := bceLogitsSumOp{}.Do(l32, x32)
	if err != nil {
		t.Fatal(err)
	}
	g32, _ := scalar(got32)
	got64, err := bceLogitsSumOp{}.Do(
		tensor.New(tensor.WithShape(1, n), tensor.WithBacking(append([]float64(nil), logits...))),
		tensor.New(tensor.WithShape(1, n), tensor.WithBacking(append([]float64(nil), targets...))))
	if err != nil {
		t.Fatal(err)
	}
	g64, _ := scalar(got64)
	if math.Abs(g32-want) > 1e-6*want {
		t.Errorf("float32 BCE sum %.9g, want %.9g", g32, want)
	}
	if w64 := func() (s float64) {
		for i, l := range logits {
			s += math.Max(l, 0) + math.Log1p(math.Exp(-math.Abs(l))) - targets[i]*l
		}
		return s
	}(); math.Abs(g64-w64) > 1e-12*w64 {
		t.Errorf("float64 BCE sum %.15g, want %.15g", g64, w64)
	}
	for e := 0.0; e <= 1; e += 1.0 / 4096 {
		if d := math.Abs(log1pUnit(e) - math.Log1p(e)); d > 2e-9*math.Log1p(e) {
			t.Fatalf("log1pUnit(%g) = %.17g, want %.17g", e, log1pUnit(e), math.Log1p(e))
		}
	}
	grad, err := bceLogitsGradOp{}.Do(l32, x32, G.NewF32(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range grad.(tensor.Tensor).Data().([]float32) {
		want := 2 * (1/(1+math.Exp(-logits[i])) - float64(float32(targets[i])))
		if math.Abs(float64(g)-want) > 1e-6 {
			t.Errorf("gradient at logit %g, target %g: %g, want %g", logits[i], targets[i], g, want)
		}
	}
}
