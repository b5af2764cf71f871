package models

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gorgonia.org/tensor"
)

// GENSTUDIO_TAPE_RESET=1 makes the benchmarks run on plain tape machines
// (a Reset that drops every buffer), to compare with the reusing ones.
func init() {
	if os.Getenv("GENSTUDIO_TAPE_RESET") != "" {
		reuseTapes = false
	}
}

// TestReuseTapeIsBitExact trains each MLP model for some steps the way it
// was first written (plain tape machines, Gorgonia's composite ReLU and
// LeakyReLU) and the way it runs now (reusing machines, fused
// activations) and wants the same losses, weights, optimizer moments and
// samples, bit for bit.
func TestReuseTapeIsBitExact(t *testing.T) {
	if !reuseTapes {
		t.Skip("GENSTUDIO_TAPE_RESET is set")
	}
	if !fusedActivations {
		t.Skip("fused activations are off")
	}
	gan := DefaultGANConfig()
	gan.GHidden, gan.DHidden, gan.Batch = []int{32, 48}, []int{48, 32}, 8
	vae := DefaultVAEConfig()
	vae.Hidden, vae.Batch, vae.WarmupSteps = 40, 8, 3
	ddpm := DefaultDDPMConfig()
	ddpm.Hidden, ddpm.TEmb, ddpm.Batch, ddpm.SampleSteps = 40, 16, 8, 4
	cases := []struct {
		name  string
		batch int
		make  func() (Model, error)
	}{
		{"gan", gan.Batch, func() (Model, error) { return NewGAN(gan) }},
		{"gan-float64", gan.Batch, func() (Model, error) { return newGAN(gan, tensor.Float64) }},
		{"vae", vae.Batch, func() (Model, error) { return NewVAE(vae) }},
		{"vae-float64", vae.Batch, func() (Model, error) { return newVAE(vae, tensor.Float64) }},
		{"ddpm", ddpm.Batch, func() (Model, error) { return NewDDPM(ddpm) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := func(reuse bool) (losses []float64, state []NamedTensor, samples []float32) {
				defer func(r, f bool) { reuseTapes, fusedActivations = r, f }(reuseTapes, fusedActivations)
				reuseTapes, fusedActivations = reuse, reuse
				m, err := tc.make()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				if _, isReuse := tapeOf(m).(*reuseTape); isReuse != reuse {
					t.Fatalf("reuse %v: training machine is %T", reuse, tapeOf(m))
				}
				data := rand.New(rand.NewPCG(7, 8))
				rng := rand.New(rand.NewPCG(9, 10))
				n := m.Shape().Size()
				for step := 0; step < 12; step++ {
					batch := make([]uint8, tc.batch*n)
					for i := range batch {
						batch[i] = uint8(data.IntN(256))
					}
					l, err := m.TrainStep(batch, rng)
					if err != nil {
						t.Fatal(err)
					}
					losses = append(losses, l...)
					if step%5 == 4 { // sampling between steps must not disturb training
						if _, err := m.Sample(NoiseFromSeed(3, m.NoiseDim(), uint64(step))); err != nil {
							t.Fatal(err)
						}
						if v, ok := m.(*VAE); ok {
							r, err := v.Reconstruct(batch[:2*n])
							if err != nil {
								t.Fatal(err)
							}
							samples = append(samples, r...)
						}
					}
				}
				s, err := m.Sample(NoiseFromSeed(5, m.NoiseDim(), 42))
				if err != nil {
					t.Fatal(err)
				}
				return losses, m.State(), append(samples, s...)
			}
			l0, s0, x0 := run(false)
			l1, s1, x1 := run(true)
			for i := range l0 {
				if math.Float64bits(l0[i]) != math.Float64bits(l1[i]) {
					t.Fatalf("loss %d: %v with Reset, %v reusing buffers", i, l0[i], l1[i])
				}
			}
			for i := range s0 {
				if !sameBits(s0[i].T.Data(), s1[i].T.Data()) {
					t.Fatalf("%s differs after training", s0[i].Name)
				}
			}
			if !sameBits(x0, x1) {
				t.Fatal("samples differ")
			}
		})
	}
}

// tapeOf is a model's training machine.
func tapeOf(m Model) any {
	switch m := m.(type) {
	case *GAN:
		return m.dstep.vm
	case *VAE:
		return m.train.vm
	case *DDPM:
		return m.train.vm
	}
	return nil
}

func sameBits(a, b any) bool {
	switch a := a.(type) {
	case []float32:
		b, ok := b.([]float32)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				return false
			}
		}
		return true
	case []float64:
		b, ok := b.([]float64)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				return false
			}
		}
		return true
	}
	return false
}
