package models

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGANLosses checks each loss and its gradient with respect to the fake
// logits against the formulas, on hand-picked logits.
func TestGANLosses(t *testing.T) {
	real := []float64{2, -0.5, 0.3}
	fake := []float64{-1.5, 0.8, 1.2}
	sp := func(x float64) float64 { return math.Log1p(math.Exp(x)) }
	mean := func(xs []float64, f func(float64) float64) float64 {
		var s float64
		for _, x := range xs {
			s += f(x)
		}
		return s / float64(len(xs))
	}
	relu := func(x float64) float64 { return math.Max(0, x) }
	cases := []struct {
		kind string
		d, g float64
		dg   func(x float64) float64 // ∂L_G/∂ each fake logit
	}{
		{GANLossNS, mean(real, func(x float64) float64 { return sp(-x) }) + mean(fake, sp),
			mean(fake, func(x float64) float64 { return sp(-x) }),
			func(x float64) float64 { return -1 / (1 + math.Exp(x)) / 3 }},
		{GANLossHinge, mean(real, func(x float64) float64 { return relu(1 - x) }) + mean(fake, func(x float64) float64 { return relu(1 + x) }),
			-mean(fake, func(x float64) float64 { return x }),
			func(float64) float64 { return -1.0 / 3 }},
		{GANLossLS, 0.5*mean(real, func(x float64) float64 { return (x - 1) * (x - 1) }) + 0.5*mean(fake, func(x float64) float64 { return x * x }),
			0.5 * mean(fake, func(x float64) float64 { return (x - 1) * (x - 1) }),
			func(x float64) float64 { return (x - 1) / 3 }},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			eg := G.NewGraph()
			lr := G.NewMatrix(eg, tensor.Float64, G.WithShape(3, 1), G.WithValue(tensor.New(tensor.WithShape(3, 1), tensor.WithBacking(append([]float64(nil), real...)))), G.WithName("lr"))
			lf := G.NewMatrix(eg, tensor.Float64, G.WithShape(3, 1), G.WithValue(tensor.New(tensor.WithShape(3, 1), tensor.WithBacking(append([]float64(nil), fake...)))), G.WithName("lf"))
			dl, err := ganDLoss(c.kind, lr, lf)
			if err != nil {
				t.Fatal(err)
			}
			gl, err := ganGLoss(c.kind, lf)
			if err != nil {
				t.Fatal(err)
			}
			var dv, gv G.Value
			G.Read(dl, &dv)
			G.Read(gl, &gv)
			if _, err := G.Grad(gl, lf); err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(eg)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			d, _ := scalar(dv)
			g, _ := scalar(gv)
			if math.Abs(d-c.d) > 1e-12 || math.Abs(g-c.g) > 1e-12 {
				t.Errorf("L_D %v L_G %v, want %v %v", d, g, c.d, c.g)
			}
			grad, err := lf.Grad()
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range grad.Data().([]float64) {
				if want := c.dg(fake[i]); math.Abs(v-want) > 1e-12 {
					t.Errorf("∂L_G/∂lf[%d] = %v, want %v", i, v, want)
				}
			}
		})
	}
	if _, err := ganGLoss("wasserstein", nil); err == nil {
		t.Error("an unknown loss was accepted")
	}
}

// TestGANLossesTrain: both GANs train a few steps with each loss, a
// separate discriminator learning rate and PacGAN packing of 2, with finite
// losses, and a packed discriminator takes two images an input.
func TestGANLossesTrain(t *testing.T) {
	for _, fam := range []string{"mlp", "conv"} {
		for _, loss := range []string{GANLossHinge, GANLossLS} {
			cfg := `{"loss":"` + loss + `","d_lr":4e-4,"lr":1e-4,"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32],"pack":2}`
			if fam == "conv" {
				cfg = `{"arch":"conv","loss":"` + loss + `","d_lr":4e-4,"lr":1e-4,"batch":8,"latent":8,"g_features":8,"d_features":8,"pack":2}`
			}
			m, err := New("gan", []byte(cfg))
			if err != nil {
				t.Fatalf("%s %s: %v", fam, loss, err)
			}
			batch := make([]uint8, 8*m.Shape().Size())
			for i := range batch {
				batch[i] = uint8(i * 7)
			}
			for s := 0; s < 3; s++ {
				l, err := m.TrainStep(batch, rand.New(rand.NewPCG(uint64(s), 1)))
				if err != nil || math.IsNaN(l[0]) || math.IsNaN(l[1]) {
					t.Fatalf("%s %s step %d: %v %v", fam, loss, s, l, err)
				}
			}
			seen := 0
			for _, p := range m.State() {
				switch p.Name {
				case "discriminator.0.weight": // stored transposed: in × out
					seen++
					if p.T.Shape()[0] != 2*784 {
						t.Errorf("packed MLP D's first layer is %v", p.T.Shape())
					}
				case "discriminator.conv1.weight":
					seen++
					if p.T.Shape()[1] != 2 {
						t.Errorf("packed DCGAN D's first conv is %v", p.T.Shape())
					}
				}
			}
			if seen != 1 {
				t.Errorf("%s: the first layer of D was not found in the state", fam)
			}
			m.Close()
		}
	}
	if _, err := New("gan", []byte(`{"batch":10,"pack":4}`)); err == nil {
		t.Error("a batch of 10 in packs of 4 was accepted")
	}
}
