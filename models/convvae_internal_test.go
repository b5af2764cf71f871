package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
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
	for _, l := range []*nn.Conv2d{v.encConv1, v.encConv2, v.decConv1, v.decConv2} {
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
