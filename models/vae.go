package models

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// VAEConfig configures the MLP VAE. The defaults are layer for layer the
// model of ../shared/bench/torch_vae_mnist.py (PyTorch's examples/vae with
// batch 64).
type VAEConfig struct {
	Latent   int     `json:"latent"`
	Hidden   int     `json:"hidden"`
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

// DefaultVAEConfig is the reference VAE: 784-400-20 encoder, 20-400-784
// decoder, Adam 1e-3 (0.9, 0.999), batch 64, KL weight 1, no warm-up.
func DefaultVAEConfig() VAEConfig {
	return VAEConfig{
		Latent: 20, Hidden: 400, Width: 28, Height: 28, Channels: 1,
		LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Batch: 64, LRSchedule: constantLR,
		Beta: 1, WarmupSteps: 0, Temperature: 1, Seed: 1,
	}
}

// Validate reports the first setting that cannot work: the ranges of the
// variant's spec fields (spec.go), then what they do not cover.
func (c VAEConfig) Validate() error {
	if err := checkSpec("vae", "mlp", c); err != nil {
		return err
	}
	switch {
	case c.Width < 1 || c.Height < 1 || c.Channels < 1 || c.Width*c.Height*c.Channels > 1<<16:
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

// VAE is the MLP variational autoencoder of PyTorch's examples/vae:
//
//	encoder: h = ReLU(fc1(x)); mu = fc21(h); logvar = fc22(h)
//	sample:  z = mu + eps*exp(0.5*logvar), eps ~ N(0, 1)
//	decoder: recon = sigmoid(fc4(ReLU(fc3(z))))
//
// trained on L = BCE(recon, x) + w*KL, both summed over the batch, with
// x = pixel/255, KL = -0.5*sum(1 + logvar - mu² - exp(logvar)) and w the
// KL weight (Beta, after the optional warm-up). BCE is computed from the
// logits l of fc4 as softplus(l) - x*l (bceLogitsSumOp), which is
// BCE(sigmoid(l), x) without the overflow of log(sigmoid) and without
// torch's clamp of the log at -100.
type VAE struct {
	cfg   VAEConfig
	dt    tensor.Dtype
	shape ImageShape

	FC1, FC21, FC22, FC3, FC4 *Linear

	opt   *Adam
	ema   *ema // the weights' average (nil: off)
	train *vaeTrainGraph
	dec   *vaeForwardGraph // z -> sigmoid outputs, vaeChunk rows
	rec   *vaeForwardGraph // x -> mu -> sigmoid outputs, vaeChunk rows

	eps []float32 // step scratch
}

// vaeChunk is the batch size of the sampling and reconstruction graphs;
// longer inputs run in chunks.
const vaeChunk = 64

// NewVAE builds the VAE in float32 with weights drawn from cfg.Seed.
func NewVAE(cfg VAEConfig) (*VAE, error) { return newVAE(cfg, tensor.Float32) }

func newVAE(cfg VAEConfig, dt tensor.Dtype) (*VAE, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vae config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xbb67ae8584caa73b))
	shape := ImageShape{cfg.Width, cfg.Height, cfg.Channels}
	n := shape.Size()
	v := &VAE{cfg: cfg, dt: dt, shape: shape}
	// Same order as the PyTorch module's constructor.
	v.FC1 = NewLinear("fc1", n, cfg.Hidden, dt, rng)
	v.FC21 = NewLinear("fc21", cfg.Hidden, cfg.Latent, dt, rng)
	v.FC22 = NewLinear("fc22", cfg.Hidden, cfg.Latent, dt, rng)
	v.FC3 = NewLinear("fc3", cfg.Latent, cfg.Hidden, dt, rng)
	v.FC4 = NewLinear("fc4", cfg.Hidden, n, dt, rng)
	v.opt = NewAdam(nn.Tensors(v.Params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	v.ema = newEMA(cfg.EMA, "ema", v.Params())
	var err error
	if v.train, err = v.buildTrain(); err != nil {
		return nil, fmt.Errorf("build vae training step: %w", err)
	}
	v.eps = make([]float32, cfg.Batch*cfg.Latent)
	return v, nil
}

func (v *VAE) layers() []*Linear { return []*Linear{v.FC1, v.FC21, v.FC22, v.FC3, v.FC4} }

// Params lists the weights with the PyTorch module's state_dict names:
// fc1.weight, fc1.bias, fc21.weight, ..., fc4.bias.
func (v *VAE) Params() []NamedTensor {
	var ps []NamedTensor
	for _, l := range v.layers() {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Family implements Model.
func (v *VAE) Family() string { return "vae" }

// Shape implements Model.
func (v *VAE) Shape() ImageShape { return v.shape }

// LossNames implements Model. All three are per image (sums over the batch
// divided by the batch size): the optimised loss recon + w*KL, the
// reconstruction BCE and the KL divergence.
func (v *VAE) LossNames() []string { return []string{"loss", "recon", "KL"} }

// NoiseDim implements Model.
func (v *VAE) NoiseDim() int { return v.cfg.Latent }

// Config implements Model.
func (v *VAE) Config() any { return v.cfg }

// OptimizerStep implements Model.
func (v *VAE) OptimizerStep() int { return v.opt.Step }

// SetOptimizerStep implements Model. The KL warm-up follows the step count.
func (v *VAE) SetOptimizerStep(n int) { v.opt.Step = n }

// KLWeight is the weight w of the KL term in the next training step:
// Beta*min(1, OptimizerStep()/WarmupSteps), or Beta without warm-up. With
// WarmupSteps = 10 the first step uses 0, and from the 11th step on (once
// 10 updates are done) it is Beta.
func (v *VAE) KLWeight() float64 { return klWeight(v.cfg.Beta, v.cfg.WarmupSteps, v.opt.Step) }

// klWeight is beta*min(1, step/warmup), or beta without warm-up.
func klWeight(beta float64, warmup, step int) float64 {
	if warmup <= 0 {
		return beta
	}
	return beta * min(1, float64(step)/float64(warmup))
}

// State implements Model: the weights, then Adam's moments named
// "optim.<param>.exp_avg" and "optim.<param>.exp_avg_sq".
func (v *VAE) State() []NamedTensor {
	ps := v.Params()
	return slices.Concat(ps, v.ema.params(), v.opt.MomentTensors("optim", ps))
}

// Close implements Model.
func (v *VAE) Close() error {
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

var errVAEClosed = errors.New("vae: model is closed")

// vaeTrainGraph computes the summed loss and its gradient with respect to
// every weight. x, eps and the KL weight are inputs written before each run.
type vaeTrainGraph struct {
	vm              G.VM
	x, eps          *tensor.Dense
	klw             *G.Node
	weights         G.Nodes
	loss, recon, kl G.Value
	// reuse compiles the graph into a machine that keeps its buffers
	// between runs (reuseTape); only the MLP VAE sets it so far.
	reuse bool
	// freeBits is the KL floor per latent dimension and image (0 = off).
	freeBits float64
}

// vaeConst is a scalar constant of dtype dt.
func vaeConst(dt tensor.Dtype, x float64) *G.Node {
	if dt == tensor.Float64 {
		return G.NewConstant(x)
	}
	return G.NewConstant(float32(x))
}

// vaeScalar is a scalar Value of dtype dt.
func vaeScalar(dt tensor.Dtype, x float64) G.Value {
	if dt == tensor.Float64 {
		return G.NewF64(x)
	}
	return G.NewF32(float32(x))
}

// vaeNodes are one graph's view of the VAE's weights.
type vaeNodes struct {
	w, b [5]*G.Node
}

func (v *VAE) nodes(g *G.ExprGraph) *vaeNodes {
	n := &vaeNodes{}
	for i, l := range v.layers() {
		n.w[i], n.b[i] = l.Nodes(g)
	}
	return n
}

func (n *vaeNodes) all() G.Nodes {
	var out G.Nodes
	for i := range n.w {
		out = append(out, n.w[i], n.b[i])
	}
	return out
}

// vaeEncode builds mu and logvar of x.
func vaeEncode(wn *vaeNodes, x *G.Node) (mu, logvar *G.Node, err error) {
	h, err := nn.Affine(x, wn.w[0], wn.b[0])
	if err != nil {
		return nil, nil, err
	}
	if h, err = rectify(h); err != nil {
		return nil, nil, err
	}
	if mu, err = nn.Affine(h, wn.w[1], wn.b[1]); err != nil {
		return nil, nil, err
	}
	if logvar, err = nn.Affine(h, wn.w[2], wn.b[2]); err != nil {
		return nil, nil, err
	}
	return mu, logvar, nil
}

// vaeDecodeLogits builds fc4(ReLU(fc3(z))), the decoder before its sigmoid.
func vaeDecodeLogits(wn *vaeNodes, z *G.Node) (*G.Node, error) {
	h, err := nn.Affine(z, wn.w[3], wn.b[3])
	if err != nil {
		return nil, err
	}
	if h, err = rectify(h); err != nil {
		return nil, err
	}
	return nn.Affine(h, wn.w[4], wn.b[4])
}

func (v *VAE) buildTrain() (*vaeTrainGraph, error) {
	b, l, n, dt := v.cfg.Batch, v.cfg.Latent, v.shape.Size(), v.dt
	eg := G.NewGraph()
	s := &vaeTrainGraph{
		x:     tensor.New(tensor.WithShape(b, n), tensor.Of(dt)),
		eps:   tensor.New(tensor.WithShape(b, l), tensor.Of(dt)),
		reuse: true, freeBits: v.cfg.FreeBits,
	}
	wn := v.nodes(eg)
	s.weights = wn.all()
	x := G.NewMatrix(eg, dt, G.WithShape(b, n), G.WithValue(s.x), G.WithName("x"))
	eps := G.NewMatrix(eg, dt, G.WithShape(b, l), G.WithValue(s.eps), G.WithName("eps"))
	s.klw = G.NewScalar(eg, dt, G.WithValue(vaeScalar(dt, v.KLWeight())), G.WithName("kl_weight"))

	mu, logvar, err := vaeEncode(wn, x)
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
	logits, err := vaeDecodeLogits(wn, z)
	if err != nil {
		return nil, err
	}
	if err := s.compileLoss(eg, dt, logits, x, mu, logvar, half); err != nil {
		return nil, err
	}
	return s, nil
}

// vaeForwardGraph maps a fixed-size input batch to sigmoid outputs.
type vaeForwardGraph struct {
	vm  G.VM
	in  *tensor.Dense
	out G.Value
}

// forwardGraph builds the decoder on z (fromImages false) or the
// mean reconstruction decoder(mu(x)) (fromImages true), for vaeChunk rows.
func (v *VAE) forwardGraph(fromImages bool) (*vaeForwardGraph, error) {
	cols := v.cfg.Latent
	if fromImages {
		cols = v.shape.Size()
	}
	eg := G.NewGraph()
	f := &vaeForwardGraph{in: tensor.New(tensor.WithShape(vaeChunk, cols), tensor.Of(v.dt))}
	wn := v.nodes(eg)
	z := G.NewMatrix(eg, v.dt, G.WithShape(vaeChunk, cols), G.WithValue(f.in), G.WithName("in"))
	if fromImages {
		mu, _, err := vaeEncode(wn, z)
		if err != nil {
			return nil, err
		}
		z = mu
	}
	logits, err := vaeDecodeLogits(wn, z)
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

// run feeds in (at most vaeChunk rows, zero-padded) and copies the outputs
// of the first rows into dst.
func (f *vaeForwardGraph) run(in []float32, dst []float32) error {
	if err := vaeCopyPadded(f.in, in); err != nil {
		return err
	}
	f.vm.Reset()
	if err := f.vm.RunAll(); err != nil {
		return fmt.Errorf("vae forward: %w", err)
	}
	t, ok := f.out.(tensor.Tensor)
	if !ok {
		return fmt.Errorf("graph output %v is not a tensor", f.out)
	}
	switch d := t.Data().(type) {
	case []float32:
		copy(dst, d)
	case []float64:
		for i := range dst {
			dst[i] = float32(d[i])
		}
	default:
		return fmt.Errorf("graph output has unsupported type %T", d)
	}
	return nil
}

// vaeCopyPadded writes src into the start of t and zeroes the rest.
func vaeCopyPadded(t *tensor.Dense, src []float32) error {
	switch d := t.Data().(type) {
	case []float32:
		if len(src) > len(d) {
			return fmt.Errorf("input has %d values, graph takes %d", len(src), len(d))
		}
		copy(d, src)
		clear(d[len(src):])
	case []float64:
		if len(src) > len(d) {
			return fmt.Errorf("input has %d values, graph takes %d", len(src), len(d))
		}
		for i, x := range src {
			d[i] = float64(x)
		}
		clear(d[len(src):])
	}
	return nil
}

// vaeChunked runs f over n rows of width inW in chunks of vaeChunk, giving
// outW outputs a row.
func vaeChunked(f *vaeForwardGraph, in []float32, n, inW, outW int) ([]float32, error) {
	out := make([]float32, n*outW)
	for start := 0; start < n; start += vaeChunk {
		b := min(vaeChunk, n-start)
		if err := f.run(in[start*inW:(start+b)*inW], out[start*outW:(start+b)*outW]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Sample implements Model: it decodes z*Temperature (NoiseDim() values an
// image) to images in [0, 1].
func (v *VAE) Sample(z []float32) ([]float32, error) {
	var out []float32
	err := v.ema.with(func() (err error) {
		out, err = vaeSample(z, v.cfg.Latent, v.cfg.Temperature, v.shape.Size(), v.train == nil, &v.dec, v.forwardGraph, "vae")
		return err
	})
	return out, err
}

// Reconstruct encodes images (uint8 pixels, Shape().Size() an image) to
// their posterior means, without sampling noise, and decodes them: the
// returned images, in [0, 1], sit beside the inputs in a reconstruction view.
func (v *VAE) Reconstruct(batch []uint8) ([]float32, error) {
	var out []float32
	err := v.ema.with(func() (err error) {
		out, err = vaeReconstruct(batch, v.shape.Size(), v.train == nil, &v.rec, v.forwardGraph, "vae")
		return err
	})
	return out, err
}

// vaeSample is Sample of both VAEs: it decodes z*temp through *dec, which
// build(false) makes on first use.
func vaeSample(z []float32, latent int, temp float64, size int, closed bool, dec **vaeForwardGraph,
	build func(fromImages bool) (*vaeForwardGraph, error), name string) ([]float32, error) {
	if len(z) == 0 || len(z)%latent != 0 {
		return nil, fmt.Errorf("sample: noise length %d is not a multiple of the latent size %d", len(z), latent)
	}
	if closed {
		return nil, errVAEClosed
	}
	if *dec == nil {
		f, err := build(false)
		if err != nil {
			return nil, fmt.Errorf("%s decoder graph: %w", name, err)
		}
		*dec = f
	}
	zt := make([]float32, len(z))
	for i, x := range z {
		zt[i] = x * float32(temp)
	}
	return vaeChunked(*dec, zt, len(z)/latent, latent, size)
}

// vaeReconstruct is Reconstruct of both VAEs: images through *rec, which
// build(true) makes on first use.
func vaeReconstruct(batch []uint8, size int, closed bool, rec **vaeForwardGraph,
	build func(fromImages bool) (*vaeForwardGraph, error), name string) ([]float32, error) {
	if len(batch) == 0 || len(batch)%size != 0 {
		return nil, fmt.Errorf("reconstruct: %d values are not a whole number of %d-value images", len(batch), size)
	}
	if closed {
		return nil, errVAEClosed
	}
	if *rec == nil {
		f, err := build(true)
		if err != nil {
			return nil, fmt.Errorf("%s reconstruction graph: %w", name, err)
		}
		*rec = f
	}
	x := make([]float32, len(batch))
	for i, p := range batch {
		x[i] = float32(p) / 255
	}
	return vaeChunked(*rec, x, len(batch)/size, size, size)
}

// vaeUnitPixels writes uint8 pixels into t scaled to [0, 1] (p/255, computed
// in t's precision as the reference does in float32).
func vaeUnitPixels(t *tensor.Dense, px []uint8) {
	switch d := t.Data().(type) {
	case []float32:
		for i, p := range px {
			d[i] = float32(p) / 255
		}
	case []float64:
		for i, p := range px {
			d[i] = float64(p) / 255
		}
	}
}

// evaluate runs the training graph on batch with noise eps and KL weight
// w, leaving the gradients of the summed loss in the weight nodes. It
// returns the summed loss, reconstruction BCE and KL.
func (v *VAE) evaluate(batch []uint8, eps []float32, w float64) (loss, recon, kl float64, err error) {
	return v.train.evaluate(v.dt, batch, eps, w)
}

// evaluate is one forward and backward run of a VAE's training graph (s
// may be nil after Close).
func (s *vaeTrainGraph) evaluate(dt tensor.Dtype, batch []uint8, eps []float32, w float64) (loss, recon, kl float64, err error) {
	if s == nil {
		return 0, 0, 0, errVAEClosed
	}
	vaeUnitPixels(s.x, batch)
	if err := copyInto(s.eps, eps); err != nil {
		return 0, 0, 0, err
	}
	if err := G.Let(s.klw, vaeScalar(dt, w)); err != nil {
		return 0, 0, 0, fmt.Errorf("set KL weight: %w", err)
	}
	if err := runGrad(s.vm, s.weights); err != nil {
		return 0, 0, 0, fmt.Errorf("vae step: %w", err)
	}
	if loss, err = scalar(s.loss); err != nil {
		return 0, 0, 0, err
	}
	if recon, err = scalar(s.recon); err != nil {
		return 0, 0, 0, err
	}
	if kl, err = scalar(s.kl); err != nil {
		return 0, 0, 0, err
	}
	return loss, recon, kl, nil
}

// TrainStep implements Model: one Adam step on the summed loss
// BCE + w*KL of the batch, with eps drawn from rng. It returns the loss,
// the reconstruction BCE and the KL, each divided by the batch size.
func (v *VAE) TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error) {
	out, err := vaeTrainStep(v.train, v.opt, v.dt, v.eps, batch, v.cfg.Batch, v.shape.Size(), v.KLWeight(), rng)
	if err == nil {
		v.ema.update(v.opt.Step)
	}
	return out, err
}

// vaeTrainStep is a VAE training step on graph s: eps from rng, one run,
// the non-finite check, one Adam update. It returns the loss, the
// reconstruction BCE and the KL per image.
func vaeTrainStep(s *vaeTrainGraph, opt *Adam, dt tensor.Dtype, eps []float32, batch []uint8, b, n int, w float64, rng *rand.Rand) ([]float64, error) {
	if len(batch) != b*n {
		return nil, fmt.Errorf("vae step: batch has %d values, want %d (%d images of %d)", len(batch), b*n, b, n)
	}
	FillNormal(eps, rng)
	loss, recon, kl, err := s.evaluate(dt, batch, eps, w)
	if err != nil {
		return nil, err
	}
	out := []float64{loss / float64(b), recon / float64(b), kl / float64(b)}
	for i, x := range []float64{loss, recon, kl} {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return out, &NonFiniteLossError{Name: []string{"loss", "recon", "KL"}[i], Value: x}
		}
	}
	grads, err := gradsOf(s.weights)
	if err != nil {
		return nil, err
	}
	return out, opt.Update(grads)
}

// bceLogitsSumOp is the fused reconstruction loss sum(softplus(l) - x*l)
// over all elements of the logits l and targets x: BCE(sigmoid(l), x)
// summed, computed in float64 per element. Gorgonia's own Softplus calls
// math.Log1p on every element and, with the product, subtraction and sum
// around it, cost about a quarter of a training step; this op does the
// forward in one pass and its gradient (sigmoid(l) - x)*g in another.
// It is differentiable with respect to l only.
type bceLogitsSumOp struct{}

func (bceLogitsSumOp) Arity() int { return 2 }

func (bceLogitsSumOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(t, t, a)
}

func (bceLogitsSumOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (bceLogitsSumOp) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != 2 {
		return nil, fmt.Errorf("bce: %d inputs, want 2", len(vs))
	}
	l, x, err := bceTensors(vs[0], vs[1])
	if err != nil {
		return nil, err
	}
	switch ld := l.Data().(type) {
	case []float32:
		xd, ok := x.Data().([]float32)
		if !ok || len(xd) != len(ld) {
			return nil, errors.New("bce: targets do not match the logits")
		}
		var s float64
		for i, v := range ld {
			f := float64(v)
			s += max(f, 0) + log1pUnit(math.Exp(-math.Abs(f))) - float64(xd[i])*f
		}
		return G.NewF32(float32(s)), nil
	case []float64:
		xd, ok := x.Data().([]float64)
		if !ok || len(xd) != len(ld) {
			return nil, errors.New("bce: targets do not match the logits")
		}
		var s float64
		for i, v := range ld {
			s += max(v, 0) + math.Log1p(math.Exp(-math.Abs(v))) - xd[i]*v
		}
		return G.NewF64(s), nil
	}
	return nil, fmt.Errorf("bce: unsupported dtype %v", l.Dtype())
}

// log1pUnit is log(1+e) for e in [0, 1], to about 1e-9 relative (far
// below float32's resolution) and several times faster than math.Log1p:
// log(1+e) = 2*atanh(s) with s = e/(2+e) in [0, 1/3], whose odd series
// s + s³/3 + ... + s¹⁷/17 leaves out less than 1.5e-9*s.
func log1pUnit(e float64) float64 {
	s := e / (2 + e)
	s2 := s * s
	p := 1.0 / 17
	p = p*s2 + 1.0/15
	p = p*s2 + 1.0/13
	p = p*s2 + 1.0/11
	p = p*s2 + 1.0/9
	p = p*s2 + 1.0/7
	p = p*s2 + 1.0/5
	p = p*s2 + 1.0/3
	p = p*s2 + 1
	return 2 * s * p
}

func (bceLogitsSumOp) ReturnsPtr() bool     { return false }
func (bceLogitsSumOp) CallsExtern() bool    { return false }
func (bceLogitsSumOp) OverwritesInput() int { return -1 }
func (op bceLogitsSumOp) WriteHash(h hash.Hash) {
	fmt.Fprint(h, op.String())
}
func (op bceLogitsSumOp) Hashcode() uint32 { return bceOpHash(op) }
func (bceLogitsSumOp) String() string      { return "BCEWithLogitsSum" }

func (bceLogitsSumOp) DiffWRT(int) []bool { return []bool{true, false} }

func (bceLogitsSumOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("bce gradient: %d inputs, want 2", len(inputs))
	}
	dl, err := G.ApplyOp(bceLogitsGradOp{}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dl, nil}, nil
}

// bceLogitsGradOp is the gradient of bceLogitsSumOp with respect to the
// logits: (sigmoid(l) - x) * g for the scalar upstream gradient g.
type bceLogitsGradOp struct{}

func (bceLogitsGradOp) Arity() int { return 3 }

func (bceLogitsGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(t, t, a, t)
}

func (bceLogitsGradOp) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	if len(ns) == 0 {
		return nil, errors.New("bce gradient: no inputs")
	}
	s, ok := ns[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("bce gradient: input shape %v", ns[0])
	}
	return s.Clone(), nil
}

func (op bceLogitsGradOp) Do(vs ...G.Value) (G.Value, error) {
	return op.UsePreallocDo(nil, vs...)
}

// UsePreallocDo writes into prealloc when it fits, as the tape machine
// provides one buffer reused across runs.
func (bceLogitsGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	if len(vs) != 3 {
		return nil, fmt.Errorf("bce gradient: %d inputs, want 3", len(vs))
	}
	l, x, err := bceTensors(vs[0], vs[1])
	if err != nil {
		return nil, err
	}
	g, err := scalar(vs[2])
	if err != nil {
		return nil, fmt.Errorf("bce gradient: %w", err)
	}
	out, ok := prealloc.(*tensor.Dense)
	if !ok || out.Dtype() != l.Dtype() || !out.Shape().Eq(l.Shape()) {
		out = tensor.New(tensor.WithShape(l.Shape().Clone()...), tensor.Of(l.Dtype()))
	}
	switch ld := l.Data().(type) {
	case []float32:
		xd, ok := x.Data().([]float32)
		od := out.Data().([]float32)
		if !ok || len(xd) != len(ld) || len(od) != len(ld) {
			return nil, errors.New("bce gradient: targets do not match the logits")
		}
		for i, v := range ld {
			od[i] = float32((1/(1+math.Exp(-float64(v))) - float64(xd[i])) * g)
		}
	case []float64:
		xd, ok := x.Data().([]float64)
		od := out.Data().([]float64)
		if !ok || len(xd) != len(ld) || len(od) != len(ld) {
			return nil, errors.New("bce gradient: targets do not match the logits")
		}
		for i, v := range ld {
			od[i] = (1/(1+math.Exp(-v)) - xd[i]) * g
		}
	default:
		return nil, fmt.Errorf("bce gradient: unsupported dtype %v", l.Dtype())
	}
	return out, nil
}

func (bceLogitsGradOp) ReturnsPtr() bool     { return false }
func (bceLogitsGradOp) CallsExtern() bool    { return false }
func (bceLogitsGradOp) OverwritesInput() int { return -1 }
func (op bceLogitsGradOp) WriteHash(h hash.Hash) {
	fmt.Fprint(h, op.String())
}
func (op bceLogitsGradOp) Hashcode() uint32 { return bceOpHash(op) }
func (bceLogitsGradOp) String() string      { return "BCEWithLogitsSumGrad" }

func bceOpHash(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func bceTensors(a, b G.Value) (tensor.Tensor, tensor.Tensor, error) {
	ta, ok1 := a.(tensor.Tensor)
	tb, ok2 := b.(tensor.Tensor)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("bce: inputs %T and %T are not tensors", a, b)
	}
	return ta, tb, nil
}

// compileLoss adds the VAE loss to a training graph — recon = BCE(sigmoid
// (logits), x) summed, KL = 0.5·sum(mu² + exp(logvar) − logvar − 1), cost =
// recon + w·KL with w the klw input — and compiles it with the gradients of
// s.weights.
func (s *vaeTrainGraph) compileLoss(eg *G.ExprGraph, dt tensor.Dtype, logits, x, mu, logvar, half *G.Node) error {
	// recon = sum(softplus(l) - x*l) = BCE(sigmoid(l), x) summed
	recon, err := G.ApplyOp(bceLogitsSumOp{}, logits, x)
	if err != nil {
		return fmt.Errorf("bce: %w", err)
	}
	// KL = 0.5*sum(mu² + exp(logvar) - logvar - 1)
	mu2, err := G.Square(mu)
	if err != nil {
		return err
	}
	ev, err := G.Exp(logvar)
	if err != nil {
		return err
	}
	t, err := G.Add(mu2, ev)
	if err != nil {
		return err
	}
	if t, err = G.Sub(t, logvar); err != nil {
		return err
	}
	if t, err = G.Sub(t, vaeConst(dt, 1)); err != nil {
		return err
	}
	ksum, err := G.Sum(t)
	if err != nil {
		return err
	}
	kl, err := G.Mul(ksum, half)
	if err != nil {
		return err
	}
	klCost := kl
	if s.freeBits > 0 {
		// Σ_j max(c, KL_j) = Σ_j c + relu(KL_j − c), KL_j summed over the
		// batch and c the floor of the batch's images
		b := t.Shape()[0]
		perDim, err := G.Sum(t, 0)
		if err == nil {
			perDim, err = G.Mul(perDim, half)
		}
		c := vaeConst(dt, s.freeBits*float64(b))
		var over *G.Node
		if err == nil {
			over, err = G.Sub(perDim, c)
		}
		if err == nil {
			over, err = G.Rectify(over)
		}
		if err == nil {
			klCost, err = G.Sum(over)
		}
		if err == nil {
			klCost, err = G.Add(klCost, vaeConst(dt, s.freeBits*float64(b*t.Shape()[1])))
		}
		if err != nil {
			return fmt.Errorf("free bits: %w", err)
		}
	}
	wkl, err := G.Mul(s.klw, klCost)
	if err != nil {
		return err
	}
	cost, err := G.Add(recon, wkl)
	if err != nil {
		return err
	}
	G.Read(recon, &s.recon)
	G.Read(kl, &s.kl)
	s.vm, err = compileStep(eg, cost, &s.loss, s.weights, s.reuse, "vae loss")
	return err
}

// LRSchedule implements Scheduled.
func (v *VAE) LRSchedule() LRSchedule { return v.cfg.LRSchedule }

// ScaleLR implements Scheduled.
func (v *VAE) ScaleLR(f float64) { v.cfg.LRSchedule.apply(f, v.opt) }

// Temperature implements Tempered.
func (v *VAE) Temperature() float64 { return v.cfg.Temperature }

// SetTemperature implements Tempered.
func (v *VAE) SetTemperature(t float64) error {
	if err := fieldTemperature.Check(t); err != nil {
		return err
	}
	v.cfg.Temperature = t
	return nil
}
