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

// DCGANConfig configures the convolutional GAN ("arch": "conv").
//
// Generator (F = GFeatures, S = image side, s = S/4, C = channels):
//
//	z → fc (Linear, no bias) → reshape (2F, s, s) → bn0 → ReLU
//	  → upsample ×2 (nearest) → conv1 3×3 pad 1 (2F→F, no bias) → bn1 → ReLU
//	  → upsample ×2 (nearest) → conv2 3×3 pad 1 (F→C, bias) → tanh
//
// The layers that feed a batch norm have no bias, as in DCGAN (a bias
// there is cancelled by the normalisation). Discriminator (F = DFeatures):
//
//	x → conv1 4×4 s2 p1 (C→F) → LeakyReLU → conv2 4×4 s2 p1 (F→2F)
//	  → LeakyReLU → flatten → fc (Linear) → 1 logit
//
// Batch norm is PyTorch's BatchNorm2d (momentum 0.1, eps 1e-5): batch
// statistics while training, running statistics when sampling.
type DCGANConfig struct {
	Arch      string  `json:"arch"` // always "conv"
	Latent    int     `json:"latent"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Channels  int     `json:"channels"`
	GFeatures int     `json:"g_features"`
	DFeatures int     `json:"d_features"`
	LR        float64 `json:"lr"`
	Beta1     float64 `json:"beta1"`
	LRSchedule
	GANOptions
	Beta2 float64 `json:"beta2"`
	Batch int     `json:"batch"`
	Slope float64 `json:"leaky_slope"`
	Seed  uint64  `json:"seed"`
}

// DefaultDCGANConfig is a DCGAN for 28×28 grayscale images: latent 100,
// 64 base feature maps in both networks, Adam 2e-4 (0.5, 0.999), batch 64,
// LeakyReLU 0.2.
func DefaultDCGANConfig() DCGANConfig {
	return DCGANConfig{
		Arch: "conv", Latent: 100, Width: 28, Height: 28, Channels: 1,
		GFeatures: 64, DFeatures: 64,
		LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Batch: 64, LRSchedule: constantLR, Slope: 0.2, Seed: 1, GANOptions: defaultGANOptions(),
	}
}

// dcMaxActivation bounds the largest activation a config may need (values:
// 256 MB in float32; a step holds several such tensors).
const dcMaxActivation = 1 << 26

// Validate reports the first setting that cannot work: the ranges of the
// variant's spec fields (spec.go) and what they do not cover.
func (c DCGANConfig) Validate() error { return c.validate(true) }

// validate checks c; with strict off, any square side divisible by 4 from
// 8 up is allowed (the internal tests use tiny images).
func (c DCGANConfig) validate(strict bool) error {
	side := c.Width
	switch {
	case c.Arch != "conv":
		return fmt.Errorf(`a DCGAN config needs "arch": "conv", got %q`, c.Arch)
	case c.Width != c.Height:
		return fmt.Errorf("the convolutional GAN needs square images, got %dx%d", c.Width, c.Height)
	case strict && side != 28 && side != 32:
		return fmt.Errorf("the convolutional GAN makes 28x28 or 32x32 images, got %dx%d", c.Width, c.Height)
	case !strict && (side < 8 || side%4 != 0 || side > 64):
		return fmt.Errorf("image side must be a multiple of 4 in 8..64, got %d", side)
	case c.Channels != 1 && c.Channels != 3:
		return fmt.Errorf("images must have 1 or 3 channels, got %d", c.Channels)
	case !(c.Slope >= 0 && c.Slope < 1):
		return fmt.Errorf("LeakyReLU slope must be in [0, 1), got %g", c.Slope)
	}
	if err := checkSpec("gan", "conv", c); err != nil {
		return err
	}
	// The largest activations are the generator's upsampled batch×F×S×S map
	// and the discriminator's batch×F×(S/2)² one (and their gradients):
	// refuse sizes that would need gigabytes.
	if n := max(c.Batch*c.GFeatures*side*side, c.Batch*c.DFeatures*side*side/4); n > dcMaxActivation {
		return fmt.Errorf("batch %d with %d/%d feature maps needs too much memory; lower the batch or the feature maps", c.Batch, c.GFeatures, c.DFeatures)
	}
	if err := c.GANOptions.check(c.Batch); err != nil {
		return err
	}
	return validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch, c.LRSchedule)
}

// DCGAN is the convolutional GAN. Its training step is the MLP GAN's: z is
// drawn once, fake = G(z) (batch norm in training mode, updating the running
// statistics once), D is updated on the real batch and fake.detach(), then G
// is updated through the updated D on the same fake.
type DCGAN struct {
	cfg   DCGANConfig
	dt    tensor.Dtype
	shape ImageShape
	gen   *dcGenerator
	disc  *dcDiscriminator
	optG  *Adam
	optD  *Adam

	dstep *dcDStepGraph
	fgrad *dcFakeGradGraph
	gstep *dcGStepGraph
	fwd   map[int]*dcGenEvalGraph // sampling graphs by batch size
	aug   *augmenters             // DiffAugment (nil: off)
	ema   *ema                    // G's weight average (nil: off)

	z         []float32
	lossD     float64 // the step's D loss, set by the G step's barrier
	stepped   bool    // the barrier made the D step
	middleErr error   // the barrier's D step failed with this
	frozenD   bool    // tests: the barrier leaves D alone
}

// NewDCGAN builds the convolutional GAN in float32 with weights drawn from cfg.Seed.
func NewDCGAN(cfg DCGANConfig) (*DCGAN, error) { return newDCGAN(cfg, tensor.Float32, true) }

func newDCGAN(cfg DCGANConfig, dt tensor.Dtype, strict bool) (*DCGAN, error) {
	if err := cfg.validate(strict); err != nil {
		return nil, fmt.Errorf("dcgan config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc908))
	shape := ImageShape{cfg.Width, cfg.Height, cfg.Channels}
	m := &DCGAN{cfg: cfg, dt: dt, shape: shape, fwd: map[int]*dcGenEvalGraph{}, aug: newAugmenters(cfg.DiffAugment, cfg.Seed, shape)}
	m.gen = newDCGenerator(cfg, dt, rng)
	m.disc = newDCDiscriminator(cfg, dt, rng)
	m.ema = newEMA(cfg.EMA, "generator_ema", m.gen.Params())
	m.optG = NewAdam(nn.Tensors(nn.Weights(m.gen.Params())), cfg.LR, cfg.Beta1, cfg.Beta2)
	if cfg.SpectralNorm {
		spectralNorm(cfg.Seed, m.disc.Conv1, m.disc.Conv2, m.disc.FC)
	}
	m.optD = NewAdam(nn.Tensors(nn.Weights(m.disc.Params())), dLR(cfg.LR, cfg.DLR), cfg.Beta1, cfg.Beta2)
	var err error
	if m.dstep, err = m.buildDStep(); err != nil {
		m.Close()
		return nil, fmt.Errorf("build discriminator step: %w", err)
	}
	if m.fgrad, err = m.buildFakeGrad(); err != nil {
		m.Close()
		return nil, fmt.Errorf("build generator loss gradient: %w", err)
	}
	if m.gstep, err = m.buildGStep(); err != nil {
		m.Close()
		return nil, fmt.Errorf("build generator step: %w", err)
	}
	m.z = make([]float32, cfg.Batch*cfg.Latent)
	return m, nil
}

// Family implements Model.
func (m *DCGAN) Family() string { return "gan" }

// Truncation implements Truncater.
func (m *DCGAN) Truncation() float64 { return m.cfg.truncation() }

// SetTruncation implements Truncater.
func (m *DCGAN) SetTruncation(psi float64) error {
	return m.cfg.setTruncation(psi)
}

// Shape implements Model.
func (m *DCGAN) Shape() ImageShape { return m.shape }

// LossNames implements Model.
func (m *DCGAN) LossNames() []string { return []string{"D loss", "G loss"} }

// NoiseDim implements Model.
func (m *DCGAN) NoiseDim() int { return m.cfg.Latent }

// Config implements Model.
func (m *DCGAN) Config() any { return m.cfg }

// OptimizerStep implements Model.
func (m *DCGAN) OptimizerStep() int { return m.optG.Step }

// SetOptimizerStep implements Model.
func (m *DCGAN) SetOptimizerStep(n int) { m.optG.Step, m.optD.Step = n, n }

// ParamCount is the number of learnable values in both networks.
func (m *DCGAN) ParamCount() int {
	n := 0
	for _, p := range nn.Weights(append(m.gen.Params(), m.disc.Params()...)) {
		n += p.T.Shape().TotalSize()
	}
	return n
}

// State implements Model: the generator's weights and batch-norm running
// statistics, the discriminator's weights, then both Adams' moments, named
// like PyTorch's state_dict and optimizer state. Convolution weights are
// stored out×in×kh×kw, as PyTorch stores them.
func (m *DCGAN) State() []NamedTensor {
	gp, dp := m.gen.Params(), m.disc.Params()
	return slices.Concat(gp, dp, m.ema.params(), m.optG.MomentTensors("optim_g", nn.Weights(gp)), m.optD.MomentTensors("optim_d", nn.Weights(dp)))
}

// Close implements Model.
func (m *DCGAN) Close() error {
	var errs []error
	if m.fgrad != nil {
		errs = append(errs, m.fgrad.vm.Close())
	}
	if m.dstep != nil {
		errs = append(errs, m.dstep.vm.Close())
	}
	if m.gstep != nil {
		errs = append(errs, m.gstep.vm.Close())
	}
	for _, f := range m.fwd {
		errs = append(errs, f.vm.Close())
	}
	m.fgrad, m.dstep, m.gstep = nil, nil, nil
	m.fwd = map[int]*dcGenEvalGraph{}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// The two networks.

// dcGenerator is the DCGAN generator (see DCGANConfig).
type dcGenerator struct {
	F2, S4 int
	FC     *nn.Linear
	BN0    *nn.BatchNorm2d
	Conv1  *nn.Conv2d
	BN1    *nn.BatchNorm2d
	Conv2  *nn.Conv2d
}

func newDCGenerator(cfg DCGANConfig, dt tensor.Dtype, rng *rand.Rand) *dcGenerator {
	f, s4 := cfg.GFeatures, cfg.Width/4
	return &dcGenerator{
		F2: 2 * f, S4: s4,
		FC:    nn.NewLinear("generator.fc", cfg.Latent, 2*f*s4*s4, false, dt, rng),
		BN0:   nn.NewBatchNorm2d("generator.bn0", 2*f, dt),
		Conv1: nn.NewConv2d("generator.conv1", 2*f, f, 3, 1, 1, false, dt, rng),
		BN1:   nn.NewBatchNorm2d("generator.bn1", f, dt),
		Conv2: nn.NewConv2d("generator.conv2", f, cfg.Channels, 3, 1, 1, true, dt, rng),
	}
}

// Params implements nn.Module: weights and batch-norm buffers in
// state_dict order.
func (gn *dcGenerator) Params() []NamedTensor {
	return nn.ParamsOf(gn.FC, gn.BN0, gn.Conv1, gn.BN1, gn.Conv2)
}

// forward builds G on z (batch×latent) and returns tanh images (batch, C, S, S).
func (gn *dcGenerator) forward(g *nn.Graph, z *G.Node) (*G.Node, error) {
	h, err := gn.FC.Forward(g, z)
	if err == nil {
		h, err = G.Reshape(h, tensor.Shape{z.Shape()[0], gn.F2, gn.S4, gn.S4})
	}
	if err == nil {
		h, err = gn.BN0.Forward(g, h)
	}
	for _, l := range []struct {
		conv *nn.Conv2d
		bn   *nn.BatchNorm2d
	}{{gn.Conv1, gn.BN1}, {gn.Conv2, nil}} {
		if err == nil {
			h, err = nn.ReLU(h)
		}
		if err == nil {
			h, err = nn.Upsample2x(h)
		}
		if err == nil {
			h, err = l.conv.Forward(g, h)
		}
		if err == nil && l.bn != nil {
			h, err = l.bn.Forward(g, h)
		}
	}
	if err != nil {
		return nil, err
	}
	return nn.Tanh(h)
}

// dcDiscriminator is the DCGAN discriminator (see DCGANConfig).
type dcDiscriminator struct {
	Slope        float64
	Pack         int  // PacGAN packing: images a D input stacks along channels
	Std          bool // the minibatch standard deviation before fc
	Conv1, Conv2 *nn.Conv2d
	FC           *nn.Linear
}

func newDCDiscriminator(cfg DCGANConfig, dt tensor.Dtype, rng *rand.Rand) *dcDiscriminator {
	f, s4 := cfg.DFeatures, cfg.Width/4
	std := 0
	if cfg.MinibatchStd {
		std = 1
	}
	return &dcDiscriminator{
		Slope: cfg.Slope, Pack: max(1, cfg.Pack), Std: cfg.MinibatchStd,
		Conv1: nn.NewConv2d("discriminator.conv1", cfg.Channels*max(1, cfg.Pack), f, 4, 2, 1, true, dt, rng),
		Conv2: nn.NewConv2d("discriminator.conv2", f, 2*f, 4, 2, 1, true, dt, rng),
		FC:    nn.NewLinear("discriminator.fc", (2*f+std)*s4*s4, 1, true, dt, rng),
	}
}

// Params implements nn.Module.
func (d *dcDiscriminator) Params() []NamedTensor { return nn.ParamsOf(d.Conv1, d.Conv2, d.FC) }

// forward builds D on x (batch, C, S, S) and returns the logits (batch×1).
func (d *dcDiscriminator) forward(g *nn.Graph, x *G.Node) (*G.Node, error) {
	x, err := packRows(x, d.Pack)
	if err != nil {
		return nil, fmt.Errorf("discriminator: %w", err)
	}
	h, err := d.Conv1.Forward(g, x)
	if err == nil {
		h, err = nn.LeakyReLU(h, d.Slope, nil)
	}
	if err == nil {
		h, err = d.Conv2.Forward(g, h)
	}
	if err == nil {
		h, err = nn.LeakyReLU(h, d.Slope, nil)
	}
	if err == nil && d.Std {
		h, err = nn.MinibatchStd(h)
	}
	if err == nil {
		h, err = G.Reshape(h, tensor.Shape{x.Shape()[0], d.FC.In})
	}
	if err != nil {
		return nil, fmt.Errorf("discriminator: %w", err)
	}
	return d.FC.Forward(g, h)
}

// ---------------------------------------------------------------------------
// Graphs.

// dcGenEvalGraph is G in evaluation mode (running statistics) for a fixed batch size.
type dcGenEvalGraph struct {
	vm  G.VM
	z   *tensor.Dense
	out G.Value
}

func (m *DCGAN) genEval(batch int) (*dcGenEvalGraph, error) {
	if f, ok := m.fwd[batch]; ok {
		return f, nil
	}
	g := nn.NewGraph(false)
	f := &dcGenEvalGraph{z: tensor.New(tensor.WithShape(batch, m.cfg.Latent), tensor.Of(m.dt))}
	out, err := m.gen.forward(g, g.Input("z", f.z))
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	f.vm = newReuseTape(g.ExprGraph)
	m.fwd[batch] = f
	return f, nil
}

// dcSampleChunk is the batch size of the sampling graph.
const dcSampleChunk = 64

// Sample implements Model: G in evaluation mode (batch norm with the
// running statistics), images in [0, 1], C×H×W each.
func (m *DCGAN) Sample(z []float32) ([]float32, error) {
	var out []float32
	z = truncate(z, m.cfg.Truncation)
	err := m.ema.with(func() error {
		var err error
		out, err = m.sample(z)
		return err
	})
	return out, err
}

// sample runs G in evaluation mode (running statistics) on z.
func (m *DCGAN) sample(z []float32) ([]float32, error) {
	d, size := m.cfg.Latent, m.shape.Size()
	if len(z) == 0 || len(z)%d != 0 {
		return nil, fmt.Errorf("sample: noise length %d is not a multiple of the latent size %d", len(z), d)
	}
	f, err := m.genEval(dcSampleChunk)
	if err != nil {
		return nil, fmt.Errorf("generator graph: %w", err)
	}
	n := len(z) / d
	out := make([]float32, n*size)
	zb := make([]float32, dcSampleChunk*d)
	ob := make([]float32, dcSampleChunk*size)
	for start := 0; start < n; start += dcSampleChunk {
		b := min(dcSampleChunk, n-start)
		clear(zb)
		copy(zb, z[start*d:(start+b)*d])
		if err := copyInto(f.z, zb); err != nil {
			return nil, err
		}
		f.vm.Reset()
		if err := f.vm.RunAll(); err != nil {
			return nil, fmt.Errorf("generator forward: %w", err)
		}
		if err := copyOut(ob, f.out); err != nil {
			return nil, err
		}
		copy(out[start*size:], ob[:b*size])
	}
	for i, v := range out {
		out[i] = (v + 1) / 2
	}
	return out, nil
}

// dcDStepGraph computes L_D = BCE(D(x), 1) + BCE(D(fake), 0) and its
// gradient with respect to D's weights.
type dcDStepGraph struct {
	vm         G.VM
	real, fake *tensor.Dense
	eps        *gpEps // WGAN-GP's ε (nil without)
	weights    G.Nodes
	loss       G.Value
}

func (m *DCGAN) imageShape(batch int) tensor.Shape {
	return tensor.Shape{batch, m.cfg.Channels, m.cfg.Height, m.cfg.Width}
}

func (m *DCGAN) buildDStep() (*dcDStepGraph, error) {
	g := nn.NewGraph(true)
	s := &dcDStepGraph{
		real: tensor.New(tensor.WithShape(m.imageShape(m.cfg.Batch)...), tensor.Of(m.dt)),
		fake: tensor.New(tensor.WithShape(m.imageShape(m.cfg.Batch)...), tensor.Of(m.dt)),
	}
	s.weights = g.Nodes(nn.Weights(m.disc.Params()))
	xr, err := m.aug.apply(g.Input("x_real", s.real))
	if err != nil {
		return nil, err
	}
	xf, err := m.aug.apply(g.Input("x_fake", s.fake))
	if err != nil {
		return nil, err
	}
	if m.cfg.R1 > 0 {
		// A node of its own, which D's first layer differentiates (the
		// graph's inputs take no gradient).
		if xr, err = G.Reshape(xr, s.real.Shape().Clone()); err != nil {
			return nil, err
		}
	}
	lr, err := m.disc.forward(g, xr)
	if err != nil {
		return nil, err
	}
	lf, err := m.disc.forward(g, xf)
	if err != nil {
		return nil, err
	}
	cost, err := ganDLoss(m.cfg.Loss, lr, lf)
	if err != nil {
		return nil, err
	}
	var eps *G.Node
	if m.cfg.GP > 0 {
		s.eps = &gpEps{tensor.New(tensor.WithShape(m.imageShape(m.cfg.Batch)...), tensor.Of(m.dt))}
		eps = g.Input("gp_eps", s.eps.t)
	}
	if cost, err = m.cfg.dPenalties(cost, xr, xf, lr, eps, func(x *G.Node) (*G.Node, error) { return m.disc.forward(g, x) }); err != nil {
		return nil, err
	}
	if s.vm, err = compileStep(g.ExprGraph, cost, &s.loss, s.weights, true, "D loss"); err != nil {
		return nil, err
	}
	return s, nil
}

// dcGStepGraph is one training step around one generator forward, as
// PyTorch's reference makes it: G in training mode makes fake = G(z); a
// barrier op, once fake exists, runs the discriminator step on the real
// batch and fake.detach() and then the gradient g = ∂L_G/∂fake of
// L_G = BCE(D(fake), 1) through the updated D (dcFakeGradGraph); the graph
// ends in Σ fake⊙g, whose gradient with respect to G's weights is L_G's.
// G's forward is computed once a step, not once for the fake batch and
// again for G's update.
type dcGStepGraph struct {
	g       *nn.Graph
	ms      *modeSeeking // nil without MSGAN
	vm      G.VM
	z       *tensor.Dense
	weights G.Nodes
	sur     G.Value // Σ fake⊙g, whose value means nothing
}

// dcFakeGradGraph computes L_G = BCE(D(fake), 1) and ∂L_G/∂fake, D frozen.
type dcFakeGradGraph struct {
	vm         G.VM
	fake       *tensor.Dense
	loss, grad G.Value
}

func (m *DCGAN) buildFakeGrad() (*dcFakeGradGraph, error) {
	g := nn.NewGraph(true)
	g.Freeze(m.disc.Params())
	shape := m.imageShape(m.cfg.Batch)
	f := &dcFakeGradGraph{fake: tensor.New(tensor.WithShape(shape...), tensor.Of(m.dt))}
	x := G.NewTensor(g.ExprGraph, m.dt, 4, G.WithShape(shape...), G.WithValue(f.fake), G.WithName("fake"))
	seen, err := m.aug.apply(x)
	if err != nil {
		return nil, err
	}
	logits, err := m.disc.forward(g, seen)
	if err != nil {
		return nil, err
	}
	cost, err := ganGLoss(m.cfg.Loss, logits)
	if err != nil {
		return nil, err
	}
	G.Read(cost, &f.loss)
	grads, err := G.Grad(cost, x)
	if err != nil {
		return nil, fmt.Errorf("differentiate G loss: %w", err)
	}
	G.Read(grads[0], &f.grad)
	f.vm = newReuseTape(g.ExprGraph)
	return f, nil
}

func (m *DCGAN) buildGStep() (*dcGStepGraph, error) {
	g := nn.NewGraph(true)
	g.TrackStats = true
	s := &dcGStepGraph{g: g, z: tensor.New(tensor.WithShape(m.cfg.Batch, m.cfg.Latent), tensor.Of(m.dt))}
	s.weights = g.Nodes(nn.Weights(m.gen.Params()))
	fake, err := m.gen.forward(g, g.Input("z", s.z))
	if err != nil {
		return nil, err
	}
	dfake, err := nn.Apply("DiscriminatorStep", fake.Shape(), nn.Kernels(dcMiddle[float32](m), dcMiddle[float64](m)), nil, nil, fake)
	if err != nil {
		return nil, err
	}
	prod, err := G.HadamardProd(fake, dfake)
	if err != nil {
		return nil, err
	}
	sur, err := G.Sum(prod)
	if err != nil {
		return nil, err
	}
	if m.cfg.MSWeight > 0 {
		s.ms = &modeSeeking{weight: m.cfg.MSWeight}
		if sur, err = s.ms.add(sur, fake); err != nil {
			return nil, err
		}
	}
	if s.vm, err = compileStep(g.ExprGraph, sur, &s.sur, s.weights, true, "G loss"); err != nil {
		return nil, err
	}
	return s, nil
}

// dcMiddle is the barrier's kernel: fake in, ∂L_G/∂fake out, the
// discriminator updated in between (unless the tests froze it).
func dcMiddle[T nn.Float](m *DCGAN) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		copy(m.dstep.fake.Data().([]T), in[0])
		copy(m.fgrad.fake.Data().([]T), in[0])
		if !m.frozenD {
			l, err := optimizeStep(m.dstep.vm, m.dstep.weights, &m.dstep.loss, m.optD, "discriminator step", "D loss")
			if err != nil {
				m.middleErr = err // Gorgonia's wrapping hides it from errors.As
				return err
			}
			m.lossD, m.stepped = l, true
		}
		f := m.fgrad
		f.vm.Reset()
		if err := f.vm.RunAll(); err != nil {
			return fmt.Errorf("G loss gradient: %w", err)
		}
		g, ok := f.grad.(*tensor.Dense)
		if !ok {
			return fmt.Errorf("G loss gradient is %T", f.grad)
		}
		copy(out, g.Data().([]T))
		return nil
	}
}

// TrainStep implements Model. Each image is C planes of H×W pixels.
func (m *DCGAN) TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error) {
	b, n := m.cfg.Batch, m.shape.Size()
	if len(batch) != b*n {
		return nil, fmt.Errorf("gan step: batch has %d values, want %d (%d images of %d)", len(batch), b*n, b, n)
	}
	FillNormal(m.z, rng)
	m.dstep.eps.draw(rng)
	m.aug.next(m.optG.Step)
	s := m.gstep
	if err := s.ms.setDZ(m.z); err != nil {
		return nil, err
	}
	if err := copyInto(s.z, m.z); err != nil {
		return nil, err
	}
	scalePixels(m.dstep.real, batch)
	m.stepped, m.middleErr = false, nil
	lossG, err := optimizeStep(s.vm, s.weights, &m.fgrad.loss, m.optG, "generator step", "G loss")
	if m.middleErr != nil {
		err = m.middleErr
	}
	// The forward's batch statistics update the running ones once D's step
	// proved its loss finite (PyTorch updates them during the forward).
	if m.stepped {
		if serr := s.g.UpdateStats(); serr != nil && err == nil {
			err = serr
		}
	}
	if err != nil {
		return nil, err
	}
	m.ema.update(m.optG.Step)
	// The G loss as the MLP GAN reports it: the adversarial loss plus the
	// mode-seeking term.
	return []float64{m.lossD, lossG + s.ms.value()}, nil
}

// LRSchedule implements Scheduled.
func (m *DCGAN) LRSchedule() LRSchedule { return m.cfg.LRSchedule }

// ScaleLR implements Scheduled.
func (m *DCGAN) ScaleLR(f float64) { m.cfg.LRSchedule.apply(f, m.optG, m.optD) }
