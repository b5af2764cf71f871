package training_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// divergingGAN is a real GAN whose losses turn NaN from step `at` on.
type divergingGAN struct {
	models.Model
	at, n int
}

func (d *divergingGAN) TrainStep(b []uint8, rng *rand.Rand) ([]float64, error) {
	d.n++
	if d.n >= d.at {
		return []float64{math.NaN(), 1}, &models.NonFiniteLossError{Name: "D loss", Value: math.NaN()}
	}
	return d.Model.TrainStep(b, rng)
}

func TestNaNLossStopsRunAndKeepsCheckpoints(t *testing.T) {
	dir := t.TempDir()
	m := &divergingGAN{Model: smallGAN(t, 2), at: 6}
	w, err := training.NewWorker(m, loadMNIST(t).Subset(512), training.Options{Steps: 50, Seed: 2, CheckpointDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	_, _, _, done := drain(w)
	var nf *models.NonFiniteLossError
	if !errors.As(done.Err, &nf) {
		t.Fatalf("done error %v, want a NonFiniteLossError", done.Err)
	}
	if done.Step != 5 {
		t.Fatalf("stopped at step %d, want 5", done.Step)
	}
	cks, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if len(cks) != 0 {
		t.Fatalf("a diverged run wrote checkpoints %v", cks)
	}
}
