package models

import (
	"math/rand/v2"

	"github.com/genstudio/genstudio/models/nn"
)

// The small interfaces below are what some models can do beyond Model;
// callers ask for a capability, never for a concrete model type.

// Encoder is a model that maps images to its latent code and back: a VAE.
type Encoder interface {
	// Reconstruct encodes images (uint8 pixels, Shape().Size() an image)
	// to their posterior means and decodes them to images in [0, 1].
	Reconstruct(batch []uint8) ([]float32, error)
}

// Diffuser is a model that samples by a chain of denoising steps (a
// diffusion model), with a choice of sampler.
type Diffuser interface {
	// DefaultSampleOptions is the sampler the model's config chooses.
	DefaultSampleOptions() SampleOptions
	// SampleWith runs the sampler from the noise z and returns x_0 in
	// model scale [-1, 1]; progress, when set, sees x_t (model scale) at
	// about every eighth step, and an error it returns stops the sampler.
	SampleWith(z []float32, opts SampleOptions, rng *rand.Rand, progress Progress) ([]float32, error)
}

// Progress watches a sampler's chain: t counts down from T to 0, xt is a
// copy of the batch at t. Returning an error stops the chain with it.
type Progress func(t int, xt []float32) error

// Tempered is a model whose prior samples take a temperature: z is scaled
// by it before decoding (both VAEs; a diffusion model's temperature is a
// SampleOptions setting).
type Tempered interface {
	// Temperature is the scale samples use now.
	Temperature() float64
	// SetTemperature checks t and makes samples use it.
	SetTemperature(t float64) error
}

// LabelledTrainer is a model that can learn from class labels (a
// conditional DDPM, for classifier-free guidance).
type LabelledTrainer interface {
	// Classes is the number of classes it is conditional on (0: none, and
	// then labels are ignored).
	Classes() int
	// TrainStepLabels is TrainStep with one label per image (−1: none).
	TrainStepLabels(batch []uint8, labels []int, rng *rand.Rand) ([]float64, error)
}

var (
	_ LabelledTrainer = (*DDPM)(nil)
	_ Tempered        = (*VAE)(nil)
	_ Tempered        = (*ConvVAE)(nil)
	_ Truncater       = (*GAN)(nil)
	_ Truncater       = (*DCGAN)(nil)
	_ Encoder         = (*VAE)(nil)
	_ Encoder         = (*ConvVAE)(nil)
	_ Diffuser        = (*DDPM)(nil)
)

// DefaultSampleOptions implements Diffuser.
func (d *DDPM) DefaultSampleOptions() SampleOptions {
	return SampleOptions{Sampler: d.cfg.Sampler, Steps: d.cfg.SampleSteps, Eta: d.cfg.Eta, Temperature: d.cfg.Temperature, Guidance: d.cfg.Guidance}
}

// SampleImages draws the images of the noise z from m with pixel values in
// [0, 1]: a Diffuser with opts (nil: its default sampler), any other model
// with Sample, which takes no options (opts must be nil).
func SampleImages(m Model, z []float32, opts *SampleOptions, progress Progress) ([]float32, error) {
	d, ok := m.(Diffuser)
	if !ok {
		if opts != nil {
			return nil, errNoSampler(m)
		}
		return m.Sample(z)
	}
	o := d.DefaultSampleOptions()
	if opts != nil {
		o = *opts
	}
	x, err := d.SampleWith(z, o, nil, progress)
	if err != nil {
		return nil, err
	}
	for i, v := range x {
		x[i] = (v + 1) / 2
	}
	return x, nil
}

func errNoSampler(m Model) error { return noSamplerError{m.Family()} }

type noSamplerError struct{ family string }

func (e noSamplerError) Error() string {
	return "sampler settings apply to diffusion models; this is a " + e.family + " model"
}

// Weights is the learnt part of m's state (what an EMA averages and a
// weights-only export writes), in state order.
func Weights(m Model) []NamedTensor { return nn.Weights(m.State()) }

// Buffers is the state m keeps but does not learn (batch-norm running
// statistics), in state order.
func Buffers(m Model) []NamedTensor { return nn.Buffers(m.State()) }

// OptimizerState is m's optimizer state (Adam's moments), in state order.
func OptimizerState(m Model) []NamedTensor { return nn.OptimizerState(m.State()) }
