package models_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/genstudio/genstudio/models"
)

func TestLRScheduleFactor(t *testing.T) {
	for _, c := range []struct {
		s           models.LRSchedule
		step, total int
		want        float64
	}{
		{models.LRSchedule{}, 7, 10, 1},
		{models.LRSchedule{Schedule: models.LRConstant}, 0, 0, 1},
		{models.LRSchedule{Schedule: models.LRConstant, Warmup: 4}, 0, 10, 0.25},
		{models.LRSchedule{Schedule: models.LRWarmup, Warmup: 4}, 2, 10, 0.75},
		{models.LRSchedule{Schedule: models.LRWarmup, Warmup: 4}, 4, 10, 1},
		// no warm-up length: 5 % of 100 steps
		{models.LRSchedule{Schedule: models.LRWarmup}, 0, 100, 0.2},
		{models.LRSchedule{Schedule: models.LRWarmup}, 4, 100, 1},
		{models.LRSchedule{Schedule: models.LRLinear}, 0, 10, 1},
		{models.LRSchedule{Schedule: models.LRLinear}, 5, 10, 0.5},
		{models.LRSchedule{Schedule: models.LRLinear}, 9, 10, 0.1},
		{models.LRSchedule{Schedule: models.LRLinear, Warmup: 2}, 1, 10, 1},
		{models.LRSchedule{Schedule: models.LRLinear, Warmup: 2}, 6, 10, 0.5},
		{models.LRSchedule{Schedule: models.LRLinear}, 5, 0, 1}, // a run until stopped does not decay
		{models.LRSchedule{Schedule: models.LRCosine}, 0, 10, 1},
		{models.LRSchedule{Schedule: models.LRCosine}, 5, 10, 0.5},
		{models.LRSchedule{Schedule: models.LRCosine}, 8, 10, 0.5 * (1 + math.Cos(0.8*math.Pi))},
		{models.LRSchedule{Schedule: models.LRCosine}, 12, 10, 0},
	} {
		if got := c.s.Factor(c.step, c.total); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%v step %d of %d: %g, want %g", c.s, c.step, c.total, got, c.want)
		}
	}
	if err := (models.LRSchedule{Schedule: "step"}).Validate(); err == nil {
		t.Error("an unknown schedule passed")
	}
	if err := (models.LRSchedule{Warmup: -1}).Validate(); err == nil {
		t.Error("a negative warm-up passed")
	}
}

// TestLRScheduleScalesEveryModel checks that the schedule reaches every
// variant's optimizers: at factor 0 a step leaves the weights as they are,
// at factor 1 it moves them.
func TestLRScheduleScalesEveryModel(t *testing.T) {
	small := map[string]map[string]any{
		"gan/mlp": {"g_hidden": []int{8}, "d_hidden": []int{8}}, "gan/conv": {"g_features": 4, "d_features": 4},
		"vae/mlp": {"hidden": 8}, "vae/conv": {"features": 4},
		"ddpm/mlp": {"hidden": 8}, "ddpm/conv": {"features": 4},
	}
	for _, s := range models.Specs() {
		key := s.Family + "/" + s.Arch
		t.Run(key, func(t *testing.T) {
			var cfg map[string]any
			def, _ := json.Marshal(s.Default())
			if err := json.Unmarshal(def, &cfg); err != nil {
				t.Fatal(err)
			}
			for k, v := range small[key] {
				if _, ok := cfg[k]; ok {
					cfg[k] = v
				}
			}
			cfg["batch"], cfg["lr_schedule"] = 4, models.LRLinear
			raw, _ := json.Marshal(cfg)
			m, err := s.Build(raw)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if _, ok := m.(models.Scheduled); !ok {
				t.Fatal("not Scheduled")
			}
			batch := make([]uint8, 4*m.Shape().Size())
			for i := range batch {
				batch[i] = uint8(i * 37)
			}
			step := func(factor0 bool) bool {
				before := weightsCopy(m)
				if factor0 {
					models.ApplyLRSchedule(m, 10, 10) // past the end: 0
				} else {
					models.ApplyLRSchedule(m, 0, 10)
				}
				if _, err := m.TrainStep(batch, rand.New(rand.NewPCG(1, 2))); err != nil {
					t.Fatal(err)
				}
				return !slices.Equal(before, weightsCopy(m))
			}
			if step(true) {
				t.Error("a step at factor 0 moved the weights")
			}
			if !step(false) {
				t.Error("a step at factor 1 left the weights")
			}
		})
	}
}

func weightsCopy(m models.Model) []float32 {
	var out []float32
	for _, w := range models.Weights(m) {
		if d, ok := w.T.Data().([]float32); ok {
			out = append(out, d...)
		}
	}
	return out
}
