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

// GANConfig configures the MLP GAN. The defaults are the seed's recipe,
// layer for layer as ../shared/bench/torch_gan_mnist.py defines it.
type GANConfig struct {
	Latent   int     `json:"latent"`
	GHidden  []int   `json:"g_hidden"`
	DHidden  []int   `json:"d_hidden"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	Channels int     `json:"channels"`
	LR       float64 `json:"lr"`
	Beta1    float64 `json:"beta1"`
	LRSchedule
	GANOptions
	Beta2    float64 `json:"beta2"`
	Batch    int     `json:"batch"`
	DropoutP float64 `json:"dropout"`
	Slope    float64 `json:"leaky_slope"`
	Seed     uint64  `json:"seed"`
}

// DefaultGANConfig is the seed GAN: G 100-256-512-1024-784, D 784-1024-512-256-1,
// Adam 2e-4 (0.5, 0.999), batch 64, dropout 0.3, LeakyReLU 0.2.
func DefaultGANConfig() GANConfig {
	return GANConfig{
		Latent: 100, GHidden: []int{256, 512, 1024}, DHidden: []int{1024, 512, 256},
		Width: 28, Height: 28, Channels: 1,
		LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Batch: 64, LRSchedule: constantLR, DropoutP: 0.3, Slope: 0.2, Seed: 1, GANOptions: defaultGANOptions(),
	}
}

// Validate reports the first setting that cannot work: the ranges of the
// variant's spec fields (spec.go), then what they do not cover.
func (c GANConfig) Validate() error {
	if err := checkSpec("gan", "mlp", c); err != nil {
		return err
	}
	switch {
	case c.Width < 1 || c.Height < 1 || c.Channels < 1 || c.Width*c.Height*c.Channels > 1<<16:
		return fmt.Errorf("image shape %dx%dx%d is not supported", c.Width, c.Height, c.Channels)
	case !(c.DropoutP >= 0 && c.DropoutP < 1):
		return fmt.Errorf("dropout must be in [0, 1), got %g", c.DropoutP)
	}
	if err := c.GANOptions.check(c.Batch); err != nil {
		return err
	}
	return validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch, c.LRSchedule)
}

// GAN is the MLP GAN: a generator and a discriminator trained with the
// non-saturating loss. One training step draws z once, makes fake = G(z),
// updates D on the real batch and fake.detach(), then updates G through the
// updated D on the same fake (new dropout masks), as the reference does.
type GAN struct {
	cfg   GANConfig
	dt    tensor.Dtype
	Gen   *MLP
	Disc  *MLP
	optG  *Adam
	optD  *Adam
	shape ImageShape

	dstep *dStepGraph
	gstep *gStepGraph
	fwd   map[int]*genGraph // generator forward graphs by batch size

	// step scratch, reused every step
	z, fake []float32
	aug     *augmenters // DiffAugment (nil: off)
	ema     *ema        // G's weight average (nil: off)
}

// NewGAN builds the GAN in float32 with weights drawn from cfg.Seed.
func NewGAN(cfg GANConfig) (*GAN, error) { return newGAN(cfg, tensor.Float32) }

func newGAN(cfg GANConfig, dt tensor.Dtype) (*GAN, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gan config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc908))
	shape := ImageShape{cfg.Width, cfg.Height, cfg.Channels}
	g := &GAN{cfg: cfg, dt: dt, shape: shape, fwd: map[int]*genGraph{}, aug: newAugmenters(cfg.DiffAugment, cfg.Seed, shape)}
	g.Gen = &MLP{Hidden: ActReLU, Output: ActTanh}
	sizes := append(append([]int{cfg.Latent}, cfg.GHidden...), shape.Size())
	for i := 0; i+1 < len(sizes); i++ {
		g.Gen.Layers = append(g.Gen.Layers, NewLinear(fmt.Sprintf("generator.%d", 2*i), sizes[i], sizes[i+1], dt, rng))
	}
	// D's Sequential is Linear, LeakyReLU, Dropout per hidden layer: indices 0, 3, 6, ...
	g.Disc = &MLP{Hidden: ActLeakyReLU, Output: ActNone, Slope: cfg.Slope, DropoutP: cfg.DropoutP, StdBeforeLast: cfg.MinibatchStd}
	sizes = append(append([]int{shape.Size() * max(1, cfg.Pack)}, cfg.DHidden...), 1)
	for i := 0; i+1 < len(sizes); i++ {
		in := sizes[i]
		if cfg.MinibatchStd && i+2 == len(sizes) {
			in++ // the minibatch standard deviation
		}
		g.Disc.Layers = append(g.Disc.Layers, NewLinear(fmt.Sprintf("discriminator.%d", 3*i), in, sizes[i+1], dt, rng))
	}
	if cfg.SpectralNorm {
		spectralNorm(cfg.Seed, layersOf(g.Disc.Layers)...)
	}
	g.ema = newEMA(cfg.EMA, "generator_ema", g.Gen.Params())
	g.optG = NewAdam(nn.Tensors(g.Gen.Params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	g.optD = NewAdam(nn.Tensors(nn.Weights(g.Disc.Params())), dLR(cfg.LR, cfg.DLR), cfg.Beta1, cfg.Beta2)
	var err error
	if g.dstep, err = g.buildDStep(); err != nil {
		return nil, fmt.Errorf("build discriminator step: %w", err)
	}
	if g.gstep, err = g.buildGStep(); err != nil {
		return nil, fmt.Errorf("build generator step: %w", err)
	}
	g.z = make([]float32, cfg.Batch*cfg.Latent)
	g.fake = make([]float32, cfg.Batch*shape.Size())
	return g, nil
}

// Family implements Model.
func (g *GAN) Family() string { return "gan" }

// Truncation implements Truncater.
func (g *GAN) Truncation() float64 { return g.cfg.truncation() }

// SetTruncation implements Truncater.
func (g *GAN) SetTruncation(psi float64) error {
	return g.cfg.setTruncation(psi)
}

// Shape implements Model.
func (g *GAN) Shape() ImageShape { return g.shape }

// LossNames implements Model.
func (g *GAN) LossNames() []string { return []string{"D loss", "G loss"} }

// NoiseDim implements Model.
func (g *GAN) NoiseDim() int { return g.cfg.Latent }

// Config implements Model.
func (g *GAN) Config() any { return g.cfg }

// OptimizerStep implements Model.
func (g *GAN) OptimizerStep() int { return g.optG.Step }

// SetOptimizerStep implements Model.
func (g *GAN) SetOptimizerStep(n int) { g.optG.Step, g.optD.Step = n, n }

// State implements Model: both networks' weights, then both Adams' moments,
// named like PyTorch's state_dict and optimizer state.
func (g *GAN) State() []NamedTensor {
	gp, dp := g.Gen.Params(), g.Disc.Params()
	return slices.Concat(gp, dp, g.ema.params(), g.optG.MomentTensors("optim_g", gp), g.optD.MomentTensors("optim_d", nn.Weights(dp)))
}

// Close implements Model.
func (g *GAN) Close() error {
	var errs []error
	if g.dstep != nil {
		errs = append(errs, g.dstep.vm.Close())
	}
	if g.gstep != nil {
		errs = append(errs, g.gstep.vm.Close())
	}
	for _, f := range g.fwd {
		errs = append(errs, f.vm.Close())
	}
	g.fwd = map[int]*genGraph{}
	return errors.Join(errs...)
}

// genGraph is a generator-only forward graph for a fixed batch size.
type genGraph struct {
	vm    G.VM
	z     *tensor.Dense
	out   G.Value
	batch int
}

func (g *GAN) genForward(batch int) (*genGraph, error) {
	if f, ok := g.fwd[batch]; ok {
		return f, nil
	}
	eg := G.NewGraph()
	f := &genGraph{batch: batch, z: tensor.New(tensor.WithShape(batch, g.cfg.Latent), tensor.Of(g.dt))}
	z := G.NewMatrix(eg, g.dt, G.WithShape(batch, g.cfg.Latent), G.WithValue(f.z), G.WithName("z"))
	out, _, err := g.Gen.forward(eg, g.Gen.nodes(eg), z, batch, false)
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	f.vm = newReuseTape(eg)
	g.fwd[batch] = f
	return f, nil
}

// generate runs G on z (batch rows) and copies tanh outputs into dst.
func (g *GAN) generate(z []float32, batch int, dst []float32) error {
	f, err := g.genForward(batch)
	if err != nil {
		return fmt.Errorf("generator graph: %w", err)
	}
	if err := copyInto(f.z, z); err != nil {
		return err
	}
	f.vm.Reset()
	if err := f.vm.RunAll(); err != nil {
		return fmt.Errorf("generator forward: %w", err)
	}
	return copyOut(dst, f.out)
}

// Sample implements Model. Images come out in [0, 1], from the averaged
// generator when EMA is on.
func (g *GAN) Sample(z []float32) ([]float32, error) {
	var out []float32
	z = truncate(z, g.cfg.Truncation)
	err := g.ema.with(func() error {
		var err error
		out, err = g.sample(z)
		return err
	})
	return out, err
}

func (g *GAN) sample(z []float32) ([]float32, error) {
	d := g.cfg.Latent
	if len(z) == 0 || len(z)%d != 0 {
		return nil, fmt.Errorf("sample: noise length %d is not a multiple of the latent size %d", len(z), d)
	}
	n := len(z) / d
	const chunk = 64
	out := make([]float32, n*g.shape.Size())
	for start := 0; start < n; start += chunk {
		b := min(chunk, n-start)
		zb := make([]float32, chunk*d)
		copy(zb, z[start*d:(start+b)*d])
		ob := make([]float32, chunk*g.shape.Size())
		if err := g.generate(zb, chunk, ob); err != nil {
			return nil, err
		}
		copy(out[start*g.shape.Size():], ob[:b*g.shape.Size()])
	}
	for i, v := range out {
		out[i] = (v + 1) / 2
	}
	return out, nil
}

// dStepGraph computes L_D = BCE(D(x), 1) + BCE(D(fake), 0) and its gradient
// with respect to D's weights.
type dStepGraph struct {
	vm          G.VM
	real, fake  *tensor.Dense
	mReal, mFak *dropoutMasks
	mHat        *dropoutMasks // D's masks at WGAN-GP's interpolates (nil without)
	eps         *gpEps        // WGAN-GP's ε (nil without)
	weights     G.Nodes
	loss        G.Value
}

func (g *GAN) buildDStep() (*dStepGraph, error) {
	b, n := g.cfg.Batch, g.shape.Size()
	eg := G.NewGraph()
	s := &dStepGraph{
		real: tensor.New(tensor.WithShape(b, n), tensor.Of(g.dt)),
		fake: tensor.New(tensor.WithShape(b, n), tensor.Of(g.dt)),
	}
	dn := g.Disc.nodes(eg)
	s.weights = dn.all()
	xr := G.NewMatrix(eg, g.dt, G.WithShape(b, n), G.WithValue(s.real), G.WithName("x_real"))
	xf := G.NewMatrix(eg, g.dt, G.WithShape(b, n), G.WithValue(s.fake), G.WithName("x_fake"))
	pb := b / max(1, g.cfg.Pack)
	xr, err := g.aug.apply(xr)
	if err != nil {
		return nil, err
	}
	if xf, err = g.aug.apply(xf); err != nil {
		return nil, err
	}
	d := func(x *G.Node) (*G.Node, *dropoutMasks, error) {
		x, err := packRows(x, g.cfg.Pack)
		if err != nil {
			return nil, nil, err
		}
		return g.Disc.forward(eg, dn, x, pb, true)
	}
	lr, mr, err := d(xr)
	if err != nil {
		return nil, err
	}
	lf, mf, err := d(xf)
	if err != nil {
		return nil, err
	}
	s.mReal, s.mFak = mr, mf
	cost, err := ganDLoss(g.cfg.Loss, lr, lf)
	if err != nil {
		return nil, err
	}
	var eps *G.Node
	if g.cfg.GP > 0 {
		s.eps = &gpEps{tensor.New(tensor.WithShape(b, n), tensor.Of(g.dt))}
		eps = G.NewMatrix(eg, g.dt, G.WithShape(b, n), G.WithValue(s.eps.t), G.WithName("gp_eps"))
	}
	if cost, err = g.cfg.dPenalties(cost, xr, xf, lr, eps, func(x *G.Node) (*G.Node, error) {
		l, m, err := d(x)
		s.mHat = m
		return l, err
	}); err != nil {
		return nil, err
	}
	if s.vm, err = compileStep(eg, cost, &s.loss, s.weights, true, "D loss"); err != nil {
		return nil, err
	}
	return s, nil
}

// gStepGraph computes L_G = BCE(D(G(z)), 1) and its gradient with respect to
// G's weights only (D's weights take no gradient here).
type gStepGraph struct {
	vm      G.VM
	ms      *modeSeeking // nil without MSGAN
	z       *tensor.Dense
	masks   *dropoutMasks
	weights G.Nodes
	loss    G.Value
}

func (g *GAN) buildGStep() (*gStepGraph, error) {
	b := g.cfg.Batch
	eg := G.NewGraph()
	s := &gStepGraph{z: tensor.New(tensor.WithShape(b, g.cfg.Latent), tensor.Of(g.dt))}
	gn := g.Gen.nodes(eg)
	s.weights = gn.all()
	z := G.NewMatrix(eg, g.dt, G.WithShape(b, g.cfg.Latent), G.WithValue(s.z), G.WithName("z"))
	fake, _, err := g.Gen.forward(eg, gn, z, b, false)
	if err != nil {
		return nil, err
	}
	seen, err := g.aug.apply(fake)
	if err != nil {
		return nil, err
	}
	if seen, err = packRows(seen, g.cfg.Pack); err != nil {
		return nil, err
	}
	logits, masks, err := g.Disc.forward(eg, g.Disc.nodes(eg), seen, b/max(1, g.cfg.Pack), true)
	if err != nil {
		return nil, err
	}
	s.masks = masks
	cost, err := ganGLoss(g.cfg.Loss, logits)
	if err != nil {
		return nil, err
	}
	if g.cfg.MSWeight > 0 {
		s.ms = &modeSeeking{weight: g.cfg.MSWeight}
		if cost, err = s.ms.add(cost, fake); err != nil {
			return nil, err
		}
	}
	if s.vm, err = compileStep(eg, cost, &s.loss, s.weights, true, "G loss"); err != nil {
		return nil, err
	}
	return s, nil
}

// discriminatorLoss is L_D = BCE(sigmoid(lr), 1) + BCE(sigmoid(lf), 0)
// from D's logits on the real and the fake batch.
func discriminatorLoss(lr, lf *G.Node) (*G.Node, error) {
	lossReal, err := bceWithLogits(lr, true)
	if err != nil {
		return nil, err
	}
	lossFake, err := bceWithLogits(lf, false)
	if err != nil {
		return nil, err
	}
	return G.Add(lossReal, lossFake)
}

// bceWithLogits is BCELoss(sigmoid(l), target) in its stable form:
// mean(softplus(-l)) for target 1, mean(softplus(l)) for target 0.
func bceWithLogits(logits *G.Node, target bool) (*G.Node, error) {
	x := logits
	var err error
	if target {
		if x, err = G.Neg(logits); err != nil {
			return nil, err
		}
	}
	sp, err := G.Softplus(x)
	if err != nil {
		return nil, fmt.Errorf("bce: %w", err)
	}
	return G.Mean(sp)
}

// TrainStep implements Model.
func (g *GAN) TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error) {
	b, n := g.cfg.Batch, g.shape.Size()
	if len(batch) != b*n {
		return nil, fmt.Errorf("gan step: batch has %d values, want %d (%d images of %d)", len(batch), b*n, b, n)
	}
	// fake = G(z), once; then WGAN-GP's ε.
	FillNormal(g.z, rng)
	g.dstep.eps.draw(rng)
	g.aug.next(g.optG.Step)
	if err := g.generate(g.z, b, g.fake); err != nil {
		return nil, err
	}
	lossD, err := g.discStep(batch, rng)
	if err != nil {
		return nil, err
	}
	lossG, err := g.genStep(rng)
	if err != nil {
		return nil, err
	}
	g.ema.update(g.optG.Step)
	return []float64{lossD, lossG}, nil
}

// discStep runs the D update on the real batch and g.fake.
func (g *GAN) discStep(batch []uint8, rng *rand.Rand) (float64, error) {
	s := g.dstep
	scalePixels(s.real, batch)
	if err := copyInto(s.fake, g.fake); err != nil {
		return 0, err
	}
	s.mReal.fill(g.cfg.DropoutP, rng)
	s.mFak.fill(g.cfg.DropoutP, rng)
	s.mHat.fill(g.cfg.DropoutP, rng)
	return optimizeStep(s.vm, s.weights, &s.loss, g.optD, "discriminator step", "D loss")
}

// genStep runs the G update through the just-updated D. It recomputes
// G(z) for the same z inside its graph: Gorgonia's tape runs forward and
// backward together, so the reference's single forward becomes two forwards
// with identical values; in exchange D's weight gradients are never computed.
func (g *GAN) genStep(rng *rand.Rand) (float64, error) {
	s := g.gstep
	if err := s.ms.setDZ(g.z); err != nil {
		return 0, err
	}
	if err := copyInto(s.z, g.z); err != nil {
		return 0, err
	}
	s.masks.fill(g.cfg.DropoutP, rng)
	return optimizeStep(s.vm, s.weights, &s.loss, g.optG, "generator step", "G loss")
}

// NonFiniteLossError reports a NaN or infinite loss. The step that produced
// it has not changed the weights.
type NonFiniteLossError struct {
	Name  string
	Value float64
}

func (e *NonFiniteLossError) Error() string {
	return fmt.Sprintf("%s became %v: training diverged (lower the learning rate); the weights before this step are kept", e.Name, e.Value)
}

// runGrad runs a training graph once. Gorgonia adds each run's gradients
// to the dual values it binds, so they are zeroed first.
func runGrad(vm G.VM, weights G.Nodes) error {
	for _, n := range weights {
		gv, err := n.Grad()
		if err != nil {
			return fmt.Errorf("gradient of %s: %w", n.Name(), err)
		}
		if t, ok := gv.(tensor.Tensor); ok {
			t.Zero()
		}
	}
	vm.Reset()
	return vm.RunAll()
}

func gradsOf(nodes G.Nodes) ([]tensor.Tensor, error) {
	out := make([]tensor.Tensor, len(nodes))
	for i, n := range nodes {
		gv, err := n.Grad()
		if err != nil {
			return nil, fmt.Errorf("gradient of %s: %w", n.Name(), err)
		}
		t, ok := gv.(tensor.Tensor)
		if !ok {
			return nil, fmt.Errorf("gradient of %s is not a tensor", n.Name())
		}
		out[i] = t
	}
	return out, nil
}

func scalar(v G.Value) (float64, error) {
	switch x := v.(type) {
	case *G.F32:
		return float64(*x), nil
	case *G.F64:
		return float64(*x), nil
	case tensor.Tensor:
		switch d := x.Data().(type) {
		case float32:
			return float64(d), nil
		case float64:
			return d, nil
		case []float32:
			if len(d) == 1 {
				return float64(d[0]), nil
			}
		case []float64:
			if len(d) == 1 {
				return d[0], nil
			}
		}
	}
	return 0, fmt.Errorf("loss value %v is not a scalar", v)
}

// scalePixels writes uint8 pixels into t scaled to [-1, 1] (p/127.5 - 1).
func scalePixels(t *tensor.Dense, px []uint8) {
	switch d := t.Data().(type) {
	case []float32:
		for i, p := range px {
			d[i] = float32(p)/127.5 - 1
		}
	case []float64:
		for i, p := range px {
			d[i] = float64(p)/127.5 - 1
		}
	}
}

func copyInto(t *tensor.Dense, src []float32) error {
	switch d := t.Data().(type) {
	case []float32:
		if len(d) != len(src) {
			return fmt.Errorf("input has %d values, graph wants %d", len(src), len(d))
		}
		copy(d, src)
	case []float64:
		if len(d) != len(src) {
			return fmt.Errorf("input has %d values, graph wants %d", len(src), len(d))
		}
		for i, v := range src {
			d[i] = float64(v)
		}
	}
	return nil
}

func copyOut(dst []float32, v G.Value) error {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return fmt.Errorf("graph output %v is not a tensor", v)
	}
	switch d := t.Data().(type) {
	case []float32:
		if len(d) != len(dst) {
			return fmt.Errorf("graph output has %d values, want %d", len(d), len(dst))
		}
		copy(dst, d)
	case []float64:
		if len(d) != len(dst) {
			return fmt.Errorf("graph output has %d values, want %d", len(d), len(dst))
		}
		for i, x := range d {
			dst[i] = float32(x)
		}
	default:
		return fmt.Errorf("graph output has unsupported type %T", d)
	}
	return nil
}

// LRSchedule implements Scheduled.
func (g *GAN) LRSchedule() LRSchedule { return g.cfg.LRSchedule }

// ScaleLR implements Scheduled.
func (g *GAN) ScaleLR(f float64) { g.cfg.LRSchedule.apply(f, g.optG, g.optD) }
