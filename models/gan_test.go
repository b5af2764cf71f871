package models_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/genstudio/genstudio/models"
)

func randomBatch(rng *rand.Rand, n int) []uint8 {
	b := make([]uint8, n)
	for i := range b {
		b[i] = uint8(rng.IntN(256))
	}
	return b
}

func trainFew(t *testing.T, cfg models.GANConfig, steps int) *models.GAN {
	t.Helper()
	g, err := models.NewGAN(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := rand.New(rand.NewPCG(1, 2))
	for s := 0; s < steps; s++ {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(s)))
		if _, err := g.TrainStep(randomBatch(data, cfg.Batch*cfg.Width*cfg.Height), rng); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func smallConfig() models.GANConfig {
	c := models.DefaultGANConfig()
	c.GHidden, c.DHidden = []int{32, 64}, []int{64, 32}
	c.Batch = 16
	return c
}

func TestGANSameSeedSameWeights(t *testing.T) {
	a := trainFew(t, smallConfig(), 5)
	defer a.Close()
	b := trainFew(t, smallConfig(), 5)
	defer b.Close()
	other := smallConfig()
	other.Seed = 99
	c := trainFew(t, other, 5)
	defer c.Close()
	sa, sb, sc := a.State(), b.State(), c.State()
	differs := false
	for i := range sa {
		x, y, z := sa[i].T.Data().([]float32), sb[i].T.Data().([]float32), sc[i].T.Data().([]float32)
		if !slices.Equal(x, y) {
			t.Fatalf("%s differs between two runs with the same seed", sa[i].Name)
		}
		if !slices.Equal(x, z) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("a different seed gave identical weights")
	}
}

func TestGANSampleShapeAndRange(t *testing.T) {
	g := trainFew(t, smallConfig(), 2)
	defer g.Close()
	for _, n := range []int{1, 64, 70} {
		out, err := g.Sample(models.NoiseFromSeed(n, g.NoiseDim(), 3))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != n*784 {
			t.Fatalf("n=%d: got %d values", n, len(out))
		}
		for _, v := range out {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("sample value %v outside [0, 1]", v)
			}
		}
	}
	a, _ := g.Sample(models.NoiseFromSeed(4, g.NoiseDim(), 3))
	b, _ := g.Sample(models.NoiseFromSeed(4, g.NoiseDim(), 3))
	if !slices.Equal(a, b) {
		t.Fatal("same noise gave different samples")
	}
	if _, err := g.Sample(make([]float32, 7)); err == nil {
		t.Fatal("noise of the wrong length was accepted")
	}
}

func TestGANConfigValidation(t *testing.T) {
	for name, mut := range map[string]func(*models.GANConfig){
		"zero latent": func(c *models.GANConfig) { c.Latent = 0 },
		"lr":          func(c *models.GANConfig) { c.LR = 0 },
		"beta":        func(c *models.GANConfig) { c.Beta1 = 1 },
		"batch":       func(c *models.GANConfig) { c.Batch = 0 },
		"no hidden":   func(c *models.GANConfig) { c.GHidden = nil },
		"dropout":     func(c *models.GANConfig) { c.DropoutP = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := models.DefaultGANConfig()
			mut(&c)
			if _, err := models.NewGAN(c); err == nil {
				t.Fatal("bad config accepted")
			}
		})
	}
}
