package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGuidanceCombines: ε_s = ε_u + s·(ε_c − ε_u), the label changes ε_c,
// and for both predictors.
func TestGuidanceCombines(t *testing.T) {
	for _, arch := range []string{"mlp", DDPMArchConv} {
		t.Run(arch, func(t *testing.T) {
			c := tinyDDPMConfig()
			if arch != "mlp" {
				c = tinyUNetConfig()
			}
			c.Classes = 3
			d, err := NewDDPM(c)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := d.shape.Size()
			x := NoiseFromSeed(4, n, 2)
			labels := []int{0, 1, 2, 1}
			pred := func(labels []int, s float64) []float32 {
				out := make([]float32, len(x))
				if err := d.predictEps(out, x, 17, labels, s); err != nil {
					t.Fatal(err)
				}
				return out
			}
			cond, uncond, guided := pred(labels, 1), pred(nil, 0), pred(labels, 2.5)
			if slices.Equal(cond, uncond) {
				t.Fatal("the label does not reach the predictor")
			}
			for i := range guided {
				want := uncond[i] + 2.5*(cond[i]-uncond[i])
				if math.Abs(float64(guided[i]-want)) > 1e-5 {
					t.Fatalf("value %d: %g, want ε_u + s(ε_c − ε_u) = %g", i, guided[i], want)
				}
			}
			other := pred([]int{1, 1, 2, 1}, 1)
			if slices.Equal(other[:n], cond[:n]) || !slices.Equal(other[n:], cond[n:]) {
				t.Error("changing the first label should change the first prediction only")
			}
		})
	}
}

// TestLabelsTrain: a step with labels (none dropped) moves the weights
// otherwise than one without; dropping every label is the unlabelled step.
func TestLabelsTrain(t *testing.T) {
	run := func(dropout float64, labels []int) []float32 {
		c := tinyDDPMConfig()
		c.Classes, c.LabelDropout = 3, dropout
		d, err := NewDDPM(c)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		batch := make([]uint8, c.Batch*d.shape.Size())
		for i := range batch {
			batch[i] = uint8(i * 41)
		}
		if _, err := d.TrainStepLabels(batch, labels, rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatal(err)
		}
		var w []float32
		for _, p := range d.Params() {
			w = append(w, p.T.Data().([]float32)...)
		}
		return w
	}
	none := run(0, nil)
	labelled := run(0, []int{0, 2, 1})
	dropped := run(1, []int{0, 2, 1})
	if slices.Equal(none, labelled) {
		t.Error("labels did not change the step")
	}
	if !slices.Equal(none, dropped) {
		t.Error("with every label dropped the step is not the unlabelled one")
	}
}
