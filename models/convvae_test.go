package models_test

import (
	"math/rand/v2"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// BenchmarkConvVAEStep measures one training step of the default conv VAE
// (28×28×1, 32/64 feature maps, latent 20, batch 64).
func BenchmarkConvVAEStep(b *testing.B) {
	v, err := models.NewConvVAE(models.DefaultConvVAEConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	data := rand.New(rand.NewPCG(1, 2))
	batch := randomBatch(data, 64*784)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5; i++ {
		if _, err := v.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}
