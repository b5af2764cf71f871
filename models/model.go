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
// learning rate and betas, and the batch size.
func validateOptim(lr, beta1, beta2 float64, batch int) error {
	switch {
	case !(lr > 0 && lr < 1):
		return fmt.Errorf("learning rate must be in (0, 1), got %g", lr)
	case !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1):
		return fmt.Errorf("Adam betas must be in [0, 1), got %g and %g", beta1, beta2)
	case batch < 1 || batch > 4096:
		return fmt.Errorf("batch size must be 1..4096, got %d", batch)
	}
	return nil
}

// validateVAETerms checks the settings both VAEs have: the KL weight, its
// warm-up and the sampling temperature.
func validateVAETerms(beta float64, warmup int, temperature float64) error {
	switch {
	case !(beta >= 0 && beta <= 1000):
		return fmt.Errorf("KL weight (beta) must be in [0, 1000], got %g", beta)
	case warmup < 0:
		return fmt.Errorf("KL warm-up steps must be 0 or more, got %d", warmup)
	case !(temperature > 0 && temperature <= 100):
		return fmt.Errorf("sampling temperature must be in (0, 100], got %g", temperature)
	}
	return nil
}
