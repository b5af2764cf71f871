package models_test

import (
	"math/rand/v2"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// BenchmarkGANStep measures one seed-GAN training step (batch 64, the
// reference's shapes): compare with ../shared/bench/torch_gan_mnist.py.
func BenchmarkGANStep(b *testing.B) {
	g, err := models.NewGAN(models.DefaultGANConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	data := rand.New(rand.NewPCG(1, 2))
	batch := randomBatch(data, 64*784)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5; i++ {
		if _, err := g.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}

// BenchmarkConvSteps measures one training step of each conv model at its
// default configuration (batch 64, 28×28): compare with the references in
// ../shared/bench (genstudio bench runs both side by side).
func BenchmarkConvSteps(b *testing.B) {
	for _, fa := range [][2]string{{"gan", "conv"}, {"vae", "conv"}, {"ddpm", "unet"}} {
		b.Run(fa[0]+"/"+fa[1], func(b *testing.B) {
			cfg, err := models.DefaultConfig(fa[0], fa[1])
			if err != nil {
				b.Fatal(err)
			}
			m, err := models.New(fa[0], cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			batch := randomBatch(rand.New(rand.NewPCG(1, 2)), 64*m.Shape().Size())
			rng := rand.New(rand.NewPCG(3, 4))
			for i := 0; i < 2; i++ {
				if _, err := m.TrainStep(batch, rng); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.TrainStep(batch, rng); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
		})
	}
}
