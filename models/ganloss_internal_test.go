package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestSpectralNormGANs: with spectral_norm on, both GANs train with finite
// losses; every D layer's state is PyTorch's weight_orig, weight_u and
// weight_v (no plain weight); and a fresh model given that state (a
// checkpoint's) takes the identical next step, which it would not with
// u and v started afresh.
func TestSpectralNormGANs(t *testing.T) {
	for _, fam := range []string{"mlp", "conv"} {
		cfg := `{"spectral_norm":true,"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32]}`
		dLayers := []string{"discriminator.0", "discriminator.3"}
		if fam == "conv" {
			cfg = `{"arch":"conv","spectral_norm":true,"batch":8,"latent":8,"g_features":8,"d_features":8}`
			dLayers = []string{"discriminator.conv1", "discriminator.conv2", "discriminator.fc"}
		}
		build := func() Model { return newGANForTest(t, cfg) }
		a := build()
		batch := trainForTest(t, a, 3)
		names := map[string]bool{}
		for _, p := range a.State() {
			names[p.Name] = true
		}
		for _, l := range dLayers {
			for _, suffix := range []string{".weight_orig", ".weight_u", ".weight_v"} {
				if !names[l+suffix] {
					t.Errorf("%s: state lacks %s", fam, l+suffix)
				}
			}
			if names[l+".weight"] {
				t.Errorf("%s: state has %s beside weight_orig", fam, l+".weight")
			}
		}
		for _, restore := range []bool{true, false} {
			b := build()
			sa, sb := a.State(), b.State()
			for i := range sa {
				if restore || !strings.HasSuffix(sa[i].Name, "_u") && !strings.HasSuffix(sa[i].Name, "_v") {
					copyTensor(sb[i].T, sa[i].T)
				}
			}
			b.SetOptimizerStep(a.OptimizerStep())
			snapshot := func(m Model) []float32 {
				var out []float32
				for _, p := range m.State() {
					if d, ok := p.T.Data().([]float32); ok {
						out = append(out, d...)
					}
				}
				return out
			}
			before, step := snapshot(a), a.OptimizerStep()
			la, errA := a.TrainStep(batch, rand.New(rand.NewPCG(9, 9)))
			lb, errB := b.TrainStep(batch, rand.New(rand.NewPCG(9, 9)))
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if same := slices.Equal(la, lb) && slices.Equal(snapshot(a), snapshot(b)); same != restore {
				t.Errorf("%s: restored u, v %v: next step identical = %v", fam, restore, same)
			}
			// put a back for the next round
			sa = a.State()
			off := 0
			for i := range sa {
				d, ok := sa[i].T.Data().([]float32)
				if !ok {
					continue
				}
				copy(d, before[off:off+len(d)])
				off += len(d)
			}
			a.SetOptimizerStep(step)
		}
	}
}

// copyTensor copies src's values into dst of the same shape and type.
func copyTensor(dst, src *tensor.Dense) {
	switch d := dst.Data().(type) {
	case []float32:
		copy(d, src.Data().([]float32))
	case []int64:
		copy(d, src.Data().([]int64))
	}
}

// TestModeSeeking checks MSGAN's term λ/(mean|f₁ − f₂| / mean|z₁ − z₂| + ε)
// against its formula and its gradient with respect to the fakes against
// central differences; both GANs train with it.
func TestModeSeeking(t *testing.T) {
	const b, n, lat, lambda = 4, 3, 2, 0.8
	fake := []float64{0.1, -0.4, 0.9, 0.3, 0.2, -0.7, -0.5, 0.6, 0.05, 0.8, -0.2, 0.4}
	z := []float32{0.5, -1, 2, 0.3, -0.5, 1, 0.1, 0.2}
	build := func(vals []float64) (*G.ExprGraph, *G.Node, *G.Node, *modeSeeking) {
		eg := G.NewGraph()
		f := G.NewMatrix(eg, tensor.Float64, G.WithShape(b, n), G.WithValue(tensor.New(tensor.WithShape(b, n), tensor.WithBacking(append([]float64(nil), vals...)))), G.WithName("fake"))
		ms := &modeSeeking{weight: lambda}
		cost, err := ms.add(vaeConst(tensor.Float64, 0), f)
		if err != nil {
			t.Fatal(err)
		}
		if err := ms.setDZ(z); err != nil {
			t.Fatal(err)
		}
		return eg, f, cost, ms
	}
	want := func(vals []float64) float64 {
		var df, dz float64
		for i := 0; i < b/2*n; i++ {
			df += math.Abs(vals[i] - vals[b/2*n+i])
		}
		for i := 0; i < b/2*lat; i++ {
			dz += math.Abs(float64(z[i]) - float64(z[b/2*lat+i]))
		}
		return lambda / (df/float64(b/2*n)/(dz/float64(b/2*lat)) + msEps)
	}
	eg, f, cost, _ := build(fake)
	if _, err := G.Grad(cost, f); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(eg, G.BindDualValues(f))
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if got := cost.Value().Data().(float64); math.Abs(got-want(fake)) > 1e-12 {
		t.Fatalf("term %.15g, want %.15g", got, want(fake))
	}
	gv, _ := f.Grad()
	grad := gv.Data().([]float64)
	vm.Close()
	for i := range fake {
		p, m := append([]float64(nil), fake...), append([]float64(nil), fake...)
		p[i] += 1e-6
		m[i] -= 1e-6
		num := (want(p) - want(m)) / 2e-6
		if math.Abs(num-grad[i]) > 1e-6*math.Max(1, math.Abs(num)) {
			t.Errorf("d/dfake[%d]: backward %.9g, central difference %.9g", i, grad[i], num)
		}
	}
	for _, cfg := range []string{
		`{"ms_weight":1,"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32]}`,
		`{"arch":"conv","ms_weight":1,"batch":8,"latent":8,"g_features":8,"d_features":8}`,
		// and the minibatch standard deviation, packed or not
		`{"minibatch_std":true,"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32],"pack":2}`,
		`{"arch":"conv","minibatch_std":true,"batch":8,"latent":8,"g_features":8,"d_features":8}`,
		// and DiffAugment
		`{"diff_augment":true,"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32],"pack":2}`,
		`{"arch":"conv","diff_augment":true,"batch":8,"latent":8,"g_features":8,"d_features":8}`,
	} {
		m, err := New("gan", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		batch := make([]uint8, 8*m.Shape().Size())
		for s := 0; s < 3; s++ {
			if l, err := m.TrainStep(batch, rand.New(rand.NewPCG(uint64(s), 1))); err != nil || math.IsNaN(l[0]) || math.IsNaN(l[1]) {
				t.Fatalf("%s step %d: %v %v", cfg, s, l, err)
			}
		}
		m.Close()
	}
}

// TestDiffAugmentWired: with DiffAugment on, both GANs' first D loss
// differs from the same model's without it (D sees augmented images) and
// is the same for two fresh models (the draws come from the seed).
func TestDiffAugmentWired(t *testing.T) {
	for _, base := range []string{
		`"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32]`,
		`"arch":"conv","batch":8,"latent":8,"g_features":8,"d_features":8`,
	} {
		first := func(aug bool) float64 {
			m, err := New("gan", []byte(fmt.Sprintf(`{%s,"diff_augment":%v}`, base, aug)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			batch := make([]uint8, 8*m.Shape().Size())
			for i := range batch {
				batch[i] = uint8(i * 13)
			}
			l, err := m.TrainStep(batch, rand.New(rand.NewPCG(5, 5)))
			if err != nil {
				t.Fatal(err)
			}
			return l[0]
		}
		plain, a, b := first(false), first(true), first(true)
		if a == plain || a != b {
			t.Errorf("%s: D loss plain %v, augmented %v and %v", base, plain, a, b)
		}
	}
}

// newGANForTest builds a GAN from cfg, closed when the test ends.
func newGANForTest(t *testing.T, cfg string) Model {
	t.Helper()
	m, err := New("gan", []byte(cfg))
	if err != nil {
		t.Fatalf("%s: %v", cfg, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// trainForTest takes steps steps on a fixed batch, each with finite
// losses, and returns the batch.
func trainForTest(t *testing.T, m Model, steps int) []uint8 {
	t.Helper()
	batch := make([]uint8, 8*m.Shape().Size())
	for i := range batch {
		batch[i] = uint8(i * 7)
	}
	for s := 0; s < steps; s++ {
		if l, err := m.TrainStep(batch, rand.New(rand.NewPCG(uint64(s), 1))); err != nil || math.IsNaN(l[0]) || math.IsNaN(l[1]) {
			t.Fatalf("step %d: %v %v", s, l, err)
		}
	}
	return batch
}
