package models

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// ConvVAEConfig configures the convolutional VAE. Its JSON names are those
// of VAEConfig where the two overlap; "arch" is "conv", which is how
// New("vae", config) picks this model.
type ConvVAEConfig struct {
	Arch   string `json:"arch"`
	Latent int    `json:"latent"`
	// Features is the number of feature maps of the first convolution; the
	// second has twice as many.
	Features int     `json:"features"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	Channels int     `json:"channels"`
	LR       float64 `json:"lr"`
	Beta1    float64 `json:"beta1"`
	LRSchedule
	Beta2 float64 `json:"beta2"`
	Batch int     `json:"batch"`
	// Beta weighs the KL term of the loss (1 = the plain VAE, >1 = β-VAE).
	Beta float64 `json:"kl_beta"`
	// WarmupSteps is the KL warm-up: the KL weight rises linearly from 0 to
	// Beta over this many optimizer steps (0 = no warm-up).
	WarmupSteps int `json:"kl_warmup_steps"`
	// Temperature scales prior samples: Sample decodes z*Temperature.
	Temperature float64 `json:"temperature"`
	// EMA is the decay of the weights' average that sampling and
	// reconstruction use (0 = off).
	EMA float64 `json:"ema"`
	// FreeBits is the KL floor of each latent dimension in nats per image
	// (Kingma et al. 2016): the loss counts max(FreeBits, KL_j) for each
	// dimension j, so that dimensions below it are not pushed to the prior
	// (0 = off, the plain loss).
	FreeBits float64 `json:"free_bits"`
	Seed     uint64  `json:"seed"`
}

// DefaultConvVAEConfig is a conv VAE for MNIST: 28×28×1 images, 32 and 64
// feature maps, a 20-dimensional latent, Adam 1e-3 (0.9, 0.999), batch 64,
// KL weight 1, no warm-up.
func DefaultConvVAEConfig() ConvVAEConfig {
	return ConvVAEConfig{
		Arch: "conv", Latent: 20, Features: 32, Width: 28, Height: 28, Channels: 1,
		LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Batch: 64, LRSchedule: constantLR,
		Beta: 1, WarmupSteps: 0, Temperature: 1, Seed: 1,
	}
}

// Validate reports the first setting that cannot work. Images must be
// 28×28 or 32×32 with 1 or 3 channels.
func (c ConvVAEConfig) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if !(c.Width == c.Height && (c.Width == 28 || c.Width == 32)) || !(c.Channels == 1 || c.Channels == 3) {
		return fmt.Errorf("image shape %dx%dx%d is not supported (28x28 or 32x32, 1 or 3 channels)", c.Width, c.Height, c.Channels)
	}
	return nil
}

// validate checks everything but the image size, which the internal
// constructor relaxes to any multiple of 4 for small tests: the ranges of
// the variant's spec fields (spec.go), then what they do not cover.
func (c ConvVAEConfig) validate() error {
	if c.Arch != "" && c.Arch != "conv" {
		return fmt.Errorf("conv VAE config has arch %q, want \"conv\"", c.Arch)
	}
	if err := checkSpec("vae", "conv", c); err != nil {
		return err
	}
	switch {
	case c.Width < 4 || c.Height < 4 || c.Width%4 != 0 || c.Height%4 != 0 || c.Channels < 1 || c.Width*c.Height*c.Channels > 1<<16:
		return fmt.Errorf("image shape %dx%dx%d is not supported", c.Width, c.Height, c.Channels)
	}
	if err := validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch, c.LRSchedule); err != nil {
		return err
	}
	if err := fieldVAEEMA.Check(c.EMA); err != nil {
		return err
	}
	return validateVAETerms(c.Beta, c.WarmupSteps, c.Temperature, c.FreeBits)
}

// ConvVAE is a convolutional variational autoencoder, for S×S images with
// C channels, F feature maps and latent size L (PyTorch layout, NCHW):
//
//	encoder: h = ReLU(conv1(x))  conv 4×4 stride 2 pad 1, C → F,  S → S/2
//	         h = ReLU(conv2(h))  conv 4×4 stride 2 pad 1, F → 2F, S/2 → S/4
//	         mu = fc_mu(flatten(h)); logvar = fc_logvar(flatten(h))
//	sample:  z = mu + eps*exp(0.5*logvar), eps ~ N(0, 1)
//	decoder: h = ReLU(reshape(fc(z), 2F, S/4, S/4))
//	         h = ReLU(conv1(upsample×2(h)))  conv 3×3 pad 1, 2F → F
//	         logits = conv2(upsample×2(h))   conv 3×3 pad 1, F → C
//	         recon = sigmoid(logits)
//
// Nearest-neighbour upsampling (PyTorch's nn.Upsample(scale_factor=2);
// nn.Upsample2x) followed by a
// convolution stands in for a transposed convolution, which Gorgonia lacks.
// The loss is the MLP VAE's:
// L = BCE(recon, x) + w*KL summed over the batch, with BCE computed from
// the logits by bceLogitsSumOp, x = pixel/255, and w the KL weight (Beta,
// after the optional warm-up).
type ConvVAE struct {
	cfg   ConvVAEConfig
	dt    tensor.Dtype
	shape ImageShape

	encConv1, encConv2 *nn.Conv2d
	fcMu, fcLogvar     *nn.Linear
	decFC              *nn.Linear
	decConv1, decConv2 *nn.Conv2d

	opt   *Adam
	ema   *ema // the weights' average (nil: off)
	train *vaeTrainGraph
	dec   *vaeForwardGraph // z -> sigmoid outputs, vaeChunk images
	rec   *vaeForwardGraph // x -> mu -> sigmoid outputs, vaeChunk images

	eps []float32 // step scratch
}

// NewConvVAE builds the conv VAE in float32 with weights drawn from cfg.Seed.
func NewConvVAE(cfg ConvVAEConfig) (*ConvVAE, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("conv vae config: %w", err)
	}
	return newConvVAE(cfg, tensor.Float32)
}

// newConvVAE builds the model in dtype dt for any image size that is a
// multiple of 4 (tests use tiny images in float64).
func newConvVAE(cfg ConvVAEConfig, dt tensor.Dtype) (*ConvVAE, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("conv vae config: %w", err)
	}
	cfg.Arch = "conv"
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x3c6ef372fe94f82b))
	shape := ImageShape{cfg.Width, cfg.Height, cfg.Channels}
	f, c := cfg.Features, cfg.Channels
	flat := 2 * f * (cfg.Height / 4) * (cfg.Width / 4)
	v := &ConvVAE{cfg: cfg, dt: dt, shape: shape}
	// Same order as the PyTorch module's constructor.
	v.encConv1 = nn.NewConv2d("encoder.conv1", c, f, 4, 2, 1, true, dt, rng)
	v.encConv2 = nn.NewConv2d("encoder.conv2", f, 2*f, 4, 2, 1, true, dt, rng)
	v.fcMu = NewLinear("fc_mu", flat, cfg.Latent, dt, rng)
	v.fcLogvar = NewLinear("fc_logvar", flat, cfg.Latent, dt, rng)
	v.decFC = NewLinear("decoder.fc", cfg.Latent, flat, dt, rng)
	v.decConv1 = nn.NewConv2d("decoder.conv1", 2*f, f, 3, 1, 1, true, dt, rng)
	v.decConv2 = nn.NewConv2d("decoder.conv2", f, c, 3, 1, 1, true, dt, rng)
	v.opt = NewAdam(nn.Tensors(v.Params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	v.ema = newEMA(cfg.EMA, "ema", v.Params())
	var err error
	if v.train, err = v.buildTrain(); err != nil {
		return nil, fmt.Errorf("build conv vae training step: %w", err)
	}
	v.eps = make([]float32, cfg.Batch*cfg.Latent)
	return v, nil
}

// Params lists the weights with the PyTorch module's state_dict names, in
// its constructor's order: encoder.conv1.*, encoder.conv2.*, fc_mu.*,
// fc_logvar.*, decoder.fc.*, decoder.conv1.*, decoder.conv2.*.
func (v *ConvVAE) Params() []NamedTensor {
	return nn.ParamsOf(v.encConv1, v.encConv2, v.fcMu, v.fcLogvar, v.decFC, v.decConv1, v.decConv2)
}

// Family implements Model.
func (v *ConvVAE) Family() string { return "vae" }

// Shape implements Model.
func (v *ConvVAE) Shape() ImageShape { return v.shape }

// LossNames implements Model. All three are per image (sums over the batch
// divided by the batch size): the optimised loss recon + w*KL, the
// reconstruction BCE and the KL divergence.
func (v *ConvVAE) LossNames() []string { return []string{"loss", "recon", "KL"} }

// NoiseDim implements Model.
func (v *ConvVAE) NoiseDim() int { return v.cfg.Latent }

// Config implements Model.
func (v *ConvVAE) Config() any { return v.cfg }

// OptimizerStep implements Model.
func (v *ConvVAE) OptimizerStep() int { return v.opt.Step }

// SetOptimizerStep implements Model. The KL warm-up follows the step count.
func (v *ConvVAE) SetOptimizerStep(n int) { v.opt.Step = n }

// KLWeight is the weight w of the KL term in the next training step, as
// VAE.KLWeight defines it: Beta*min(1, OptimizerStep()/WarmupSteps), or
// Beta without warm-up.
func (v *ConvVAE) KLWeight() float64 { return klWeight(v.cfg.Beta, v.cfg.WarmupSteps, v.opt.Step) }

// State implements Model: the weights, then Adam's moments named
// "optim.<param>.exp_avg" and "optim.<param>.exp_avg_sq".
func (v *ConvVAE) State() []NamedTensor {
	ps := v.Params()
	return slices.Concat(ps, v.ema.params(), v.opt.MomentTensors("optim", ps))
}

// Close implements Model.
func (v *ConvVAE) Close() error {
	var errs []error
	if v.train != nil {
		errs = append(errs, v.train.vm.Close())
		v.train = nil
	}
	for _, f := range []**vaeForwardGraph{&v.dec, &v.rec} {
		if *f != nil {
			errs = append(errs, (*f).vm.Close())
			*f = nil
		}
	}
	return errors.Join(errs...)
}

// encode builds mu and logvar of x (batch, C, H, W).
func (v *ConvVAE) encode(g *nn.Graph, x *G.Node) (mu, logvar *G.Node, err error) {
	h, err := v.encConv1.Forward(g, x)
	if err == nil {
		h, err = nn.ReLU(h)
	}
	if err == nil {
		h, err = v.encConv2.Forward(g, h)
	}
	if err == nil {
		h, err = nn.ReLU(h)
	}
	if err != nil {
		return nil, nil, err
	}
	s := h.Shape()
	if h, err = G.Reshape(h, tensor.Shape{s[0], s[1] * s[2] * s[3]}); err != nil {
		return nil, nil, fmt.Errorf("flatten: %w", err)
	}
	if mu, err = v.fcMu.Forward(g, h); err != nil {
		return nil, nil, err
	}
	if logvar, err = v.fcLogvar.Forward(g, h); err != nil {
		return nil, nil, err
	}
	return mu, logvar, nil
}

// decodeLogits builds the decoder on z (batch, L) up to its sigmoid, as a
// (batch, C*H*W) matrix in NCHW order.
func (v *ConvVAE) decodeLogits(g *nn.Graph, z *G.Node) (*G.Node, error) {
	b := z.Shape()[0]
	h, err := v.decFC.Forward(g, z)
	if err != nil {
		return nil, err
	}
	if h, err = G.Reshape(h, tensor.Shape{b, 2 * v.cfg.Features, v.cfg.Height / 4, v.cfg.Width / 4}); err != nil {
		return nil, fmt.Errorf("unflatten: %w", err)
	}
	for _, conv := range []*nn.Conv2d{v.decConv1, v.decConv2} {
		if h, err = nn.ReLU(h); err == nil {
			h, err = nn.Upsample2x(h)
		}
		if err == nil {
			h, err = conv.Forward(g, h)
		}
		if err != nil {
			return nil, err
		}
	}
	return G.Reshape(h, tensor.Shape{b, v.shape.Size()})
}

func (v *ConvVAE) buildTrain() (*vaeTrainGraph, error) {
	b, l, dt := v.cfg.Batch, v.cfg.Latent, v.dt
	c, hgt, wid := v.cfg.Channels, v.cfg.Height, v.cfg.Width
	ng := nn.NewGraph(true)
	eg := ng.ExprGraph
	s := &vaeTrainGraph{
		x:     tensor.New(tensor.WithShape(b, c, hgt, wid), tensor.Of(dt)),
		eps:   tensor.New(tensor.WithShape(b, l), tensor.Of(dt)),
		reuse: true, freeBits: v.cfg.FreeBits,
	}
	wn := ng
	s.weights = ng.Nodes(v.Params())
	x := ng.Input("x", s.x)
	eps := G.NewMatrix(eg, dt, G.WithShape(b, l), G.WithValue(s.eps), G.WithName("eps"))
	s.klw = G.NewScalar(eg, dt, G.WithValue(vaeScalar(dt, v.KLWeight())), G.WithName("kl_weight"))

	mu, logvar, err := v.encode(wn, x)
	if err != nil {
		return nil, err
	}
	// z = mu + eps*exp(0.5*logvar)
	half := vaeConst(dt, 0.5)
	hl, err := G.Mul(logvar, half)
	if err != nil {
		return nil, err
	}
	std, err := G.Exp(hl)
	if err != nil {
		return nil, err
	}
	es, err := G.HadamardProd(eps, std)
	if err != nil {
		return nil, err
	}
	z, err := G.Add(mu, es)
	if err != nil {
		return nil, err
	}
	logits, err := v.decodeLogits(wn, z)
	if err != nil {
		return nil, err
	}
	xf, err := G.Reshape(x, tensor.Shape{b, v.shape.Size()})
	if err != nil {
		return nil, err
	}
	if err := s.compileLoss(eg, dt, logits, xf, mu, logvar, half); err != nil {
		return nil, err
	}
	return s, nil
}

// forwardGraph builds the decoder on z (fromImages false) or the mean
// reconstruction decoder(mu(x)) (fromImages true), for vaeChunk images.
func (v *ConvVAE) forwardGraph(fromImages bool) (*vaeForwardGraph, error) {
	shape := tensor.Shape{vaeChunk, v.cfg.Latent}
	if fromImages {
		shape = tensor.Shape{vaeChunk, v.cfg.Channels, v.cfg.Height, v.cfg.Width}
	}
	wn := nn.NewGraph(false)
	eg := wn.ExprGraph
	f := &vaeForwardGraph{in: tensor.New(tensor.WithShape(shape...), tensor.Of(v.dt))}
	z := wn.Input("in", f.in)
	if fromImages {
		mu, _, err := v.encode(wn, z)
		if err != nil {
			return nil, err
		}
		z = mu
	}
	logits, err := v.decodeLogits(wn, z)
	if err != nil {
		return nil, err
	}
	out, err := G.Sigmoid(logits)
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	f.vm = newReuseTape(eg)
	return f, nil
}

// Sample implements Model: it decodes z*Temperature (NoiseDim() values an
// image) to images in [0, 1], C×H×W each.
func (v *ConvVAE) Sample(z []float32) ([]float32, error) {
	var out []float32
	err := v.ema.with(func() (err error) {
		out, err = vaeSample(z, v.cfg.Latent, v.cfg.Temperature, v.shape.Size(), v.train == nil, &v.dec, v.forwardGraph, "conv vae")
		return err
	})
	return out, err
}

// Reconstruct encodes images (uint8 pixels, C×H×W an image) to their
// posterior means, without sampling noise, and decodes them to images in
// [0, 1].
func (v *ConvVAE) Reconstruct(batch []uint8) ([]float32, error) {
	var out []float32
	err := v.ema.with(func() (err error) {
		out, err = vaeReconstruct(batch, v.shape.Size(), v.train == nil, &v.rec, v.forwardGraph, "conv vae")
		return err
	})
	return out, err
}

// evaluate runs the training graph on batch with noise eps and KL weight
// w, leaving the gradients of the summed loss in the weight nodes. It
// returns the summed loss, reconstruction BCE and KL.
func (v *ConvVAE) evaluate(batch []uint8, eps []float32, w float64) (loss, recon, kl float64, err error) {
	return v.train.evaluate(v.dt, batch, eps, w)
}

// TrainStep implements Model: one Adam step on the summed loss BCE + w*KL
// of the batch (images C×H×W, uint8), with eps drawn from rng. It returns
// the loss, the reconstruction BCE and the KL, each divided by the batch
// size.
func (v *ConvVAE) TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error) {
	out, err := vaeTrainStep(v.train, v.opt, v.dt, v.eps, batch, v.cfg.Batch, v.shape.Size(), v.KLWeight(), rng)
	if err == nil {
		v.ema.update(v.opt.Step)
	}
	return out, err
}

// LRSchedule implements Scheduled.
func (v *ConvVAE) LRSchedule() LRSchedule { return v.cfg.LRSchedule }

// ScaleLR implements Scheduled.
func (v *ConvVAE) ScaleLR(f float64) { v.cfg.LRSchedule.apply(f, v.opt) }

// Temperature implements Tempered.
func (v *ConvVAE) Temperature() float64 { return v.cfg.Temperature }

// SetTemperature implements Tempered.
func (v *ConvVAE) SetTemperature(t float64) error {
	if err := fieldTemperature.Check(t); err != nil {
		return err
	}
	v.cfg.Temperature = t
	return nil
}
