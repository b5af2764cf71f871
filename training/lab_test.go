package training_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/training/metrics"
)

// TestMixtures: the data sets' samples lie on their modes (all of them
// captured, all high quality by the protocol).
func TestMixtures(t *testing.T) {
	for _, m := range []training.Mixture2D{training.Ring8, training.Grid25} {
		pts := m.Sample(training.LabSamples, rand.New(rand.NewPCG(1, 2)))
		st, err := metrics.ModeCoverage(pts, m.Centres, m.Sigma)
		if err != nil {
			t.Fatal(err)
		}
		if st.Modes != len(m.Centres)/2 || st.HighQuality < 0.98 { // 1 − e^(−9/2) = 0.989 of a 2-D Gaussian lies within 3σ
			t.Errorf("%s: real samples cover %d modes, %.3f high quality", m.Name, st.Modes, st.HighQuality)
		}
	}
	if c := training.Ring8.Centres; math.Abs(float64(c[2])-math.Cos(math.Pi/4)) > 1e-6 || len(training.Grid25.Centres) != 50 {
		t.Error("mixture centres")
	}
}

// TestRunLab: a short lab run is deterministic, gives the protocol's
// figures and calls the live view; techniques reach its config.
func TestRunLab(t *testing.T) {
	cfg, err := training.LabConfig("hinge+pacgan2", 3)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Loss != "hinge" || cfg.Pack != 2 || cfg.Seed != 3 {
		t.Fatalf("config %+v", cfg)
	}
	watched := 0
	a, err := training.RunLab(t.Context(), training.Ring8, cfg, 60, 20, func(int, *models.GAN2D) { watched++ })
	if err != nil {
		t.Fatal(err)
	}
	b, err := training.RunLab(t.Context(), training.Ring8, cfg, 60, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if watched != 3 || len(a.Samples) != 2*training.LabSamples || a.Modes != b.Modes || a.HighQuality != b.HighQuality || a.Samples[7] != b.Samples[7] {
		t.Errorf("watched %d times; runs %+v and %+v", watched, a.Modes, b.Modes)
	}
	if _, err := training.LabConfig("unrolled", 1); err == nil {
		t.Error("an unknown technique was accepted")
	}
}

// gaussProposer proposes points uniform in [−1, 1]² and scores them with
// the log density ratio of N(0, s²I) to that: rejection sampling must
// turn its proposals into that Gaussian.
type gaussProposer struct{ s float64 }

func (g gaussProposer) Sample(n int, rng *rand.Rand) ([]float32, error) {
	out := make([]float32, 2*n)
	for i := range out {
		out[i] = float32(2*rng.Float64() - 1)
	}
	return out, nil
}

func (g gaussProposer) Critic(p []float32) ([]float32, error) {
	out := make([]float32, len(p)/2)
	for i := range out {
		x, y := float64(p[2*i]), float64(p[2*i+1])
		out[i] = float32(-(x*x + y*y) / (2 * g.s * g.s))
	}
	return out, nil
}

func TestRejectionSample(t *testing.T) {
	const n, s = 4000, 0.2
	pts, err := training.RejectionSample(gaussProposer{s}, n, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2*n {
		t.Fatalf("%d values, want %d", len(pts), 2*n)
	}
	var mean, sq float64
	for _, v := range pts {
		mean += float64(v)
		sq += float64(v) * float64(v)
	}
	mean /= 2 * n
	std := math.Sqrt(sq/(2*n) - mean*mean)
	// N(0, 0.2²) cut at ±1 (5σ) has std 0.2; 8,000 values give ±0.002
	if math.Abs(mean) > 0.015 || math.Abs(std-s) > 0.01 {
		t.Errorf("kept points: mean %.4f, std %.4f, want 0 and %.2f", mean, std, s)
	}
}
