package models_test

import (
	"math"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/models/nn"
)

// TestGeneratorMatchesPlainGo checks Gorgonia's generator forward against
// a plain float64 loop over the same weights. make test runs it with the
// default OpenBLAS build and with -tags noopenblas (pure-Go gonum), so both
// BLAS paths are held to the same numbers.
func TestGeneratorMatchesPlainGo(t *testing.T) {
	t.Logf("BLAS: %s", nn.BLASName)
	m, err := models.NewGAN(models.DefaultGANConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 5
	z := models.NoiseFromSeed(n, m.NoiseDim(), 11)
	got, err := m.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := 0; i < n; i++ {
		h := make([]float64, m.NoiseDim())
		for j := range h {
			h[j] = float64(z[i*len(h)+j])
		}
		for li, l := range m.Gen.Layers {
			w, b := l.W.Data().([]float32), l.B.Data().([]float32) // in×out
			out := make([]float64, l.Out)
			for o := range out {
				s := float64(b[o])
				for k, x := range h {
					s += x * float64(w[k*l.Out+o])
				}
				if li < len(m.Gen.Layers)-1 {
					s = math.Max(s, 0)
				} else {
					s = (math.Tanh(s) + 1) / 2
				}
				out[o] = s
			}
			h = out
		}
		for j, v := range h {
			worst = math.Max(worst, math.Abs(v-float64(got[i*784+j])))
		}
	}
	t.Logf("largest difference from float64: %.3g", worst)
	if worst > 1e-5 {
		t.Fatalf("generator output differs from the plain-Go float64 result by %g", worst)
	}
}
