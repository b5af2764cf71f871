package models

import (
	"errors"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func init() {
	register("vae", "conv", func(c []byte) (Model, error) { return build(c, DefaultConvVAEConfig(), NewConvVAE) })
}

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
	Beta2    float64 `json:"beta2"`
	Batch    int     `json:"batch"`
	// Beta weighs the KL term of the loss (1 = the plain VAE, >1 = β-VAE).
	Beta float64 `json:"kl_beta"`
	// WarmupSteps is the KL warm-up: the KL weight rises linearly from 0 to
	// Beta over this many optimizer steps (0 = no warm-up).
	WarmupSteps int `json:"kl_warmup_steps"`
	// Temperature scales prior samples: Sample decodes z*Temperature.
	Temperature float64 `json:"temperature"`
	Seed        uint64  `json:"seed"`
}

// DefaultConvVAEConfig is a conv VAE for MNIST: 28×28×1 images, 32 and 64
// feature maps, a 20-dimensional latent, Adam 1e-3 (0.9, 0.999), batch 64,
// KL weight 1, no warm-up.
func DefaultConvVAEConfig() ConvVAEConfig {
	return ConvVAEConfig{
		Arch: "conv", Latent: 20, Features: 32, Width: 28, Height: 28, Channels: 1,
		LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Batch: 64,
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
// constructor relaxes to any multiple of 4 for small tests.
func (c ConvVAEConfig) validate() error {
	switch {
	case c.Arch != "" && c.Arch != "conv":
		return fmt.Errorf("conv VAE config has arch %q, want \"conv\"", c.Arch)
	case c.Latent < 1 || c.Latent > 4096:
		return fmt.Errorf("latent size must be 1..4096, got %d", c.Latent)
	case c.Features < 1 || c.Features > 256:
		return fmt.Errorf("feature maps must be 1..256, got %d", c.Features)
	case c.Width < 4 || c.Height < 4 || c.Width%4 != 0 || c.Height%4 != 0 || c.Channels < 1 || c.Width*c.Height*c.Channels > 1<<16:
		return fmt.Errorf("image shape %dx%dx%d is not supported", c.Width, c.Height, c.Channels)
	}
	if err := validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch); err != nil {
		return err
	}
	return validateVAETerms(c.Beta, c.WarmupSteps, c.Temperature)
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
// here cvUpsample2, which computes G.Upsample2D(x, 2) faster) followed by a
// convolution stands in for a transposed convolution, which Gorgonia lacks.
// The loss is the MLP VAE's:
// L = BCE(recon, x) + w*KL summed over the batch, with BCE computed from
// the logits by bceLogitsSumOp, x = pixel/255, and w the KL weight (Beta,
// after the optional warm-up).
type ConvVAE struct {
	cfg   ConvVAEConfig
	dt    tensor.Dtype
	shape ImageShape

	encConv1, encConv2 *cvConv
	fcMu, fcLogvar     *Linear
	decFC              *Linear
	decConv1, decConv2 *cvConv

	opt   *Adam
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
	v.encConv1 = cvNewConv("encoder.conv1", c, f, 4, 2, 1, dt, rng)
	v.encConv2 = cvNewConv("encoder.conv2", f, 2*f, 4, 2, 1, dt, rng)
	v.fcMu = NewLinear("fc_mu", flat, cfg.Latent, dt, rng)
	v.fcLogvar = NewLinear("fc_logvar", flat, cfg.Latent, dt, rng)
	v.decFC = NewLinear("decoder.fc", cfg.Latent, flat, dt, rng)
	v.decConv1 = cvNewConv("decoder.conv1", 2*f, f, 3, 1, 1, dt, rng)
	v.decConv2 = cvNewConv("decoder.conv2", f, c, 3, 1, 1, dt, rng)
	v.opt = NewAdam(tensorsOf(v.Params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	var err error
	if v.train, err = v.buildTrain(); err != nil {
		return nil, fmt.Errorf("build conv vae training step: %w", err)
	}
	v.eps = make([]float32, cfg.Batch*cfg.Latent)
	return v, nil
}

// cvConv is a 2D convolution layer whose weights live outside any graph.
// W is stored [out, in, k, k] as PyTorch's nn.Conv2d stores it (and as
// Gorgonia's Conv2d takes its filter), so checkpoints write it unchanged.
type cvConv struct {
	Name                    string
	In, Out, K, Stride, Pad int
	W, B                    *tensor.Dense
}

// cvNewConv makes a layer with PyTorch's default nn.Conv2d initialisation
// (kaiming_uniform with a = sqrt(5)): W and b uniform in ±1/sqrt(in*k*k),
// W drawn first in its row-major [out, in, k, k] order, then b.
func cvNewConv(name string, in, out, k, stride, pad int, dt tensor.Dtype, rng *rand.Rand) *cvConv {
	bound := 1 / math.Sqrt(float64(in*k*k))
	l := &cvConv{Name: name, In: in, Out: out, K: k, Stride: stride, Pad: pad,
		W: tensor.New(tensor.WithShape(out, in, k, k), tensor.Of(dt)),
		B: tensor.New(tensor.WithShape(out), tensor.Of(dt)),
	}
	for i := 0; i < out*in*k*k; i++ {
		setAt(l.W, i, (rng.Float64()*2-1)*bound)
	}
	for o := 0; o < out; o++ {
		setAt(l.B, o, (rng.Float64()*2-1)*bound)
	}
	return l
}

// nodes adds the layer's weights to g as learnable nodes bound to the
// shared tensors.
func (l *cvConv) nodes(g *G.ExprGraph) (w, b *G.Node) {
	w = G.NewTensor(g, l.W.Dtype(), 4, G.WithShape(l.Out, l.In, l.K, l.K), G.WithValue(l.W), G.WithName(l.Name+".weight"))
	b = G.NewVector(g, l.B.Dtype(), G.WithShape(l.Out), G.WithValue(l.B), G.WithName(l.Name+".bias"))
	return w, b
}

// cvApplyConv builds conv(x) + b for an NCHW x.
func cvApplyConv(l *cvConv, x, w, b *G.Node) (*G.Node, error) {
	y, err := G.Conv2d(x, w, tensor.Shape{l.K, l.K}, []int{l.Pad, l.Pad}, []int{l.Stride, l.Stride}, []int{1, 1})
	if err != nil {
		return nil, fmt.Errorf("conv %s: %w", l.Name, err)
	}
	if y, err = G.BroadcastAdd(y, b, nil, []byte{0, 2, 3}); err != nil {
		return nil, fmt.Errorf("conv bias %s: %w", l.Name, err)
	}
	return y, nil
}

func (v *ConvVAE) convs() []*cvConv { return []*cvConv{v.encConv1, v.encConv2, v.decConv1, v.decConv2} }

// Params lists the weights with the PyTorch module's state_dict names, in
// its constructor's order: encoder.conv1.weight [out, in, kh, kw],
// encoder.conv1.bias, encoder.conv2.*, fc_mu.*, fc_logvar.*, decoder.fc.*,
// decoder.conv1.*, decoder.conv2.*. Linear weights are stored in×out and
// marked Transposed; convolution weights are stored as PyTorch has them.
func (v *ConvVAE) Params() []NamedTensor {
	conv := func(l *cvConv) []NamedTensor {
		return []NamedTensor{{Name: l.Name + ".weight", T: l.W}, {Name: l.Name + ".bias", T: l.B}}
	}
	lin := func(l *Linear) []NamedTensor {
		return []NamedTensor{{Name: l.Name + ".weight", T: l.W, Transposed: true}, {Name: l.Name + ".bias", T: l.B}}
	}
	var ps []NamedTensor
	ps = append(ps, conv(v.encConv1)...)
	ps = append(ps, conv(v.encConv2)...)
	ps = append(ps, lin(v.fcMu)...)
	ps = append(ps, lin(v.fcLogvar)...)
	ps = append(ps, lin(v.decFC)...)
	ps = append(ps, conv(v.decConv1)...)
	ps = append(ps, conv(v.decConv2)...)
	return ps
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
	return slices.Concat(ps, v.opt.MomentTensors("optim", ps))
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

// cvNodes are one graph's view of the conv VAE's weights, in Params order.
type cvNodes struct {
	encW1, encB1, encW2, encB2 *G.Node
	muW, muB, lvW, lvB         *G.Node
	fcW, fcB                   *G.Node
	decW1, decB1, decW2, decB2 *G.Node
}

func (v *ConvVAE) nodes(g *G.ExprGraph) *cvNodes {
	n := &cvNodes{}
	n.encW1, n.encB1 = v.encConv1.nodes(g)
	n.encW2, n.encB2 = v.encConv2.nodes(g)
	n.muW, n.muB = v.fcMu.Nodes(g)
	n.lvW, n.lvB = v.fcLogvar.Nodes(g)
	n.fcW, n.fcB = v.decFC.Nodes(g)
	n.decW1, n.decB1 = v.decConv1.nodes(g)
	n.decW2, n.decB2 = v.decConv2.nodes(g)
	return n
}

func (n *cvNodes) all() G.Nodes {
	return G.Nodes{n.encW1, n.encB1, n.encW2, n.encB2, n.muW, n.muB, n.lvW, n.lvB,
		n.fcW, n.fcB, n.decW1, n.decB1, n.decW2, n.decB2}
}

// encode builds mu and logvar of x (batch, C, H, W).
func (v *ConvVAE) encode(n *cvNodes, x *G.Node) (mu, logvar *G.Node, err error) {
	h, err := cvApplyConv(v.encConv1, x, n.encW1, n.encB1)
	if err != nil {
		return nil, nil, err
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, nil, err
	}
	if h, err = cvApplyConv(v.encConv2, h, n.encW2, n.encB2); err != nil {
		return nil, nil, err
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, nil, err
	}
	s := h.Shape()
	if h, err = G.Reshape(h, tensor.Shape{s[0], s[1] * s[2] * s[3]}); err != nil {
		return nil, nil, fmt.Errorf("flatten: %w", err)
	}
	if mu, err = Apply(h, n.muW, n.muB); err != nil {
		return nil, nil, err
	}
	if logvar, err = Apply(h, n.lvW, n.lvB); err != nil {
		return nil, nil, err
	}
	return mu, logvar, nil
}

// decodeLogits builds the decoder on z (batch, L) up to its sigmoid, as a
// (batch, C*H*W) matrix in NCHW order.
func (v *ConvVAE) decodeLogits(n *cvNodes, z *G.Node) (*G.Node, error) {
	b := z.Shape()[0]
	h, err := Apply(z, n.fcW, n.fcB)
	if err != nil {
		return nil, err
	}
	if h, err = G.Reshape(h, tensor.Shape{b, 2 * v.cfg.Features, v.cfg.Height / 4, v.cfg.Width / 4}); err != nil {
		return nil, fmt.Errorf("unflatten: %w", err)
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, err
	}
	if h, err = cvUpsample2(h); err != nil {
		return nil, err
	}
	if h, err = cvApplyConv(v.decConv1, h, n.decW1, n.decB1); err != nil {
		return nil, err
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, err
	}
	if h, err = cvUpsample2(h); err != nil {
		return nil, err
	}
	if h, err = cvApplyConv(v.decConv2, h, n.decW2, n.decB2); err != nil {
		return nil, err
	}
	return G.Reshape(h, tensor.Shape{b, v.shape.Size()})
}

func (v *ConvVAE) buildTrain() (*vaeTrainGraph, error) {
	b, l, dt := v.cfg.Batch, v.cfg.Latent, v.dt
	c, hgt, wid := v.cfg.Channels, v.cfg.Height, v.cfg.Width
	eg := G.NewGraph()
	s := &vaeTrainGraph{
		x:   tensor.New(tensor.WithShape(b, c, hgt, wid), tensor.Of(dt)),
		eps: tensor.New(tensor.WithShape(b, l), tensor.Of(dt)),
	}
	wn := v.nodes(eg)
	s.weights = wn.all()
	x := G.NewTensor(eg, dt, 4, G.WithShape(b, c, hgt, wid), G.WithValue(s.x), G.WithName("x"))
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
	eg := G.NewGraph()
	f := &vaeForwardGraph{in: tensor.New(tensor.WithShape(shape...), tensor.Of(v.dt))}
	wn := v.nodes(eg)
	z := G.NewTensor(eg, v.dt, len(shape), G.WithShape(shape...), G.WithValue(f.in), G.WithName("in"))
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
	f.vm = G.NewTapeMachine(eg)
	return f, nil
}

// Sample implements Model: it decodes z*Temperature (NoiseDim() values an
// image) to images in [0, 1], C×H×W each.
func (v *ConvVAE) Sample(z []float32) ([]float32, error) {
	return vaeSample(z, v.cfg.Latent, v.cfg.Temperature, v.shape.Size(), v.train == nil, &v.dec, v.forwardGraph, "conv vae")
}

// Reconstruct encodes images (uint8 pixels, C×H×W an image) to their
// posterior means, without sampling noise, and decodes them to images in
// [0, 1].
func (v *ConvVAE) Reconstruct(batch []uint8) ([]float32, error) {
	return vaeReconstruct(batch, v.shape.Size(), v.train == nil, &v.rec, v.forwardGraph, "conv vae")
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
	return vaeTrainStep(v.train, v.opt, v.dt, v.eps, batch, v.cfg.Batch, v.shape.Size(), v.KLWeight(), rng)
}

// cvUpsample2 is nearest-neighbour ×2 upsampling of an NCHW x, the same
// function (and, summing each 2×2 block's gradients in float64 in the same
// order, the same gradient, bit for bit) as G.Upsample2D(x, 2). Gorgonia's
// op reads and writes every element through At and SetAt, boxing each value
// (millions of allocations a step) and allocating a fresh gradient every
// run: at batch 64 it took about 40% of a training step's CPU time, as much
// as all the convolutions; this op takes about 2%.
func cvUpsample2(x *G.Node) (*G.Node, error) {
	if x.Shape().Dims() != 4 {
		return nil, fmt.Errorf("upsample: input shape %v is not NCHW", x.Shape())
	}
	return G.ApplyOp(cvUpsample2Op{}, x)
}

type cvUpsample2Op struct{}

func (cvUpsample2Op) Arity() int { return 1 }

func (cvUpsample2Op) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t, t)
}

func (cvUpsample2Op) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, err := cvShape4(ns)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], s[1], 2 * s[2], 2 * s[3]}, nil
}

func (op cvUpsample2Op) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

// UsePreallocDo writes into prealloc when it fits (the tape machine keeps
// one output buffer across runs).
func (cvUpsample2Op) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := cvTensor4(vs)
	if err != nil {
		return nil, err
	}
	s := in.Shape()
	rows, w := s[0]*s[1]*s[2], s[3]
	out := cvOutput(prealloc, in.Dtype(), tensor.Shape{s[0], s[1], 2 * s[2], 2 * s[3]})
	switch src := in.Data().(type) {
	case []float32:
		cvUpsampleRows(out.Data().([]float32), src, rows, w)
	case []float64:
		cvUpsampleRows(out.Data().([]float64), src, rows, w)
	default:
		return nil, fmt.Errorf("upsample: unsupported dtype %v", in.Dtype())
	}
	return out, nil
}

// cvUpsampleRows writes each of the rows (w values) of src twice, each value
// twice, into dst.
func cvUpsampleRows[T float32 | float64](dst, src []T, rows, w int) {
	src, dst = src[:rows*w], dst[:4*rows*w]
	for r := 0; r < rows; r++ {
		in := src[r*w : (r+1)*w]
		o := dst[4*r*w : 4*r*w+2*w]
		for i, x := range in {
			o[2*i], o[2*i+1] = x, x
		}
		copy(dst[4*r*w+2*w:4*(r+1)*w], o)
	}
}

func (cvUpsample2Op) ReturnsPtr() bool         { return false }
func (cvUpsample2Op) CallsExtern() bool        { return false }
func (cvUpsample2Op) OverwritesInput() int     { return -1 }
func (op cvUpsample2Op) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op cvUpsample2Op) Hashcode() uint32      { return bceOpHash(op) }
func (cvUpsample2Op) String() string           { return "cvUpsample2" }
func (cvUpsample2Op) DiffWRT(int) []bool       { return []bool{true} }
func (cvUpsample2Op) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("upsample gradient: %d inputs, want 1", len(inputs))
	}
	dx, err := G.ApplyOp(cvUpsample2GradOp{}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// cvUpsample2GradOp is the gradient of cvUpsample2Op: each input pixel's
// gradient is the sum of its 2×2 block of output gradients.
type cvUpsample2GradOp struct{}

func (cvUpsample2GradOp) Arity() int { return 1 }

func (cvUpsample2GradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t, t)
}

func (cvUpsample2GradOp) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, err := cvShape4(ns)
	if err != nil {
		return nil, err
	}
	if s[2]%2 != 0 || s[3]%2 != 0 {
		return nil, fmt.Errorf("upsample gradient: odd shape %v", s)
	}
	return tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2}, nil
}

func (op cvUpsample2GradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

func (cvUpsample2GradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	g, err := cvTensor4(vs)
	if err != nil {
		return nil, err
	}
	s := g.Shape()
	rows, w := s[0]*s[1]*s[2]/2, s[3]/2
	out := cvOutput(prealloc, g.Dtype(), tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2})
	switch src := g.Data().(type) {
	case []float32:
		cvBlockSums(out.Data().([]float32), src, rows, w)
	case []float64:
		cvBlockSums(out.Data().([]float64), src, rows, w)
	default:
		return nil, fmt.Errorf("upsample gradient: unsupported dtype %v", g.Dtype())
	}
	return out, nil
}

// cvBlockSums writes into dst (rows×w) the sums of the 2×2 blocks of src
// (2rows×2w), added in float64 in the order G.Upsample2D's gradient uses.
func cvBlockSums[T float32 | float64](dst, src []T, rows, w int) {
	dst, src = dst[:rows*w], src[:4*rows*w]
	for r := 0; r < rows; r++ {
		top := src[4*r*w : 4*r*w+2*w]
		bot := src[4*r*w+2*w : 4*(r+1)*w]
		o := dst[r*w : (r+1)*w]
		for i := range o {
			sum := 0.0
			sum += float64(top[2*i])
			sum += float64(top[2*i+1])
			sum += float64(bot[2*i])
			sum += float64(bot[2*i+1])
			o[i] = T(sum)
		}
	}
}

func (cvUpsample2GradOp) ReturnsPtr() bool         { return false }
func (cvUpsample2GradOp) CallsExtern() bool        { return false }
func (cvUpsample2GradOp) OverwritesInput() int     { return -1 }
func (op cvUpsample2GradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op cvUpsample2GradOp) Hashcode() uint32      { return bceOpHash(op) }
func (cvUpsample2GradOp) String() string           { return "cvUpsample2Grad" }

func cvShape4(ns []G.DimSizer) (tensor.Shape, error) {
	if len(ns) != 1 {
		return nil, fmt.Errorf("upsample: %d inputs, want 1", len(ns))
	}
	s, ok := ns[0].(tensor.Shape)
	if !ok || s.Dims() != 4 {
		return nil, fmt.Errorf("upsample: input shape %v is not NCHW", ns[0])
	}
	return s, nil
}

func cvTensor4(vs []G.Value) (tensor.Tensor, error) {
	if len(vs) != 1 {
		return nil, fmt.Errorf("upsample: %d inputs, want 1", len(vs))
	}
	t, ok := vs[0].(tensor.Tensor)
	if !ok || t.Shape().Dims() != 4 {
		return nil, fmt.Errorf("upsample: input %v is not an NCHW tensor", vs[0])
	}
	if !t.DataOrder().IsRowMajor() || t.RequiresIterator() {
		return nil, errors.New("upsample: input is not a contiguous row-major tensor")
	}
	return t, nil
}

// cvOutput is prealloc when it is a dense tensor of dtype dt and shape s,
// else a new one.
func cvOutput(prealloc G.Value, dt tensor.Dtype, s tensor.Shape) *tensor.Dense {
	if out, ok := prealloc.(*tensor.Dense); ok && out.Dtype() == dt && out.Shape().Eq(s) {
		return out
	}
	return tensor.New(tensor.WithShape(s...), tensor.Of(dt))
}
