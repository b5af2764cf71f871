package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func init() {
	register("gan", "conv", func(c []byte) (Model, error) { return build(c, DefaultDCGANConfig(), NewDCGAN) })
}

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
	Beta2     float64 `json:"beta2"`
	Batch     int     `json:"batch"`
	Slope     float64 `json:"leaky_slope"`
	Seed      uint64  `json:"seed"`
}

// DefaultDCGANConfig is a DCGAN for 28×28 grayscale images: latent 100,
// 64 base feature maps in both networks, Adam 2e-4 (0.5, 0.999), batch 64,
// LeakyReLU 0.2.
func DefaultDCGANConfig() DCGANConfig {
	return DCGANConfig{
		Arch: "conv", Latent: 100, Width: 28, Height: 28, Channels: 1,
		GFeatures: 64, DFeatures: 64,
		LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Batch: 64, Slope: 0.2, Seed: 1,
	}
}

// dcMaxIm2Col bounds the largest im2col buffer a config may need (values).
const dcMaxIm2Col = 1 << 28

// Validate reports the first setting that cannot work.
func (c DCGANConfig) Validate() error { return c.validate(true) }

// validate checks c; with strict off, any square side divisible by 4 from
// 8 up is allowed (the internal tests use tiny images).
func (c DCGANConfig) validate(strict bool) error {
	side := c.Width
	switch {
	case c.Arch != "conv":
		return fmt.Errorf(`a DCGAN config needs "arch": "conv", got %q`, c.Arch)
	case c.Latent < 1 || c.Latent > 4096:
		return fmt.Errorf("latent size must be 1..4096, got %d", c.Latent)
	case c.Width != c.Height:
		return fmt.Errorf("the convolutional GAN needs square images, got %dx%d", c.Width, c.Height)
	case strict && side != 28 && side != 32:
		return fmt.Errorf("the convolutional GAN makes 28x28 or 32x32 images, got %dx%d", c.Width, c.Height)
	case !strict && (side < 8 || side%4 != 0 || side > 64):
		return fmt.Errorf("image side must be a multiple of 4 in 8..64, got %d", side)
	case c.Channels != 1 && c.Channels != 3:
		return fmt.Errorf("images must have 1 or 3 channels, got %d", c.Channels)
	case c.GFeatures < 1 || c.GFeatures > 512 || c.DFeatures < 1 || c.DFeatures > 512:
		return fmt.Errorf("feature maps must be 1..512, got %d (G) and %d (D)", c.GFeatures, c.DFeatures)
	case !(c.LR > 0 && c.LR < 1):
		return fmt.Errorf("learning rate must be in (0, 1), got %g", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("Adam betas must be in [0, 1), got %g and %g", c.Beta1, c.Beta2)
	case c.Batch < 1 || c.Batch > 4096:
		return fmt.Errorf("batch size must be 1..4096, got %d", c.Batch)
	case !(c.Slope >= 0 && c.Slope < 1):
		return fmt.Errorf("LeakyReLU slope must be in [0, 1), got %g", c.Slope)
	}
	// The generator's last convolution unfolds batch×S×S×F×9 values and the
	// discriminator's second one batch×(S/2)²×F×16/4: refuse sizes that would
	// need gigabytes.
	if n := max(c.Batch*side*side*c.GFeatures*9, c.Batch*side*side*c.DFeatures*4); n > dcMaxIm2Col {
		return fmt.Errorf("batch %d with %d/%d feature maps needs too much memory; lower the batch or the feature maps", c.Batch, c.GFeatures, c.DFeatures)
	}
	return nil
}

// DCGAN is the convolutional GAN. Its training step is the MLP GAN's: z is
// drawn once, fake = G(z) (batch norm in training mode, updating the running
// statistics once), D is updated on the real batch and fake.detach(), then G
// is updated through the updated D on the same fake.
type DCGAN struct {
	cfg   DCGANConfig
	dt    tensor.Dtype
	shape ImageShape
	Gen   *dcGenerator
	Disc  *dcDiscriminator
	optG  *Adam
	optD  *Adam

	gtrain *dcGenTrainGraph
	dstep  *dcDStepGraph
	gstep  *dcGStepGraph
	fwd    map[int]*dcGenEvalGraph // sampling graphs by batch size

	z, fake []float32
}

// NewDCGAN builds the convolutional GAN in float32 with weights drawn from cfg.Seed.
func NewDCGAN(cfg DCGANConfig) (*DCGAN, error) { return newDCGAN(cfg, tensor.Float32, true) }

func newDCGAN(cfg DCGANConfig, dt tensor.Dtype, strict bool) (*DCGAN, error) {
	if err := cfg.validate(strict); err != nil {
		return nil, fmt.Errorf("dcgan config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc908))
	m := &DCGAN{cfg: cfg, dt: dt, shape: ImageShape{cfg.Width, cfg.Height, cfg.Channels}, fwd: map[int]*dcGenEvalGraph{}}
	m.Gen = newDCGenerator(cfg, dt, rng)
	m.Disc = newDCDiscriminator(cfg, dt, rng)
	m.optG = NewAdam(tensorsOf(m.Gen.params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	m.optD = NewAdam(tensorsOf(m.Disc.params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	var err error
	if m.gtrain, err = m.buildGenTrain(); err != nil {
		return nil, fmt.Errorf("build generator forward: %w", err)
	}
	if m.dstep, err = m.buildDStep(); err != nil {
		m.Close()
		return nil, fmt.Errorf("build discriminator step: %w", err)
	}
	if m.gstep, err = m.buildGStep(); err != nil {
		m.Close()
		return nil, fmt.Errorf("build generator step: %w", err)
	}
	m.z = make([]float32, cfg.Batch*cfg.Latent)
	m.fake = make([]float32, cfg.Batch*m.shape.Size())
	return m, nil
}

// Family implements Model.
func (m *DCGAN) Family() string { return "gan" }

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
	for _, p := range append(m.Gen.params(), m.Disc.params()...) {
		n += p.T.Shape().TotalSize()
	}
	return n
}

// State implements Model: the generator's weights and batch-norm running
// statistics, the discriminator's weights, then both Adams' moments, named
// like PyTorch's state_dict and optimizer state. Convolution weights are
// stored out×in×kh×kw, as PyTorch stores them.
func (m *DCGAN) State() []NamedTensor {
	var out []NamedTensor
	out = append(out, m.Gen.state()...)
	out = append(out, m.Disc.params()...)
	for _, o := range []struct {
		name string
		opt  *Adam
		ps   []NamedTensor
	}{{"optim_g", m.optG, m.Gen.params()}, {"optim_d", m.optD, m.Disc.params()}} {
		for i, p := range o.ps {
			mo, v := o.opt.Moments(i)
			out = append(out,
				NamedTensor{Name: o.name + "." + p.Name + ".exp_avg", T: mo, Transposed: p.Transposed},
				NamedTensor{Name: o.name + "." + p.Name + ".exp_avg_sq", T: v, Transposed: p.Transposed})
		}
	}
	return out
}

// Close implements Model.
func (m *DCGAN) Close() error {
	var errs []error
	if m.gtrain != nil {
		errs = append(errs, m.gtrain.vm.Close())
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
	m.gtrain, m.dstep, m.gstep = nil, nil, nil
	m.fwd = map[int]*dcGenEvalGraph{}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Building blocks: convolution, bias-free linear, batch norm. They keep their
// weights in tensors outside any graph, like Linear, so every graph built
// from them reads the same (in-place updated) values.

// dcConv is a 2-D convolution with PyTorch's nn.Conv2d semantics
// (cross-correlation, NCHW, weights out×in×kh×kw) and default
// initialisation: W and b uniform in ±1/sqrt(in·kh·kw), drawn from the
// seeded rng (never from Gorgonia's clock-seeded initialisers).
type dcConv struct {
	Name                    string
	In, Out, K, Stride, Pad int
	W, B                    *tensor.Dense // B is nil without bias
}

func newDCConv(name string, in, out, k, stride, pad int, bias bool, dt tensor.Dtype, rng *rand.Rand) *dcConv {
	c := &dcConv{Name: name, In: in, Out: out, K: k, Stride: stride, Pad: pad,
		W: tensor.New(tensor.WithShape(out, in, k, k), tensor.Of(dt))}
	bound := 1 / math.Sqrt(float64(in*k*k))
	for i := 0; i < out*in*k*k; i++ { // row-major out×in×kh×kw, PyTorch's order
		setAt(c.W, i, (rng.Float64()*2-1)*bound)
	}
	if bias {
		c.B = tensor.New(tensor.WithShape(out), tensor.Of(dt))
		for o := 0; o < out; o++ {
			setAt(c.B, o, (rng.Float64()*2-1)*bound)
		}
	}
	return c
}

func (c *dcConv) params() []NamedTensor {
	ps := []NamedTensor{{Name: c.Name + ".weight", T: c.W}}
	if c.B != nil {
		ps = append(ps, NamedTensor{Name: c.Name + ".bias", T: c.B})
	}
	return ps
}

// nodes adds the layer's weights to g; b is nil without bias.
func (c *dcConv) nodes(g *G.ExprGraph) (w, b *G.Node) {
	w = G.NewTensor(g, c.W.Dtype(), 4, G.WithShape(c.Out, c.In, c.K, c.K), G.WithValue(c.W), G.WithName(c.Name+".weight"))
	if c.B != nil {
		b = G.NewVector(g, c.B.Dtype(), G.WithShape(c.Out), G.WithValue(c.B), G.WithName(c.Name+".bias"))
	}
	return w, b
}

// apply convolves x (N, In, H, W) and adds the bias per output channel.
func (c *dcConv) apply(x, w, b *G.Node) (*G.Node, error) {
	y, err := G.Conv2d(x, w, tensor.Shape{c.K, c.K}, []int{c.Pad, c.Pad}, []int{c.Stride, c.Stride}, []int{1, 1})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	if b == nil {
		return y, nil
	}
	if y, err = dcChannelOp(G.BroadcastAdd, y, b); err != nil {
		return nil, fmt.Errorf("%s bias: %w", c.Name, err)
	}
	return y, nil
}

// dcChannelOp applies a broadcasting binary op between x (N, C, H, W) and a
// per-channel vector v (C).
func dcChannelOp(op func(a, b *G.Node, l, r []byte) (*G.Node, error), x, v *G.Node) (*G.Node, error) {
	s := x.Shape()
	n, c, hw := s[0], s[1], s[2]*s[3]
	x3, err := G.Reshape(x, tensor.Shape{n, c, hw})
	if err != nil {
		return nil, err
	}
	v3, err := G.Reshape(v, tensor.Shape{1, c, 1})
	if err != nil {
		return nil, err
	}
	y, err := op(x3, v3, nil, []byte{0, 2})
	if err != nil {
		return nil, err
	}
	return G.Reshape(y, s.Clone())
}

// dcDense is a bias-free linear layer y = x·W (W stored in×out, written
// out×in to checkpoints), initialised like nn.Linear(bias=False).
type dcDense struct {
	Name    string
	In, Out int
	W       *tensor.Dense
}

func newDCDense(name string, in, out int, dt tensor.Dtype, rng *rand.Rand) *dcDense {
	d := &dcDense{Name: name, In: in, Out: out, W: tensor.New(tensor.WithShape(in, out), tensor.Of(dt))}
	bound := 1 / math.Sqrt(float64(in))
	for o := 0; o < out; o++ { // PyTorch's out×in order
		for i := 0; i < in; i++ {
			setAt(d.W, i*out+o, (rng.Float64()*2-1)*bound)
		}
	}
	return d
}

func (d *dcDense) params() []NamedTensor {
	return []NamedTensor{{Name: d.Name + ".weight", T: d.W, Transposed: true}}
}

func (d *dcDense) node(g *G.ExprGraph) *G.Node {
	return G.NewMatrix(g, d.W.Dtype(), G.WithShape(d.In, d.Out), G.WithValue(d.W), G.WithName(d.Name+".weight"))
}

// dcBatchNorm is PyTorch's BatchNorm2d built from Gorgonia ops: in training
// mode it normalises with the batch mean and biased variance over (N, H, W)
// and the caller folds those statistics into the running ones (update); in
// evaluation mode it uses the running statistics. Gorgonia's own BatchNorm
// is not used: its running statistics live inside each graph's op (so the
// sampling and training graphs would not share them), SetTraining(true)
// resets them, its γ/β are full-shape tensors with clock-seeded Glorot
// initialisation, and its gradient op reads inputs it does not have.
type dcBatchNorm struct {
	Name            string
	C               int
	Momentum, Eps   float64
	Gamma, Beta     *tensor.Dense // learnable: PyTorch's weight and bias
	RunMean, RunVar *tensor.Dense // buffers: running_mean, running_var
}

func newDCBatchNorm(name string, c int, dt tensor.Dtype) *dcBatchNorm {
	bn := &dcBatchNorm{Name: name, C: c, Momentum: 0.1, Eps: 1e-5,
		Gamma:   tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		Beta:    tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		RunMean: tensor.New(tensor.WithShape(c), tensor.Of(dt)),
		RunVar:  tensor.New(tensor.WithShape(c), tensor.Of(dt)),
	}
	for i := 0; i < c; i++ {
		setAt(bn.Gamma, i, 1)
		setAt(bn.RunVar, i, 1)
	}
	return bn
}

func (bn *dcBatchNorm) params() []NamedTensor {
	return []NamedTensor{{Name: bn.Name + ".weight", T: bn.Gamma}, {Name: bn.Name + ".bias", T: bn.Beta}}
}

func (bn *dcBatchNorm) state() []NamedTensor {
	return append(bn.params(),
		NamedTensor{Name: bn.Name + ".running_mean", T: bn.RunMean},
		NamedTensor{Name: bn.Name + ".running_var", T: bn.RunVar})
}

// dcBNNodes are one graph's view of a batch norm: the learnable γ and β,
// and (evaluation graphs only) the running statistics as inputs.
type dcBNNodes struct {
	gamma, beta *G.Node
	rm, rv      *G.Node
}

func (bn *dcBatchNorm) nodes(g *G.ExprGraph, train bool) *dcBNNodes {
	dt := bn.Gamma.Dtype()
	n := &dcBNNodes{
		gamma: G.NewVector(g, dt, G.WithShape(bn.C), G.WithValue(bn.Gamma), G.WithName(bn.Name+".weight")),
		beta:  G.NewVector(g, dt, G.WithShape(bn.C), G.WithValue(bn.Beta), G.WithName(bn.Name+".bias")),
	}
	if !train {
		n.rm = G.NewVector(g, dt, G.WithShape(bn.C), G.WithValue(bn.RunMean), G.WithName(bn.Name+".running_mean"))
		n.rv = G.NewVector(g, dt, G.WithShape(bn.C), G.WithValue(bn.RunVar), G.WithName(bn.Name+".running_var"))
	}
	return n
}

// dcConst is a scalar constant of dtype dt.
func dcConst(dt tensor.Dtype, x float64) *G.Node {
	if dt == tensor.Float64 {
		return G.NewConstant(x)
	}
	return G.NewConstant(float32(x))
}

// apply normalises x (N, C, H, W). In training mode it also returns the
// batch mean and biased variance (C) for update.
func (bn *dcBatchNorm) apply(x *G.Node, n *dcBNNodes) (y, mean, variance *G.Node, err error) {
	dt := bn.Gamma.Dtype()
	eps := dcConst(dt, bn.Eps)
	if n.rm != nil { // evaluation: y = x·s + (β − μ·s), s = γ/sqrt(σ²+ε)
		ve, err := G.Add(n.rv, eps)
		if err != nil {
			return nil, nil, nil, err
		}
		inv, err := G.InverseSqrt(ve)
		if err != nil {
			return nil, nil, nil, err
		}
		scale, err := G.HadamardProd(inv, n.gamma)
		if err != nil {
			return nil, nil, nil, err
		}
		ms, err := G.HadamardProd(n.rm, scale)
		if err != nil {
			return nil, nil, nil, err
		}
		shift, err := G.Sub(n.beta, ms)
		if err != nil {
			return nil, nil, nil, err
		}
		if y, err = dcChannelOp(G.BroadcastHadamardProd, x, scale); err != nil {
			return nil, nil, nil, err
		}
		y, err = dcChannelOp(G.BroadcastAdd, y, shift)
		return y, nil, nil, err
	}
	s := x.Shape()
	nb, c, hw := s[0], s[1], s[2]*s[3]
	x3, err := G.Reshape(x, tensor.Shape{nb, c, hw})
	if err != nil {
		return nil, nil, nil, err
	}
	if mean, err = G.Mean(x3, 0, 2); err != nil {
		return nil, nil, nil, fmt.Errorf("%s mean: %w", bn.Name, err)
	}
	m3, err := G.Reshape(mean, tensor.Shape{1, c, 1})
	if err != nil {
		return nil, nil, nil, err
	}
	xc, err := G.BroadcastSub(x3, m3, nil, []byte{0, 2})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s centre: %w", bn.Name, err)
	}
	sq, err := G.Square(xc)
	if err != nil {
		return nil, nil, nil, err
	}
	if variance, err = G.Mean(sq, 0, 2); err != nil {
		return nil, nil, nil, fmt.Errorf("%s variance: %w", bn.Name, err)
	}
	ve, err := G.Add(variance, eps)
	if err != nil {
		return nil, nil, nil, err
	}
	inv, err := G.InverseSqrt(ve)
	if err != nil {
		return nil, nil, nil, err
	}
	scale, err := G.HadamardProd(inv, n.gamma)
	if err != nil {
		return nil, nil, nil, err
	}
	s3, err := G.Reshape(scale, tensor.Shape{1, c, 1})
	if err != nil {
		return nil, nil, nil, err
	}
	b3, err := G.Reshape(n.beta, tensor.Shape{1, c, 1})
	if err != nil {
		return nil, nil, nil, err
	}
	if y, err = G.BroadcastHadamardProd(xc, s3, nil, []byte{0, 2}); err != nil {
		return nil, nil, nil, err
	}
	if y, err = G.BroadcastAdd(y, b3, nil, []byte{0, 2}); err != nil {
		return nil, nil, nil, err
	}
	if y, err = G.Reshape(y, s.Clone()); err != nil {
		return nil, nil, nil, err
	}
	return y, mean, variance, nil
}

// update folds one training batch's statistics into the running ones, as
// PyTorch does: r ← (1−m)·r + m·stat, with the unbiased variance
// (σ²·n/(n−1), n = N·H·W values per channel).
func (bn *dcBatchNorm) update(mean, variance []float64, n int) error {
	if len(mean) != bn.C || len(variance) != bn.C {
		return fmt.Errorf("%s: %d means and %d variances for %d channels", bn.Name, len(mean), len(variance), bn.C)
	}
	if !dcFinite(mean) || !dcFinite(variance) {
		return fmt.Errorf("%s: batch statistics are not finite", bn.Name)
	}
	unbias := 1.0
	if n > 1 {
		unbias = float64(n) / float64(n-1)
	}
	m := bn.Momentum
	switch rm := bn.RunMean.Data().(type) {
	case []float32:
		rv := bn.RunVar.Data().([]float32)
		for c := range rm {
			rm[c] = float32(1-m)*rm[c] + float32(m)*float32(mean[c])
			rv[c] = float32(1-m)*rv[c] + float32(m)*float32(variance[c]*unbias)
		}
	case []float64:
		rv := bn.RunVar.Data().([]float64)
		for c := range rm {
			rm[c] = (1-m)*rm[c] + m*mean[c]
			rv[c] = (1-m)*rv[c] + m*variance[c]*unbias
		}
	}
	return nil
}

// dcFloats reads a vector value as float64s.
func dcFloats(v G.Value) ([]float64, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("value %v is not a tensor", v)
	}
	switch d := t.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out, nil
	case []float64:
		return append([]float64(nil), d...), nil
	}
	return nil, fmt.Errorf("value of type %T is not a float vector", t.Data())
}

func dcFinite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// dcUpsample2 is nearest-neighbour ×2 upsampling of (N, C, H, W).
func dcUpsample2(x *G.Node) (*G.Node, error) { return G.Upsample2D(x, 2) }

// ---------------------------------------------------------------------------
// The two networks.

// dcGenerator is the DCGAN generator (see DCGANConfig).
type dcGenerator struct {
	F2, S4, C, Side int
	FC              *dcDense
	BN0             *dcBatchNorm
	Conv1           *dcConv
	BN1             *dcBatchNorm
	Conv2           *dcConv
}

func newDCGenerator(cfg DCGANConfig, dt tensor.Dtype, rng *rand.Rand) *dcGenerator {
	f, s4 := cfg.GFeatures, cfg.Width/4
	return &dcGenerator{
		F2: 2 * f, S4: s4, C: cfg.Channels, Side: cfg.Width,
		FC:    newDCDense("generator.fc", cfg.Latent, 2*f*s4*s4, dt, rng),
		BN0:   newDCBatchNorm("generator.bn0", 2*f, dt),
		Conv1: newDCConv("generator.conv1", 2*f, f, 3, 1, 1, false, dt, rng),
		BN1:   newDCBatchNorm("generator.bn1", f, dt),
		Conv2: newDCConv("generator.conv2", f, cfg.Channels, 3, 1, 1, true, dt, rng),
	}
}

// params lists the learnable tensors, in the order the graphs' weight nodes use.
func (gn *dcGenerator) params() []NamedTensor {
	var ps []NamedTensor
	ps = append(ps, gn.FC.params()...)
	ps = append(ps, gn.BN0.params()...)
	ps = append(ps, gn.Conv1.params()...)
	ps = append(ps, gn.BN1.params()...)
	ps = append(ps, gn.Conv2.params()...)
	return ps
}

// state lists params and running statistics in state_dict order.
func (gn *dcGenerator) state() []NamedTensor {
	var ps []NamedTensor
	ps = append(ps, gn.FC.params()...)
	ps = append(ps, gn.BN0.state()...)
	ps = append(ps, gn.Conv1.params()...)
	ps = append(ps, gn.BN1.state()...)
	ps = append(ps, gn.Conv2.params()...)
	return ps
}

// dcGenNodes are one graph's view of the generator's weights.
type dcGenNodes struct {
	fc, c1w, c2w, c2b *G.Node
	bn0, bn1          *dcBNNodes
}

func (gn *dcGenerator) nodes(g *G.ExprGraph, train bool) *dcGenNodes {
	n := &dcGenNodes{fc: gn.FC.node(g), bn0: gn.BN0.nodes(g, train)}
	n.c1w, _ = gn.Conv1.nodes(g)
	n.bn1 = gn.BN1.nodes(g, train)
	n.c2w, n.c2b = gn.Conv2.nodes(g)
	return n
}

// all lists the learnable nodes in params order.
func (n *dcGenNodes) all() G.Nodes {
	return G.Nodes{n.fc, n.bn0.gamma, n.bn0.beta, n.c1w, n.bn1.gamma, n.bn1.beta, n.c2w, n.c2b}
}

// dcBNStats are the batch statistics of one training forward.
type dcBNStats struct {
	mean, variance [2]*G.Node
}

// forward builds G on z (batch×latent) and returns tanh images (batch, C, S, S).
func (gn *dcGenerator) forward(n *dcGenNodes, z *G.Node, batch int) (*G.Node, *dcBNStats, error) {
	st := &dcBNStats{}
	h, err := G.Mul(z, n.fc)
	if err != nil {
		return nil, nil, fmt.Errorf("generator.fc: %w", err)
	}
	if h, err = G.Reshape(h, tensor.Shape{batch, gn.F2, gn.S4, gn.S4}); err != nil {
		return nil, nil, err
	}
	if h, st.mean[0], st.variance[0], err = gn.BN0.apply(h, n.bn0); err != nil {
		return nil, nil, fmt.Errorf("generator.bn0: %w", err)
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, nil, err
	}
	if h, err = dcUpsample2(h); err != nil {
		return nil, nil, err
	}
	if h, err = gn.Conv1.apply(h, n.c1w, nil); err != nil {
		return nil, nil, err
	}
	if h, st.mean[1], st.variance[1], err = gn.BN1.apply(h, n.bn1); err != nil {
		return nil, nil, fmt.Errorf("generator.bn1: %w", err)
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, nil, err
	}
	if h, err = dcUpsample2(h); err != nil {
		return nil, nil, err
	}
	if h, err = gn.Conv2.apply(h, n.c2w, n.c2b); err != nil {
		return nil, nil, err
	}
	if h, err = G.Tanh(h); err != nil {
		return nil, nil, err
	}
	return h, st, nil
}

// dcDiscriminator is the DCGAN discriminator (see DCGANConfig).
type dcDiscriminator struct {
	Slope        float64
	Conv1, Conv2 *dcConv
	FC           *Linear
}

func newDCDiscriminator(cfg DCGANConfig, dt tensor.Dtype, rng *rand.Rand) *dcDiscriminator {
	f, s4 := cfg.DFeatures, cfg.Width/4
	return &dcDiscriminator{
		Slope: cfg.Slope,
		Conv1: newDCConv("discriminator.conv1", cfg.Channels, f, 4, 2, 1, true, dt, rng),
		Conv2: newDCConv("discriminator.conv2", f, 2*f, 4, 2, 1, true, dt, rng),
		FC:    NewLinear("discriminator.fc", 2*f*s4*s4, 1, dt, rng),
	}
}

func (d *dcDiscriminator) params() []NamedTensor {
	var ps []NamedTensor
	ps = append(ps, d.Conv1.params()...)
	ps = append(ps, d.Conv2.params()...)
	ps = append(ps, NamedTensor{Name: d.FC.Name + ".weight", T: d.FC.W, Transposed: true}, NamedTensor{Name: d.FC.Name + ".bias", T: d.FC.B})
	return ps
}

type dcDiscNodes struct {
	c1w, c1b, c2w, c2b, fcw, fcb *G.Node
}

func (d *dcDiscriminator) nodes(g *G.ExprGraph) *dcDiscNodes {
	n := &dcDiscNodes{}
	n.c1w, n.c1b = d.Conv1.nodes(g)
	n.c2w, n.c2b = d.Conv2.nodes(g)
	n.fcw, n.fcb = d.FC.Nodes(g)
	return n
}

func (n *dcDiscNodes) all() G.Nodes {
	return G.Nodes{n.c1w, n.c1b, n.c2w, n.c2b, n.fcw, n.fcb}
}

// forward builds D on x (batch, C, S, S) and returns the logits (batch×1).
func (d *dcDiscriminator) forward(n *dcDiscNodes, x *G.Node, batch int) (*G.Node, error) {
	h, err := d.Conv1.apply(x, n.c1w, n.c1b)
	if err != nil {
		return nil, err
	}
	if h, err = G.LeakyRelu(h, d.Slope); err != nil {
		return nil, err
	}
	if h, err = d.Conv2.apply(h, n.c2w, n.c2b); err != nil {
		return nil, err
	}
	if h, err = G.LeakyRelu(h, d.Slope); err != nil {
		return nil, err
	}
	if h, err = G.Reshape(h, tensor.Shape{batch, d.FC.In}); err != nil {
		return nil, fmt.Errorf("discriminator flatten: %w", err)
	}
	return Apply(h, n.fcw, n.fcb)
}

// ---------------------------------------------------------------------------
// Graphs.

// dcGenTrainGraph is G in training mode for the training batch: it makes
// the step's fake batch and the batch-norm statistics.
type dcGenTrainGraph struct {
	vm             G.VM
	z              *tensor.Dense
	out            G.Value
	mean, variance [2]G.Value
}

func (m *DCGAN) buildGenTrain() (*dcGenTrainGraph, error) {
	b := m.cfg.Batch
	eg := G.NewGraph()
	f := &dcGenTrainGraph{z: tensor.New(tensor.WithShape(b, m.cfg.Latent), tensor.Of(m.dt))}
	z := G.NewMatrix(eg, m.dt, G.WithShape(b, m.cfg.Latent), G.WithValue(f.z), G.WithName("z"))
	out, st, err := m.Gen.forward(m.Gen.nodes(eg, true), z, b)
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	for i := range st.mean {
		G.Read(st.mean[i], &f.mean[i])
		G.Read(st.variance[i], &f.variance[i])
	}
	f.vm = G.NewTapeMachine(eg)
	return f, nil
}

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
	eg := G.NewGraph()
	f := &dcGenEvalGraph{z: tensor.New(tensor.WithShape(batch, m.cfg.Latent), tensor.Of(m.dt))}
	z := G.NewMatrix(eg, m.dt, G.WithShape(batch, m.cfg.Latent), G.WithValue(f.z), G.WithName("z"))
	out, _, err := m.Gen.forward(m.Gen.nodes(eg, false), z, batch)
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	f.vm = G.NewTapeMachine(eg)
	m.fwd[batch] = f
	return f, nil
}

// dcSampleChunk is the batch size of the sampling graph.
const dcSampleChunk = 64

// Sample implements Model: G in evaluation mode (batch norm with the
// running statistics), images in [0, 1], C×H×W each.
func (m *DCGAN) Sample(z []float32) ([]float32, error) {
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
	weights    G.Nodes
	loss       G.Value
}

func (m *DCGAN) imageShape(batch int) tensor.Shape {
	return tensor.Shape{batch, m.cfg.Channels, m.cfg.Height, m.cfg.Width}
}

func (m *DCGAN) buildDStep() (*dcDStepGraph, error) {
	b := m.cfg.Batch
	eg := G.NewGraph()
	s := &dcDStepGraph{
		real: tensor.New(tensor.WithShape(m.imageShape(b)...), tensor.Of(m.dt)),
		fake: tensor.New(tensor.WithShape(m.imageShape(b)...), tensor.Of(m.dt)),
	}
	dn := m.Disc.nodes(eg)
	s.weights = dn.all()
	xr := G.NewTensor(eg, m.dt, 4, G.WithShape(m.imageShape(b)...), G.WithValue(s.real), G.WithName("x_real"))
	xf := G.NewTensor(eg, m.dt, 4, G.WithShape(m.imageShape(b)...), G.WithValue(s.fake), G.WithName("x_fake"))
	lr, err := m.Disc.forward(dn, xr, b)
	if err != nil {
		return nil, err
	}
	lf, err := m.Disc.forward(dn, xf, b)
	if err != nil {
		return nil, err
	}
	lossReal, err := bceWithLogits(lr, true)
	if err != nil {
		return nil, err
	}
	lossFake, err := bceWithLogits(lf, false)
	if err != nil {
		return nil, err
	}
	cost, err := G.Add(lossReal, lossFake)
	if err != nil {
		return nil, err
	}
	G.Read(cost, &s.loss)
	if _, err := G.Grad(cost, s.weights...); err != nil {
		return nil, fmt.Errorf("differentiate D loss: %w", err)
	}
	s.vm = G.NewTapeMachine(eg, G.BindDualValues(s.weights...))
	return s, nil
}

// dcGStepGraph computes L_G = BCE(D(G(z)), 1), G in training mode, and its
// gradient with respect to G's weights only.
type dcGStepGraph struct {
	vm      G.VM
	z       *tensor.Dense
	weights G.Nodes
	loss    G.Value
}

func (m *DCGAN) buildGStep() (*dcGStepGraph, error) {
	b := m.cfg.Batch
	eg := G.NewGraph()
	s := &dcGStepGraph{z: tensor.New(tensor.WithShape(b, m.cfg.Latent), tensor.Of(m.dt))}
	gn := m.Gen.nodes(eg, true)
	s.weights = gn.all()
	z := G.NewMatrix(eg, m.dt, G.WithShape(b, m.cfg.Latent), G.WithValue(s.z), G.WithName("z"))
	fake, _, err := m.Gen.forward(gn, z, b)
	if err != nil {
		return nil, err
	}
	logits, err := m.Disc.forward(m.Disc.nodes(eg), fake, b)
	if err != nil {
		return nil, err
	}
	cost, err := bceWithLogits(logits, true)
	if err != nil {
		return nil, err
	}
	G.Read(cost, &s.loss)
	if _, err := G.Grad(cost, s.weights...); err != nil {
		return nil, fmt.Errorf("differentiate G loss: %w", err)
	}
	s.vm = G.NewTapeMachine(eg, G.BindDualValues(s.weights...))
	return s, nil
}

// generateTrain runs G in training mode on m.z into m.fake and returns the
// batch statistics of its two batch norms (not yet folded in).
func (m *DCGAN) generateTrain() (mean, variance [2][]float64, err error) {
	f := m.gtrain
	if err = copyInto(f.z, m.z); err != nil {
		return
	}
	f.vm.Reset()
	if err = f.vm.RunAll(); err != nil {
		err = fmt.Errorf("generator forward: %w", err)
		return
	}
	if err = copyOut(m.fake, f.out); err != nil {
		return
	}
	for i := range f.mean {
		if mean[i], err = dcFloats(f.mean[i]); err != nil {
			return
		}
		if variance[i], err = dcFloats(f.variance[i]); err != nil {
			return
		}
	}
	return
}

// updateRunningStats folds a training forward's statistics into bn0 and bn1.
func (m *DCGAN) updateRunningStats(mean, variance [2][]float64) error {
	b, s4 := m.cfg.Batch, m.Gen.S4
	for i, bn := range []*dcBatchNorm{m.Gen.BN0, m.Gen.BN1} {
		side := s4 << i // bn0 sees s×s maps, bn1 2s×2s
		if err := bn.update(mean[i], variance[i], b*side*side); err != nil {
			return err
		}
	}
	return nil
}

// TrainStep implements Model. Each image is C planes of H×W pixels.
func (m *DCGAN) TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error) {
	b, n := m.cfg.Batch, m.shape.Size()
	if len(batch) != b*n {
		return nil, fmt.Errorf("gan step: batch has %d values, want %d (%d images of %d)", len(batch), b*n, b, n)
	}
	// fake = G(z), once, in training mode.
	FillNormal(m.z, rng)
	mean, variance, err := m.generateTrain()
	if err != nil {
		return nil, err
	}
	lossD, err := m.discStep(batch)
	if err != nil {
		return nil, err
	}
	// That forward's statistics update the running ones (PyTorch does it
	// during the forward; here it waits until the D loss proved finite).
	if err := m.updateRunningStats(mean, variance); err != nil {
		return nil, err
	}
	lossG, err := m.genStep()
	if err != nil {
		return nil, err
	}
	return []float64{lossD, lossG}, nil
}

func (m *DCGAN) discStep(batch []uint8) (float64, error) {
	s := m.dstep
	scalePixels(s.real, batch)
	if err := copyInto(s.fake, m.fake); err != nil {
		return 0, err
	}
	if err := runGrad(s.vm, s.weights); err != nil {
		return 0, fmt.Errorf("discriminator step: %w", err)
	}
	loss, err := scalar(s.loss)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, &NonFiniteLossError{Name: "D loss", Value: loss}
	}
	grads, err := gradsOf(s.weights)
	if err != nil {
		return 0, err
	}
	return loss, m.optD.Update(grads)
}

// genStep runs the G update through the just-updated D. Like the MLP GAN it
// recomputes G(z) for the same z (same weights, same batch statistics, so
// the same fake) inside its graph.
func (m *DCGAN) genStep() (float64, error) {
	s := m.gstep
	if err := copyInto(s.z, m.z); err != nil {
		return 0, err
	}
	if err := runGrad(s.vm, s.weights); err != nil {
		return 0, fmt.Errorf("generator step: %w", err)
	}
	loss, err := scalar(s.loss)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, &NonFiniteLossError{Name: "G loss", Value: loss}
	}
	grads, err := gradsOf(s.weights)
	if err != nil {
		return 0, err
	}
	return loss, m.optG.Update(grads)
}
