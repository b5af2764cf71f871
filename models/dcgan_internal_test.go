package models

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
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

// dcRandomizeBN gives the batch norms non-trivial γ, β and running statistics.
func dcRandomizeBN(m *DCGAN, rng *rand.Rand) {
	for _, bn := range []*nn.BatchNorm2d{m.gen.BN0, m.gen.BN1} {
		for i := 0; i < bn.C; i++ {
			nn.SetAt(bn.Gamma, i, 0.5+rng.Float64())
			nn.SetAt(bn.Beta, i, rng.Float64()-0.5)
			nn.SetAt(bn.RunMean, i, rng.Float64()-0.5)
			nn.SetAt(bn.RunVar, i, 0.5+rng.Float64())
		}
	}
}

// TestDCGANRunningStatsUpdate checks that a training step folds the batch
// statistics of its one generator forward into the running ones once
// (num_batches_tracked counts it), and that sampling reads them.
func TestDCGANRunningStatsUpdate(t *testing.T) {
	m := newTinyDCGAN(t)
	rng := rand.New(rand.NewPCG(3, 4))
	dcRandomizeBN(m, rng)
	before := append([]float64(nil), dcF64(m.gen.BN1.RunVar)...)
	z := NoiseFromSeed(2, m.cfg.Latent, 1)
	s0, err := m.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]uint8, m.cfg.Batch*m.shape.Size())
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	for step := 1; step <= 2; step++ {
		if _, err := m.TrainStep(batch, rng); err != nil {
			t.Fatal(err)
		}
		for _, bn := range []*nn.BatchNorm2d{m.gen.BN0, m.gen.BN1} {
			if n := bn.Batches(); n != int64(step) {
				t.Fatalf("%s: num_batches_tracked %d after %d steps", bn.Name, n, step)
			}
		}
	}
	after := dcF64(m.gen.BN1.RunVar)
	if after[0] == before[0] {
		t.Fatalf("running variance unchanged by training: %g", after[0])
	}
	s1, err := m.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	if s1[0] == s0[0] && s1[len(s1)-1] == s0[len(s0)-1] {
		t.Fatal("samples did not change after training")
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
	// One run of the G step with D frozen makes the fake batch (in the D
	// step's input) without changing D.
	m.frozenD = true
	FillNormal(m.z, rng)
	if err := copyInto(m.gstep.z, m.z); err != nil {
		t.Fatal(err)
	}
	scalePixels(m.dstep.real, batch)
	if err := runGrad(m.gstep.vm, m.gstep.weights); err != nil {
		t.Fatal(err)
	}
	t.Run("D loss wrt D", func(t *testing.T) {
		n := checkFiniteDifferences(t, m.dstep.vm, m.dstep.weights, &m.dstep.loss, m.disc.Params(), 0)
		t.Logf("%d values checked", n)
	})
	t.Run("G loss wrt G", func(t *testing.T) {
		n := checkFiniteDifferences(t, m.gstep.vm, m.gstep.weights, &m.fgrad.loss, nn.Weights(m.gen.Params()), 0)
		t.Logf("%d values checked", n)
	})
}
