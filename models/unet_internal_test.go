package models

import (
	"testing"

	"gorgonia.org/tensor"
)

// tinyUNetConfig is a U-Net small enough to check every weight by finite
// differences: F = 2, two channels, 8 wide and 12 high (12 → 6 → 3 and
// back), batch 3.
func tinyUNetConfig() DDPMConfig {
	c := DefaultUNetDDPMConfig()
	c.Width, c.Height, c.Channels = 8, 12, 2
	c.Features, c.TEmb, c.Batch = 2, 4, 3
	return c
}

// TestUNetGradientsMatchFiniteDifferences checks the gradient of the MSE
// with respect to every U-Net weight (convolutions with stride 1 and 2 and
// 1×1 skips, upsampling, concatenation, the time-embedding MLP and its
// per-channel biases, SiLU) against central differences in float64, and
// that a second identical run gives the same loss and gradients.
func TestUNetGradientsMatchFiniteDifferences(t *testing.T) {
	d, err := newDDPM(tinyUNetConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tinyDDPMInputs(t, d)
	// Every value of the small tensors; the first, the last and 14 random
	// ones of the others (the layer library's tests check whole conv
	// gradients), to keep the test to a few seconds.
	checked := checkFiniteDifferences(t, d.train.vm, d.train.weights, &d.train.loss, d.Params(), 16)
	if len(d.Params()) != 50 || checked != 480 {
		t.Fatalf("%d values in %d tensors checked", checked, len(d.Params()))
	}
}
