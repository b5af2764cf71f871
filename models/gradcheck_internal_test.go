package models

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
)

// checkFiniteDifferences compares the gradients a float64 training graph
// leaves in its weight nodes with central differences of its loss (read
// from *loss) in params, the same tensors in the same order. Tensors of up
// to most values are checked whole, larger ones at the first, the last
// and random values, most in all (most <= 0: every value). A weight
// tensor whose checked gradients are all zero fails the check (it would
// prove nothing). Last, a second identical run must give the same loss and
// gradients. It returns how many values it checked.
func checkFiniteDifferences(t *testing.T, vm G.VM, weights G.Nodes, loss *G.Value, params []NamedTensor, most int) int {
	t.Helper()
	run := func() float64 {
		if err := runGrad(vm, weights); err != nil {
			t.Fatal(err)
		}
		v, err := scalar(*loss)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	loss0 := run()
	grads, err := gradsOf(weights)
	if err != nil {
		t.Fatal(err)
	}
	analytic := make([][]float64, len(grads))
	for i, g := range grads {
		analytic[i] = append([]float64(nil), g.Data().([]float64)...)
	}
	if len(params) != len(analytic) {
		t.Fatalf("%d parameter tensors for %d gradients", len(params), len(analytic))
	}
	const h = 1e-6
	checked := 0
	var zero []string
	pick := rand.New(rand.NewPCG(5, 6))
	for pi, p := range params {
		data := p.T.Data().([]float64)
		if len(analytic[pi]) != len(data) {
			t.Fatalf("%s: %d gradient values for %d weights", p.Name, len(analytic[pi]), len(data))
		}
		idx := make([]int, 0, len(data))
		if most <= 0 || len(data) <= most {
			for j := range data {
				idx = append(idx, j)
			}
		} else {
			idx = append(idx, 0, len(data)-1)
			for len(idx) < most {
				idx = append(idx, pick.IntN(len(data)))
			}
		}
		nonzero := false
		for _, j := range idx {
			orig := data[j]
			data[j] = orig + h
			lp := run()
			data[j] = orig - h
			lm := run()
			data[j] = orig
			num := (lp - lm) / (2 * h)
			an := analytic[pi][j]
			if math.Abs(num-an) > 1e-7+1e-5*math.Abs(num) {
				t.Errorf("%s[%d]: analytic %.9g, numeric %.9g", p.Name, j, an, num)
			}
			nonzero = nonzero || an != 0
			checked++
		}
		if !nonzero {
			zero = append(zero, p.Name)
		}
	}
	if len(zero) > 0 {
		t.Errorf("gradients identically zero for %v: the check says nothing there", zero)
	}
	// Same inputs, same loss and gradients: nothing accumulates or is
	// overwritten between runs.
	if again := run(); again != loss0 {
		t.Fatalf("loss changed between identical runs: %g vs %g", loss0, again)
	}
	again, err := gradsOf(weights)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range again {
		for j, v := range g.Data().([]float64) {
			if math.Abs(v-analytic[i][j]) > 1e-12 {
				t.Fatalf("gradient %d[%d] changed between identical runs: %g vs %g", i, j, analytic[i][j], v)
			}
		}
	}
	return checked
}
