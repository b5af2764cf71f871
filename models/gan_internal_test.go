package models

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type stepGraph struct {
	vm      G.VM
	weights G.Nodes
}

func tinyGANConfig() GANConfig {
	c := DefaultGANConfig()
	c.Latent, c.GHidden, c.DHidden = 3, []int{5, 4}, []int{6, 4}
	c.Width, c.Height, c.Channels = 2, 2, 1
	c.Batch = 3
	return c
}

// TestGANGradientsMatchFiniteDifferences checks Gorgonia's symbolic
// gradients of both GAN losses against central differences, in float64, on
// a tiny network built by the same code as the real one (Linear, ReLU,
// LeakyReLU, dropout masks, Tanh, BCE-with-logits).
func TestGANGradientsMatchFiniteDifferences(t *testing.T) {
	g, err := newGAN(tinyGANConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	batch := make([]uint8, g.cfg.Batch*g.shape.Size())
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	FillNormal(g.z, rng)
	if err := g.generate(g.z, g.cfg.Batch, g.fake); err != nil {
		t.Fatal(err)
	}
	// Fixed masks: fill once, then evaluate without refilling.
	g.dstep.mReal.fill(0.3, rng)
	g.dstep.mFak.fill(0.3, rng)
	g.gstep.masks.fill(0.3, rng)
	scalePixels(g.dstep.real, batch)
	if err := copyInto(g.dstep.fake, g.fake); err != nil {
		t.Fatal(err)
	}
	if err := copyInto(g.gstep.z, g.z); err != nil {
		t.Fatal(err)
	}
	run := func(step stepGraph, loss func() float64) float64 {
		if err := runGrad(step.vm, step.weights); err != nil {
			t.Fatal(err)
		}
		return loss()
	}
	dLoss := func() float64 { v, _ := scalar(g.dstep.loss); return v }
	gLoss := func() float64 { v, _ := scalar(g.gstep.loss); return v }

	for _, tc := range []struct {
		name   string
		vm     stepGraph
		loss   func() float64
		params []NamedTensor
		nodes  func() ([]tensor.Tensor, error)
	}{
		{"D loss wrt D", stepGraph{g.dstep.vm, g.dstep.weights}, dLoss, g.Disc.Params(), func() ([]tensor.Tensor, error) { return gradsOf(g.dstep.weights) }},
		{"G loss wrt G", stepGraph{g.gstep.vm, g.gstep.weights}, gLoss, g.Gen.Params(), func() ([]tensor.Tensor, error) { return gradsOf(g.gstep.weights) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(tc.vm, tc.loss)
			grads, err := tc.nodes()
			if err != nil {
				t.Fatal(err)
			}
			// copy the analytic gradients before the FD runs overwrite them
			analytic := make([][]float64, len(grads))
			for i, gr := range grads {
				analytic[i] = append([]float64(nil), gr.Data().([]float64)...)
			}
			const h = 1e-6
			checked := 0
			for pi, p := range tc.params {
				data := p.T.Data().([]float64)
				for j := range data {
					orig := data[j]
					data[j] = orig + h
					lp := run(tc.vm, tc.loss)
					data[j] = orig - h
					lm := run(tc.vm, tc.loss)
					data[j] = orig
					num := (lp - lm) / (2 * h)
					an := analytic[pi][j]
					if diff := math.Abs(num - an); diff > 1e-6+1e-4*math.Abs(num) {
						t.Errorf("%s[%d]: analytic %.9g, numeric %.9g", p.Name, j, an, num)
					}
					checked++
				}
			}
			// Gradients must not accumulate across runs.
			run(tc.vm, tc.loss)
			again, err := tc.nodes()
			if err != nil {
				t.Fatal(err)
			}
			for i, gr := range again {
				for j, v := range gr.Data().([]float64) {
					if math.Abs(v-analytic[i][j]) > 1e-12 {
						t.Fatalf("gradient %d[%d] changed between identical runs: %g vs %g", i, j, analytic[i][j], v)
					}
				}
			}
			if checked < 50 {
				t.Fatalf("only %d parameters checked", checked)
			}
		})
	}
}
