package models

import (
	"errors"
	"math"
	"testing"

	"gorgonia.org/tensor"
)

// TestAdamClipsLikeTorch: with Clip set, a step's gradients are scaled by
// max_norm/(norm+1e-6) when their joint norm exceeds it, as
// torch.nn.utils.clip_grad_norm_ does, and left alone below it.
func TestAdamClipsLikeTorch(t *testing.T) {
	for _, tc := range []struct {
		name string
		clip float64
		g    []float32 // norm 5 over the two tensors
		want float64   // the scale the gradient gets
	}{
		{"off", 0, []float32{3, 4}, 1},
		{"above", 1, []float32{3, 4}, 1 / (5 + 1e-6)},
		{"below", 10, []float32{3, 4}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := []*tensor.Dense{tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0})), tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0}))}
			a := NewAdam(p, 0.1, 0.9, 0.999)
			a.Clip = tc.clip
			grads := []tensor.Tensor{tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{tc.g[0]})), tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{tc.g[1]}))}
			if err := a.Update(grads); err != nil {
				t.Fatal(err)
			}
			// The first moment after one step is (1-β1)·g·scale.
			m, _ := a.Moments(0)
			got := float64(m.Data().([]float32)[0]) / (0.1 * 3)
			if math.Abs(got-tc.want) > 1e-5 {
				t.Fatalf("gradient scaled by %g, want %g", got, tc.want)
			}
		})
	}
}

// TestAdamRefusesNonFiniteGradients: a NaN or Inf gradient leaves every
// weight and moment untouched and is reported.
func TestAdamRefusesNonFiniteGradients(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		p := []*tensor.Dense{tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))}
		a := NewAdam(p, 0.1, 0.9, 0.999)
		err := a.Update([]tensor.Tensor{tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{0.5, bad}))})
		var nf *NonFiniteGradientError
		if !errors.As(err, &nf) {
			t.Fatalf("gradient %v: error %v, want NonFiniteGradientError", bad, err)
		}
		if d := p[0].Data().([]float32); d[0] != 1 || d[1] != 2 || a.Step != 0 {
			t.Fatalf("gradient %v changed the weights to %v (step %d)", bad, d, a.Step)
		}
	}
}
