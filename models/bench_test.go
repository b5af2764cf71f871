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
