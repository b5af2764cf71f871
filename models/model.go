// Package models holds Gen Studio's generative models, built on Gorgonia:
// networks, losses, optimizers and samplers behind one Model interface. It
// never imports the UI.
package models

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ParseSizes reads a list of layer sizes such as "256, 512, 1024" (commas,
// spaces or dashes between the numbers).
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '-' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a layer size", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Model is what every family (GAN, VAE, diffusion) implements so that one
// worker, one preview and one checkpoint format serve them all.
type Model interface {
	// Family names the model family: "gan", "vae" or "ddpm".
	Family() string
	// Shape is the image shape the model works on.
	Shape() ImageShape
	// LossNames names the values TrainStep returns, in order.
	LossNames() []string
	// NoiseDim is the length of one sample's noise vector.
	NoiseDim() int
	// TrainStep trains on one batch of images (uint8 pixels, image after
	// image, Shape().Size() each) and returns the losses. All randomness of
	// the step (noise, dropout masks) comes from rng.
	TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error)
	// Sample turns noise (NoiseDim() values per image) into images with
	// pixel values in [0, 1], Shape().Size() values per image.
	Sample(z []float32) ([]float32, error)
	// State lists every tensor a checkpoint holds: weights and optimizer state.
	State() []NamedTensor
	// OptimizerStep is the number of optimizer updates made so far.
	OptimizerStep() int
	// SetOptimizerStep restores that count from a checkpoint.
	SetOptimizerStep(int)
	// Config returns the model's configuration (a JSON-encodable struct).
	Config() any
	// Close releases the model's compiled graphs.
	Close() error
}

// ImageShape is the size of the images a model makes.
type ImageShape struct {
	Width, Height, Channels int
}

// Size is the number of values in one image.
func (s ImageShape) Size() int { return s.Width * s.Height * s.Channels }

// NoiseFromSeed draws n noise vectors of dim values from N(0, 1) using a
// stream seeded by seed, so the same seed always gives the same samples.
func NoiseFromSeed(n, dim int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	z := make([]float32, n*dim)
	FillNormal(z, rng)
	return z
}

// FillNormal fills z with N(0, 1) draws from rng.
func FillNormal(z []float32, rng *rand.Rand) {
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
}

// validateOptim checks the training settings every model has: Adam's
// learning rate and betas, and the batch size. The ranges are those of
// CommonFields (spec.go) and the schedule's; beta2 has no field and
// shares beta1's.
func validateOptim(lr, beta1, beta2 float64, batch int, sched LRSchedule) error {
	for _, c := range []struct {
		f Field
		v any
	}{{fieldLR, lr}, {fieldBeta1, beta1}, {fieldBatch, batch}} {
		if err := c.f.Check(c.v); err != nil {
			return err
		}
	}
	if !(beta2 >= 0 && beta2 < 1) {
		return fmt.Errorf("Adam beta2 must be in [0, 1), got %g", beta2)
	}
	return sched.Validate()
}

// validateVAETerms checks the settings both VAEs have: the KL weight, its
// warm-up and the sampling temperature, by their spec fields (spec.go).
// fieldVAEEMA is the weight average both VAEs sample from.
var fieldVAEEMA = Field{Key: "ema", Label: "Weight EMA", Flag: "ema", Kind: KindFloat, Lo: 0, Hi: 1, OpenHi: true,
	Help: "decay of the average of the weights that samples and reconstructions use (0 = off; 0.999 is usual)"}

func validateVAETerms(beta float64, warmup int, temperature, freeBits float64) error {
	for _, c := range []struct {
		f Field
		v any
	}{{fieldKLBeta, beta}, {fieldKLWarmup, warmup}, {fieldTemperature, temperature}, {fieldFreeBits, freeBits}} {
		if err := c.f.Check(c.v); err != nil {
			return err
		}
	}
	return nil
}
