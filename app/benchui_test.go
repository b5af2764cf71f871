package app

import (
	"math"
	"testing"
)

// TestBenchUINumbers runs the UI benchmark for a few steps in Fyne's test
// window and checks only that its numbers are sane: no timing thresholds.
func TestBenchUINumbers(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two small runs")
	}
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	res, err := benchUI(s, BenchUIOptions{Families: []string{"vae"}, Steps: 5, Warmup: 2, Reps: 2}, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("got %d results, want 1", len(res))
	}
	r := res[0]
	if r.Family != "vae" || len(r.HeadlessMs) != 2 || len(r.WindowMs) != 2 || len(r.PairOverheadPct) != 2 {
		t.Fatalf("result shape: %+v", r)
	}
	for _, v := range append(append([]float64{r.HeadlessMedian, r.WindowMedian}, r.HeadlessMs...), r.WindowMs...) {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Fatalf("ms/step %v is not positive and finite: %+v", v, r)
		}
	}
	if math.IsNaN(r.OverheadPct) || math.IsInf(r.OverheadPct, 0) {
		t.Fatalf("overhead %v: %+v", r.OverheadPct, r)
	}
	// Every run updates the window; on a loaded machine the pacer may merge a
	// run's few progress events into its last update, so progress events
	// are only required of one run.
	events := 0
	for i := range r.WindowMs {
		events += r.ProgressEvents[i]
		if r.Updates[i] <= 0 || r.ChartPoints[i] <= 0 {
			t.Errorf("window run %d applied no progress: %+v", i, r)
		}
	}
	if events == 0 {
		t.Errorf("no run applied a progress event: %+v", r)
	}
}

func TestBenchVariant(t *testing.T) {
	for _, c := range []struct {
		in, family, arch string
		ok               bool
	}{
		{"gan", "gan", "mlp", true},
		{"vae/conv", "vae", "conv", true},
		{" ddpm ", "ddpm", "mlp", true},
		{"ddpm/conv", "ddpm", "conv", true},
		{"ddpm/unet", "ddpm", "conv", true},
		{"gan/rnn", "", "", false},
		{"flow", "", "", false},
	} {
		t.Run(c.in, func(t *testing.T) {
			v, err := benchVariant(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if c.ok && (v.Family != c.family || v.Arch != c.arch) {
				t.Fatalf("got %s", v.Name())
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing should be NaN")
	}
}
