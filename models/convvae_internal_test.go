package models

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestCVSmoke(t *testing.T) {
	v, err := NewConvVAE(DefaultConvVAEConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]uint8, 64*784)
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		l, err := v.TrainStep(batch, rng)
		t.Log(l, err, time.Since(t0))
	}
}
