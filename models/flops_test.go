package models_test

import (
	"math"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// TestStepFLOPsMatchReferences checks the default models' step FLOPs
// against the "gflop_per_step" the PyTorch references in shared/bench
// print for the same architectures.
func TestStepFLOPsMatchReferences(t *testing.T) {
	for _, c := range []struct {
		family string
		gflop  float64
	}{{"gan", 2.2499}, {"vae", 0.2501}, {"ddpm", 0.4341}} {
		t.Run(c.family, func(t *testing.T) {
			m, err := models.New(c.family, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			fc, ok := m.(models.FLOPCounter)
			if !ok {
				t.Fatalf("%T counts no FLOPs", m)
			}
			if got := fc.StepFLOPs() / 1e9; math.Abs(got-c.gflop) > 5e-5 {
				t.Errorf("%s: %.5f GFLOP/step, the reference says %.4f", c.family, got, c.gflop)
			}
		})
	}
}
