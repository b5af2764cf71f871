package models_test

import (
	"math/rand/v2"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// BenchmarkDCGANStep measures one DCGAN training step at the defaults
// (batch 64, 28×28×1, 64 feature maps).
func BenchmarkDCGANStep(b *testing.B) {
	g, err := models.NewDCGAN(models.DefaultDCGANConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	data := rand.New(rand.NewPCG(1, 2))
	batch := randomBatch(data, 64*784)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3; i++ {
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
