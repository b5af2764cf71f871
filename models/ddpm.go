package models

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// DDPMConfig configures the diffusion model. The defaults are the
// reference's recipe, layer for layer as ../shared/bench/torch_ddpm_mnist.py
// defines it.
type DDPMConfig struct {
	T        int     `json:"t"`        // diffusion steps
	Schedule string  `json:"schedule"` // "linear" or "cosine"
	Hidden   int     `json:"hidden"`   // width of the MLP noise predictor
	TEmb     int     `json:"temb"`     // sinusoidal time-embedding size (even)
	Width    int     `json:"width"`    // image shape
	Height   int     `json:"height"`   //
	Channels int     `json:"channels"` //
	LR       float64 `json:"lr"`       // Adam learning rate
	Beta1    float64 `json:"beta1"`    // Adam β1
	LRSchedule
	Beta2       float64 `json:"beta2"`        // Adam β2
	Batch       int     `json:"batch"`        // training batch size
	Sampler     string  `json:"sampler"`      // "ddpm" (ancestral) or "ddim"
	SampleSteps int     `json:"sample_steps"` // sampler steps K, 1..T (0 means T)
	Eta         float64 `json:"eta"`          // DDIM η in [0, 1]; 0 is deterministic
	Temperature float64 `json:"temperature"`  // scale of x_T and of each step's noise (1 = plain)
	Seed        uint64  `json:"seed"`         // weight initialisation

	// Arch picks the noise predictor: "mlp" (or "") or "conv", the U-Net
	// (unet.go; "unet" is its older name and still builds it).
	Arch string `json:"arch,omitempty"`
	// Features is the U-Net's base channel count F (the U-Net only).
	Features int `json:"features,omitempty"`

	// Classes makes the predictor conditional on a class label for
	// classifier-free guidance (Ho & Salimans 2022): a one-hot of the label
	// (or of "no label") beside the time embedding (0 = unconditional).
	Classes int `json:"classes"`
	// LabelDropout is the share of training images whose label is dropped,
	// so the same network also learns the unconditional predictor.
	LabelDropout float64 `json:"label_dropout"`
	// Guidance is the sampling guidance scale s: ε = ε_u + s·(ε_c − ε_u)
	// (1 = plain conditional, 0 = unconditional).
	Guidance float64 `json:"guidance"`
	// EMA is the decay of the denoiser's weight average that sampling uses
	// (0 = off), as DDPM's authors sample (they use 0.9999 over 800k steps).
	EMA float64 `json:"ema"`
}

// tembIn is the width of the predictor's embedding input: the time
// embedding, then for a conditional model a one-hot of Classes+1 labels.
func (c DDPMConfig) tembIn() int {
	if c.Classes > 0 {
		return c.TEmb + c.Classes + 1
	}
	return c.TEmb
}

// The sampler and schedule names DDPMConfig accepts.
const (
	SamplerDDPM    = "ddpm"
	SamplerDDIM    = "ddim"
	ScheduleLinear = "linear"
	ScheduleCosine = "cosine"
)

// DefaultDDPMConfig is the reference DDPM: T = 1000 linear betas, the MLP
// noise predictor 784-512-512-784 with a 128-wide time embedding, Adam 2e-4
// (0.9, 0.999), batch 64, and the full 1000-step ancestral sampler.
func DefaultDDPMConfig() DDPMConfig {
	return DDPMConfig{
		T: 1000, Schedule: ScheduleLinear, Hidden: 512, TEmb: 128,
		Width: 28, Height: 28, Channels: 1,
		LR: 2e-4, Beta1: 0.9, Beta2: 0.999, Batch: 64, LRSchedule: constantLR,
		Sampler: SamplerDDIM, SampleSteps: 50, Eta: 0, Temperature: 1, Seed: 1,
		LabelDropout: 0.1, Guidance: 2,
	}
}

// Validate reports the first setting that cannot work: the ranges of the
// variant's spec fields (spec.go), then what they do not cover.
func (c DDPMConfig) Validate() error {
	if err := checkSpec("ddpm", c.Arch, c); err != nil {
		return err
	}
	switch {
	case c.TEmb < 2 || c.TEmb > 4096 || c.TEmb%2 != 0:
		return fmt.Errorf("time embedding size must be even and 2..4096, got %d", c.TEmb)
	case c.Width < 1 || c.Height < 1 || c.Channels < 1 || c.Width*c.Height*c.Channels > 1<<16:
		return fmt.Errorf("image shape %dx%dx%d is not supported", c.Width, c.Height, c.Channels)
	}
	if err := validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch, c.LRSchedule); err != nil {
		return err
	}
	if err := c.validateArch(); err != nil {
		return err
	}
	if !(c.LabelDropout >= 0 && c.LabelDropout <= 1) {
		return fmt.Errorf("label dropout must be in [0, 1], got %g", c.LabelDropout)
	}
	if err := fieldDenoiserEMA.Check(c.EMA); err != nil {
		return err
	}
	return SampleOptions{Sampler: c.Sampler, Steps: c.SampleSteps, Eta: c.Eta, Temperature: c.Temperature, Guidance: c.Guidance}.validate(c.T)
}

// The conditional DDPM's settings.
var (
	fieldClasses = Field{Key: "classes", Label: "Classes (guidance)", Flag: "classes", Kind: KindInt, Lo: 0, Hi: 1000,
		Help: "0 = unconditional; the data set's class count makes the model conditional, for classifier-free guidance"}
	fieldLabelDropout = Field{Key: "label_dropout", Label: "Label dropout", Flag: "label-dropout", Kind: KindFloat, Lo: 0, Hi: 1,
		Help: "share of training labels dropped, so the model also learns unconditionally (0.1 is usual)"}
	fieldDenoiserEMA = Field{Key: "ema", Label: "Denoiser EMA", Flag: "ema", Kind: KindFloat, Lo: 0, Hi: 1, OpenHi: true,
		Help: "decay of the average of the noise predictor's weights that sampling uses (0 = off; 0.999 for short runs, 0.9999 for long ones)"}
	fieldGuidance = Field{Key: "guidance", Label: "Guidance scale", Flag: "guidance", Kind: KindFloat, Lo: 0, Hi: 50,
		Help: "sampling: 1 = plain conditional, 0 = unconditional, above 1 more like the class"}
)

// Classes implements LabelledTrainer: the number of classes the model is
// conditional on (0: unconditional).
func (d *DDPM) Classes() int { return d.cfg.Classes }

// SampleOptions chooses a sampler for SampleWith.
type SampleOptions struct {
	// Sampler is "ddpm" (ancestral, σ_t² = β_t) or "ddim".
	Sampler string
	// Steps is the number of network evaluations K, 1..T; 0 means T. The
	// visited timesteps are t_i = floor((i+1)·T/K) - 1, i = 0..K-1, walked
	// from the last down; K = T visits every step. The ancestral sampler
	// with K < T uses the respaced betas 1 - ᾱ_t/ᾱ_prev (Nichol & Dhariwal).
	Steps int
	// Eta is DDIM's η in [0, 1]: 0 is deterministic, 1 with K = T is the
	// ancestral sampler with σ_t² = β̃_t. The ancestral sampler ignores it.
	Eta float64
	// Temperature τ scales the starting noise x_T and every step's noise
	// σ_t·z (0 means 1, the plain sampler): below 1 the samples move
	// towards the modes, above 1 away from them.
	Temperature float64
	// Guidance is a conditional model's guidance scale s (1 = plain
	// conditional, 0 = unconditional, above 1 more like the class).
	Guidance float64
	// Class is the label every sample is drawn for; nil gives sample i the
	// class i mod Classes (a grid shows every class). Conditional models
	// only.
	Class *int
}

// labels are the class labels of n samples under o (nil for an
// unconditional model).
func (o SampleOptions) labels(n, classes int) []int {
	if classes == 0 {
		return nil
	}
	out := make([]int, n)
	for i := range out {
		if o.Class != nil {
			out[i] = *o.Class
		} else {
			out[i] = i % classes
		}
	}
	return out
}

// temperature is τ, 1 when unset.
func (o SampleOptions) temperature() float64 {
	if o.Temperature == 0 {
		return 1
	}
	return o.Temperature
}

func (o SampleOptions) validate(T int) error {
	switch {
	case o.Sampler != SamplerDDPM && o.Sampler != SamplerDDIM:
		return fmt.Errorf("sampler must be %q or %q, got %q", SamplerDDPM, SamplerDDIM, o.Sampler)
	case o.Steps < 0 || o.Steps > T:
		return fmt.Errorf("sampling steps must be 1..%d (T), got %d", T, o.Steps)
	case !(o.Eta >= 0 && o.Eta <= 1):
		return fmt.Errorf("DDIM eta must be in [0, 1], got %g", o.Eta)
	case o.Temperature != 0:
		return fieldDiffusionTemperature.Check(o.Temperature)
	}
	return fieldGuidance.Check(o.Guidance)
}

// ddpmSchedule holds the noise schedule in float64 and the float32 tables
// the reference casts from it.
type ddpmSchedule struct {
	betas, alphas, abar                         []float64
	betas32, alphas32, sqrtAbar32, sqrt1mAbar32 []float32
}

// linspace is torch.linspace in float64: the first half counts up from
// start, the second half down from end.
func linspace(start, end float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := (end - start) / float64(n-1)
	for i := range out {
		if i < n/2 {
			out[i] = start + step*float64(i)
		} else {
			out[i] = end - step*float64(n-i-1)
		}
	}
	return out
}

func newDDPMSchedule(name string, T int) (*ddpmSchedule, error) {
	var betas []float64
	switch name {
	case ScheduleLinear:
		betas = linspace(1e-4, 0.02, T)
	case ScheduleCosine:
		// Nichol & Dhariwal (2021): ᾱ(u) ∝ cos²((u+s)/(1+s)·π/2), s = 0.008,
		// β_i = min(1 - ᾱ((i+1)/T)/ᾱ(i/T), 0.999).
		const s = 0.008
		f := func(u float64) float64 {
			c := math.Cos((u + s) / (1 + s) * math.Pi / 2)
			return c * c
		}
		betas = make([]float64, T)
		for i := range betas {
			betas[i] = min(1-f(float64(i+1)/float64(T))/f(float64(i)/float64(T)), 0.999)
		}
	default:
		return nil, fmt.Errorf("unknown noise schedule %q", name)
	}
	sc := &ddpmSchedule{betas: betas,
		alphas: make([]float64, T), abar: make([]float64, T),
		betas32: make([]float32, T), alphas32: make([]float32, T),
		sqrtAbar32: make([]float32, T), sqrt1mAbar32: make([]float32, T),
	}
	prod := 1.0
	for i, b := range betas {
		sc.alphas[i] = 1 - b
		prod *= sc.alphas[i]
		sc.abar[i] = prod
		sc.betas32[i] = float32(b)
		sc.alphas32[i] = float32(sc.alphas[i])
		sc.sqrtAbar32[i] = float32(math.Sqrt(prod))
		sc.sqrt1mAbar32[i] = float32(math.Sqrt(1 - prod))
	}
	return sc, nil
}

// timestepEmbedding writes the reference's sinusoidal embedding of the
// integer timestep t into dst (len dim): [sin(t·f_k), cos(t·f_k)] with
// f_k = exp(-ln(10000)·k/(dim/2)), in float32 like torch (to within the last
// bit of exp, sin and cos).
func timestepEmbedding(dst []float32, t, dim int) {
	half := dim / 2
	c := float32(-math.Log(10000.0))
	for k := 0; k < half; k++ {
		e := float32(c*float32(k)) / float32(half)
		f := float32(math.Exp(float64(e)))
		arg := float32(t) * f
		dst[k] = float32(math.Sin(float64(arg)))
		dst[half+k] = float32(math.Cos(float64(arg)))
	}
}

// DDPM is a denoising diffusion model (Ho et al. 2020) whose noise predictor
// is the reference's EpsMLP:
//
//	e       = SiLU(temb(emb(t)))
//	h1      = SiLU(inp(x_t) + e)
//	h2      = h1 + SiLU(mid(h1) + e)
//	eps_hat = out(h2)
//
// or, with Arch "unet", a small convolutional U-Net (see unNet), trained
// on MSE(eps_hat, eps) with Adam. It samples with the ancestral DDPM
// sampler or with DDIM.
type DDPM struct {
	cfg   DDPMConfig
	dt    tensor.Dtype
	shape ImageShape
	sch   *ddpmSchedule

	Temb, Inp, Mid, Out *Linear // the MLP (nil for the U-Net)
	unet                *unNet  // the U-Net (nil for the MLP)
	opt                 *Adam
	ema                 *ema // the denoiser's weight average (nil: off)

	train *ddpmTrainGraph
	fwd   *ddpmFwdGraph // forward-only graph for sampling, built on first use
	// the U-Net's forward graphs for fewer than ddpmChunk rows, by size
	// (a power of two), so that small previews do not pay for 64 images
	fwdSmall map[int]*ddpmFwdGraph

	// step scratch, reused every step
	ts       []int
	labels   []int // the step's labels (−1: none)
	eps, xt  []float32
	temb     []float32
	embCache [][]float32 // time embedding of each t, filled lazily
	uncond   []float32   // guidance's unconditional prediction, scratch
}

// ddpmChunk is the batch size of the sampling graph.
const ddpmChunk = 64

// NewDDPM builds the diffusion model in float32 with weights drawn from cfg.Seed.
func NewDDPM(cfg DDPMConfig) (*DDPM, error) { return newDDPM(cfg, tensor.Float32) }

func newDDPM(cfg DDPMConfig, dt tensor.Dtype) (*DDPM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ddpm config: %w", err)
	}
	sch, err := newDDPMSchedule(cfg.Schedule, cfg.T)
	if err != nil {
		return nil, err
	}
	shape := ImageShape{cfg.Width, cfg.Height, cfg.Channels}
	n := shape.Size()
	d := &DDPM{cfg: cfg, dt: dt, shape: shape, sch: sch, embCache: make([][]float32, cfg.T)}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc908))
	if cfg.isUNet() {
		d.unet = newUNet(cfg, dt, rng)
	} else {
		// Module order of EpsMLP: temb, inp, mid, out (PyTorch initialises
		// in that order from its generator).
		d.Temb = NewLinear("temb", cfg.tembIn(), cfg.Hidden, dt, rng)
		d.Inp = NewLinear("inp", n, cfg.Hidden, dt, rng)
		d.Mid = NewLinear("mid", cfg.Hidden, cfg.Hidden, dt, rng)
		d.Out = NewLinear("out", cfg.Hidden, n, dt, rng)
	}
	d.opt = NewAdam(nn.Tensors(d.Params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	d.ema = newEMA(cfg.EMA, "ema", d.Params())
	if d.train, err = d.buildTrain(); err != nil {
		return nil, fmt.Errorf("build ddpm training step: %w", err)
	}
	b := cfg.Batch
	d.ts = make([]int, b)
	d.labels = make([]int, b)
	d.eps = make([]float32, b*n)
	d.xt = make([]float32, b*n)
	d.temb = make([]float32, b*cfg.tembIn())
	return d, nil
}

// Params lists the noise predictor's weights with their state_dict names
// (EpsMLP's, or the U-Net's).
func (d *DDPM) Params() []NamedTensor {
	if d.unet != nil {
		return append([]NamedTensor(nil), d.unet.params...)
	}
	var ps []NamedTensor
	for _, l := range []*Linear{d.Temb, d.Inp, d.Mid, d.Out} {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Family implements Model.
func (d *DDPM) Family() string { return "ddpm" }

// Shape implements Model.
func (d *DDPM) Shape() ImageShape { return d.shape }

// LossNames implements Model.
func (d *DDPM) LossNames() []string { return []string{"MSE"} }

// NoiseDim implements Model: the noise is x_T, one value per pixel.
func (d *DDPM) NoiseDim() int { return d.shape.Size() }

// Config implements Model.
func (d *DDPM) Config() any { return d.cfg }

// OptimizerStep implements Model.
func (d *DDPM) OptimizerStep() int { return d.opt.Step }

// SetOptimizerStep implements Model.
func (d *DDPM) SetOptimizerStep(n int) { d.opt.Step = n }

// State implements Model: the weights as the state_dict names them,
// then Adam's moments as "optim.<param>.exp_avg" and "optim.<param>.exp_avg_sq".
func (d *DDPM) State() []NamedTensor {
	ps := d.Params()
	return slices.Concat(ps, d.ema.params(), d.opt.MomentTensors("optim", ps))
}

// AlphaBars returns a copy of the schedule's ᾱ_t, t = 0..T-1.
func (d *DDPM) AlphaBars() []float64 { return append([]float64(nil), d.sch.abar...) }

// Close implements Model.
func (d *DDPM) Close() error {
	var errs []error
	if d.train != nil {
		errs = append(errs, d.train.vm.Close())
		d.train = nil
	}
	if d.fwd != nil {
		errs = append(errs, d.fwd.vm.Close())
		d.fwd = nil
	}
	for _, f := range d.fwdSmall {
		errs = append(errs, f.vm.Close())
	}
	d.fwdSmall = nil
	return errors.Join(errs...)
}

// epsNet builds the noise predictor on g for inputs xt (batch×N) and temb
// (batch×TEmb), with weight nodes bound to the shared tensors. weights come
// in Params order. train tells the training graph from the sampling one.
func (d *DDPM) epsNet(ng *nn.Graph, xt, temb *G.Node) (out *G.Node, weights G.Nodes, err error) {
	if d.unet != nil {
		return d.unet.build(ng, xt, temb)
	}
	g := ng.ExprGraph
	wt, bt := d.Temb.Nodes(g)
	wi, bi := d.Inp.Nodes(g)
	wm, bm := d.Mid.Nodes(g)
	wo, bo := d.Out.Nodes(g)
	weights = G.Nodes{wt, bt, wi, bi, wm, bm, wo, bo}
	fail := func(what string, err error) (*G.Node, G.Nodes, error) {
		return nil, nil, fmt.Errorf("noise predictor %s: %w", what, err)
	}
	u, err := nn.Affine(temb, wt, bt)
	if err != nil {
		return fail("temb", err)
	}
	e, err := silu(u)
	if err != nil {
		return fail("temb SiLU", err)
	}
	if u, err = nn.Affine(xt, wi, bi); err != nil {
		return fail("inp", err)
	}
	if u, err = G.Add(u, e); err != nil {
		return fail("inp + e", err)
	}
	h1, err := silu(u)
	if err != nil {
		return fail("inp SiLU", err)
	}
	if u, err = nn.Affine(h1, wm, bm); err != nil {
		return fail("mid", err)
	}
	if u, err = G.Add(u, e); err != nil {
		return fail("mid + e", err)
	}
	r, err := silu(u)
	if err != nil {
		return fail("mid SiLU", err)
	}
	h2, err := G.Add(h1, r)
	if err != nil {
		return fail("residual", err)
	}
	if out, err = nn.Affine(h2, wo, bo); err != nil {
		return fail("out", err)
	}
	return out, weights, nil
}

// silu is u·sigmoid(u).
func silu(u *G.Node) (*G.Node, error) {
	s, err := G.Sigmoid(u)
	if err != nil {
		return nil, err
	}
	return G.HadamardProd(u, s)
}

// ddpmTrainGraph computes MSE(eps_theta(x_t, t), eps) and its gradient with
// respect to the predictor's weights. Its inputs are written in place.
type ddpmTrainGraph struct {
	vm            G.VM
	xt, temb, eps *tensor.Dense
	weights       G.Nodes
	loss          G.Value
}

func (d *DDPM) buildTrain() (*ddpmTrainGraph, error) {
	b, n, te := d.cfg.Batch, d.shape.Size(), d.cfg.tembIn()
	ng := nn.NewGraph(true)
	eg := ng.ExprGraph
	s := &ddpmTrainGraph{
		xt:   tensor.New(tensor.WithShape(b, n), tensor.Of(d.dt)),
		temb: tensor.New(tensor.WithShape(b, te), tensor.Of(d.dt)),
		eps:  tensor.New(tensor.WithShape(b, n), tensor.Of(d.dt)),
	}
	xt := G.NewMatrix(eg, d.dt, G.WithShape(b, n), G.WithValue(s.xt), G.WithName("x_t"))
	temb := G.NewMatrix(eg, d.dt, G.WithShape(b, te), G.WithValue(s.temb), G.WithName("temb_in"))
	eps := G.NewMatrix(eg, d.dt, G.WithShape(b, n), G.WithValue(s.eps), G.WithName("eps"))
	out, weights, err := d.epsNet(ng, xt, temb)
	if err != nil {
		return nil, err
	}
	s.weights = weights
	diff, err := G.Sub(out, eps)
	if err != nil {
		return nil, fmt.Errorf("mse: %w", err)
	}
	sq, err := G.Square(diff)
	if err != nil {
		return nil, fmt.Errorf("mse: %w", err)
	}
	cost, err := G.Mean(sq)
	if err != nil {
		return nil, fmt.Errorf("mse: %w", err)
	}
	if s.vm, err = compileStep(eg, cost, &s.loss, s.weights, true, "MSE"); err != nil {
		return nil, err
	}
	return s, nil
}

// embedding returns the (cached) time embedding of timestep t.
func (d *DDPM) embedding(t int) []float32 {
	if e := d.embCache[t]; e != nil {
		return e
	}
	e := make([]float32, d.cfg.TEmb)
	timestepEmbedding(e, t, d.cfg.TEmb)
	d.embCache[t] = e
	return e
}

// Noised is q(x_t | x_0): x_t = sqrt(ᾱ_t)·x0 + sqrt(1-ᾱ_t)·eps per image,
// in float32 with the reference's float32 tables. x0 and eps hold len(t)
// images of NoiseDim() values each. It panics when the lengths disagree or
// a timestep is outside 0..T-1.
func (d *DDPM) Noised(x0 []float32, t []int, eps []float32) ([]float32, error) {
	out := make([]float32, len(x0))
	return out, d.noisedInto(out, x0, t, eps)
}

func (d *DDPM) noisedInto(dst, x0 []float32, t []int, eps []float32) error {
	n := d.shape.Size()
	if len(x0) != len(t)*n || len(eps) != len(x0) || len(dst) != len(x0) {
		return fmt.Errorf("ddpm noised: %d values, %d noise values for %d images of %d", len(x0), len(eps), len(t), n)
	}
	for _, ti := range t {
		if ti < 0 || ti >= d.cfg.T {
			return fmt.Errorf("ddpm noised: timestep %d outside 0..%d", ti, d.cfg.T-1)
		}
	}
	for i, ti := range t {
		a, s := d.sch.sqrtAbar32[ti], d.sch.sqrt1mAbar32[ti]
		row := i * n
		for j := row; j < row+n; j++ {
			dst[j] = float32(a*x0[j]) + float32(s*eps[j])
		}
	}
	return nil
}

// setStepInputs writes one training step's inputs: x_t from the uint8
// batch, the timesteps ts and the noise eps.
func (d *DDPM) setStepInputs(batch []uint8, ts []int, eps []float32) error {
	s := d.train
	n, te := d.shape.Size(), d.cfg.tembIn()
	if len(batch) != len(ts)*n || len(ts) != d.cfg.Batch || len(eps) != len(batch) {
		return fmt.Errorf("ddpm step: %d pixels, %d noise values for %d images", len(batch), len(eps), len(ts))
	}
	x0 := d.xt // scratch: x0 first, then x_t in place
	for i, p := range batch {
		x0[i] = float32(p)/127.5 - 1
	}
	if err := d.noisedInto(d.xt, x0, ts, eps); err != nil {
		return err
	}
	for i, t := range ts {
		d.writeEmbedding(d.temb[i*te:(i+1)*te], t, d.labels[i])
	}
	if err := copyInto(s.xt, d.xt); err != nil {
		return err
	}
	if err := copyInto(s.temb, d.temb); err != nil {
		return err
	}
	return copyInto(s.eps, eps)
}

// TrainStep implements Model: t ~ UniformInt[0, T) per image, then
// eps ~ N(0, I), both from rng; one Adam step on MSE(eps_theta(x_t, t), eps).
// A conditional model learns unconditionally (every label dropped).
func (d *DDPM) TrainStep(batch []uint8, rng *rand.Rand) ([]float64, error) {
	return d.TrainStepLabels(batch, nil, rng)
}

// TrainStepLabels implements LabelledTrainer: TrainStep with the batch's
// class labels (nil or −1: none), each dropped with LabelDropout (the
// draws come from rng after the timesteps and the noise).
func (d *DDPM) TrainStepLabels(batch []uint8, labels []int, rng *rand.Rand) ([]float64, error) {
	b, n := d.cfg.Batch, d.shape.Size()
	if len(batch) != b*n {
		return nil, fmt.Errorf("ddpm step: batch has %d values, want %d (%d images of %d)", len(batch), b*n, b, n)
	}
	if d.train == nil {
		return nil, errors.New("ddpm step: model is closed")
	}
	for i := range d.ts {
		d.ts[i] = rng.IntN(d.cfg.T)
	}
	FillNormal(d.eps, rng)
	if labels != nil && len(labels) != b {
		return nil, fmt.Errorf("ddpm step: %d labels for %d images", len(labels), b)
	}
	for i := range d.labels {
		d.labels[i] = -1
		if d.cfg.Classes == 0 {
			continue
		}
		keep := rng.Float64() >= d.cfg.LabelDropout
		if labels != nil && keep && labels[i] >= 0 && labels[i] < d.cfg.Classes {
			d.labels[i] = labels[i]
		}
	}
	if err := d.setStepInputs(batch, d.ts, d.eps); err != nil {
		return nil, err
	}
	s := d.train
	loss, err := optimizeStep(s.vm, s.weights, &s.loss, d.opt, "ddpm step", "MSE")
	if err == nil {
		d.ema.update(d.opt.Step)
	}
	return []float64{loss}, err
}

// ddpmFwdGraph is the noise predictor alone, for a fixed batch of rows
// (ddpmChunk, or fewer for the U-Net), sharing the weight tensors with the
// training graph.
type ddpmFwdGraph struct {
	vm       G.VM
	rows     int
	xt, temb *tensor.Dense
	out      G.Value
}

// graphRows is the size of the forward graph that runs b ≤ ddpmChunk
// images: always ddpmChunk for the MLP, whose rows cost little; for the
// U-Net the next power of two.
func (d *DDPM) graphRows(b int) int {
	if d.unet == nil {
		return ddpmChunk
	}
	r := 1
	for r < b {
		r *= 2
	}
	return min(r, ddpmChunk)
}

func (d *DDPM) forward(rows int) (*ddpmFwdGraph, error) {
	if rows == ddpmChunk && d.fwd != nil {
		return d.fwd, nil
	}
	if f := d.fwdSmall[rows]; f != nil {
		return f, nil
	}
	n, te := d.shape.Size(), d.cfg.tembIn()
	ng := nn.NewGraph(false)
	eg := ng.ExprGraph
	f := &ddpmFwdGraph{
		rows: rows,
		xt:   tensor.New(tensor.WithShape(rows, n), tensor.Of(d.dt)),
		temb: tensor.New(tensor.WithShape(rows, te), tensor.Of(d.dt)),
	}
	xt := G.NewMatrix(eg, d.dt, G.WithShape(rows, n), G.WithValue(f.xt), G.WithName("x_t"))
	temb := G.NewMatrix(eg, d.dt, G.WithShape(rows, te), G.WithValue(f.temb), G.WithName("temb_in"))
	out, _, err := d.epsNet(ng, xt, temb)
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	f.vm = newReuseTape(eg)
	if rows == ddpmChunk {
		d.fwd = f
	} else {
		if d.fwdSmall == nil {
			d.fwdSmall = map[int]*ddpmFwdGraph{}
		}
		d.fwdSmall[rows] = f
	}
	return f, nil
}

// PredictNoise returns eps_theta(x, t) for the images of x (model scale,
// NoiseDim() values each) at the same timestep t.
func (d *DDPM) PredictNoise(x []float32, t int) ([]float32, error) {
	n := d.shape.Size()
	if len(x) == 0 || len(x)%n != 0 {
		return nil, fmt.Errorf("predict noise: %d values is not a whole number of %d-value images", len(x), n)
	}
	if t < 0 || t >= d.cfg.T {
		return nil, fmt.Errorf("predict noise: timestep %d outside 0..%d", t, d.cfg.T-1)
	}
	out := make([]float32, len(x))
	return out, d.predictEps(out, x, t, nil, 0)
}

// predictEps writes eps_theta(x, t) for every image of x (the same t for
// all) into dst, running the forward graph in chunks of ddpmChunk. labels
// (one per image, −1 or nil: none) condition a conditional model; with a
// guidance scale s ≠ 1 it also predicts unconditionally and returns
// ε_u + s·(ε_c − ε_u).
func (d *DDPM) predictEps(dst, x []float32, t int, labels []int, s float64) error {
	if d.cfg.Classes == 0 || labels == nil || s == 0 {
		return d.predictRows(dst, x, t, nil)
	}
	if err := d.predictRows(dst, x, t, labels); err != nil || s == 1 {
		return err
	}
	if len(d.uncond) != len(dst) {
		d.uncond = make([]float32, len(dst))
	}
	if err := d.predictRows(d.uncond, x, t, nil); err != nil {
		return err
	}
	g := float32(s)
	for i, u := range d.uncond {
		dst[i] = u + g*(dst[i]-u)
	}
	return nil
}

// predictRows runs the predictor on x at t with labels (nil: none).
func (d *DDPM) predictRows(dst, x []float32, t int, labels []int) error {
	n, te := d.shape.Size(), d.cfg.tembIn()
	rows := len(x) / n
	row := make([]float32, te)
	for start := 0; start < rows; start += ddpmChunk {
		b := min(ddpmChunk, rows-start)
		f, err := d.forward(d.graphRows(b))
		if err != nil {
			return fmt.Errorf("noise predictor graph: %w", err)
		}
		for r := 0; r < f.rows; r++ {
			lab := -1
			if labels != nil && start+r < rows {
				lab = labels[start+r]
			}
			d.writeEmbedding(row, t, lab)
			writeRow(f.temb, r*te, row)
		}
		writeRow(f.xt, 0, x[start*n:(start+b)*n])
		if b < f.rows {
			zeroFrom(f.xt, b*n)
		}
		f.vm.Reset()
		if err := f.vm.RunAll(); err != nil {
			return fmt.Errorf("noise predictor forward: %w", err)
		}
		if err := readRows(dst[start*n:(start+b)*n], f.out); err != nil {
			return err
		}
	}
	return nil
}

// writeEmbedding writes the predictor's embedding input for timestep t
// and label lab (−1: none) into dst (tembIn values).
func (d *DDPM) writeEmbedding(dst []float32, t, lab int) {
	copy(dst, d.embedding(t))
	if k := d.cfg.Classes; k > 0 {
		oh := dst[d.cfg.TEmb:]
		clear(oh)
		if lab < 0 || lab >= k {
			lab = k // "no label"
		}
		oh[lab] = 1
	}
}

func writeRow(t *tensor.Dense, off int, src []float32) {
	switch d := t.Data().(type) {
	case []float32:
		copy(d[off:], src)
	case []float64:
		for i, v := range src {
			d[off+i] = float64(v)
		}
	}
}

func zeroFrom(t *tensor.Dense, off int) {
	switch d := t.Data().(type) {
	case []float32:
		clear(d[off:])
	case []float64:
		clear(d[off:])
	}
}

// readRows copies the first len(dst) values of a graph output into dst.
func readRows(dst []float32, v G.Value) error {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return fmt.Errorf("graph output %v is not a tensor", v)
	}
	switch d := t.Data().(type) {
	case []float32:
		if len(d) < len(dst) {
			return fmt.Errorf("graph output has %d values, want %d", len(d), len(dst))
		}
		copy(dst, d)
	case []float64:
		if len(d) < len(dst) {
			return fmt.Errorf("graph output has %d values, want %d", len(d), len(dst))
		}
		for i := range dst {
			dst[i] = float32(d[i])
		}
	default:
		return fmt.Errorf("graph output has unsupported type %T", d)
	}
	return nil
}

// sampleStep is one reverse step at table index t. The ancestral form is
// x ← (x - c1·eps)/c2 + σ·z, written in the reference's float32 order of
// operations; the DDIM form is x ← cx·x + ce·eps + σ·z. z is drawn only
// when σ > 0.
type sampleStep struct {
	t         int
	ancestral bool
	c1, c2    float32 // ancestral
	cx, ce    float32 // DDIM
	sigma     float32
}

// sampleTimesteps lists the K visited timesteps ascending:
// t_i = floor((i+1)·T/K) - 1, so t_{K-1} = T-1 and K = T gives 0..T-1.
func sampleTimesteps(T, K int) []int {
	ts := make([]int, K)
	for i := range ts {
		ts[i] = (i+1)*T/K - 1
	}
	return ts
}

// ddimSigma is DDIM's σ for ᾱ_t = at, ᾱ_prev = ap and η:
// η·sqrt((1-ᾱ_prev)/(1-ᾱ_t))·sqrt(1-ᾱ_t/ᾱ_prev).
func ddimSigma(at, ap, eta float64) float64 {
	return eta * math.Sqrt((1-ap)/(1-at)) * math.Sqrt(max(0, 1-at/ap))
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// plan lists the reverse steps of a sampler, first to last. posterior
// switches the ancestral sampler's variance from β_t to the posterior's
// β̃_t = β_t(1-ᾱ_prev)/(1-ᾱ_t) (used to check DDIM with η = 1).
func (d *DDPM) plan(o SampleOptions, posterior bool) ([]sampleStep, error) {
	if err := o.validate(d.cfg.T); err != nil {
		return nil, err
	}
	k := o.Steps
	if k == 0 {
		k = d.cfg.T
	}
	sc := d.sch
	ts := sampleTimesteps(d.cfg.T, k)
	steps := make([]sampleStep, 0, k)
	for i := k - 1; i >= 0; i-- {
		t, prev := ts[i], -1
		ap := 1.0
		if i > 0 {
			prev = ts[i-1]
			ap = sc.abar[prev]
		}
		at := sc.abar[t]
		st := sampleStep{t: t, ancestral: o.Sampler == SamplerDDPM}
		if st.ancestral {
			beta, alpha := sc.betas32[t], sc.alphas32[t]
			if prev != t-1 { // respaced
				beta, alpha = float32(1-at/ap), float32(at/ap)
			}
			st.c1 = beta / sc.sqrt1mAbar32[t]
			st.c2 = sqrt32(alpha)
			if i > 0 {
				if posterior {
					st.sigma = float32(math.Sqrt((1 - at/ap) * (1 - ap) / (1 - at)))
				} else {
					st.sigma = sqrt32(beta)
				}
			}
		} else {
			sigma := ddimSigma(at, ap, o.Eta)
			st.sigma = float32(sigma)
			st.cx = float32(math.Sqrt(ap / at))
			st.ce = float32(math.Sqrt(max(0, 1-ap-sigma*sigma)) - math.Sqrt(ap)*math.Sqrt(1-at)/math.Sqrt(at))
		}
		st.sigma *= float32(o.temperature())
		steps = append(steps, st)
	}
	return steps, nil
}

// apply performs one reverse step on x given eps_hat and the noise z (nil
// when σ = 0).
func (st *sampleStep) apply(x, eps, z []float32) {
	if st.ancestral {
		for i := range x {
			m := (x[i] - float32(st.c1*eps[i])) / st.c2
			if z != nil {
				m += float32(st.sigma * z[i])
			}
			x[i] = m
		}
		return
	}
	for i := range x {
		v := float32(st.cx*x[i]) + float32(st.ce*eps[i])
		if z != nil {
			v += float32(st.sigma * z[i])
		}
		x[i] = v
	}
}

// seedOf hashes z's float bits (FNV-1a), so the same noise seeds the same
// sampler stream.
func seedOf(z []float32) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, v := range z {
		u := math.Float32bits(v)
		b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		h.Write(b[:])
	}
	return h.Sum64()
}

// Sample implements Model: the configured sampler from x_T = z, its noise
// drawn from a stream seeded by z's contents, so the same z gives the same
// images. Images come out in [0, 1].
func (d *DDPM) Sample(z []float32) ([]float32, error) { return SampleImages(d, z, nil, nil) }

// SampleWith runs a sampler from x_T = z (NoiseDim() values per image) and
// returns x_0 clamped to [-1, 1] (model scale; Sample maps it to [0, 1]).
// The per-step noise comes from rng; nil means a stream seeded from z's
// contents, as Sample uses. DDIM with η = 0 draws no noise.
//
// progress, when not nil, is called with a copy of the batch's current x_t
// in model scale, where t counts the diffusion steps of noise left in it:
// first t = T with x = z, then about every eighth of the way, and last t = 0
// with the clamped x_0.
func (d *DDPM) SampleWith(z []float32, opts SampleOptions, rng *rand.Rand, progress Progress) ([]float32, error) {
	n := d.shape.Size()
	if len(z) == 0 || len(z)%n != 0 {
		return nil, fmt.Errorf("sample: noise length %d is not a multiple of the image size %d", len(z), n)
	}
	steps, err := d.plan(opts, false)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	if tau := float32(opts.temperature()); tau != 1 {
		zt := make([]float32, len(z))
		for i, v := range z {
			zt[i] = tau * v
		}
		z = zt
	}
	if opts.Class != nil && (d.cfg.Classes == 0 || *opts.Class < 0 || *opts.Class >= d.cfg.Classes) {
		return nil, fmt.Errorf("sample: class %d: the model has %d classes", *opts.Class, d.cfg.Classes)
	}
	var out []float32
	err = d.ema.with(func() (err error) {
		out, err = d.run(z, steps, rng, progress, opts.labels(len(z)/n, d.cfg.Classes), opts.Guidance)
		return err
	})
	return out, err
}

// run walks the chain from x_T = z; labels (nil: none) and the guidance
// scale condition a conditional model.
func (d *DDPM) run(z []float32, steps []sampleStep, rng *rand.Rand, progress Progress, labels []int, guidance float64) ([]float32, error) {
	if d.train == nil {
		return nil, errors.New("sample: model is closed")
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(seedOf(z), 0xbb67ae8584caa73b))
	}
	report := func(t int, x []float32) error {
		if progress != nil {
			return progress(t, append([]float32(nil), x...))
		}
		return nil
	}
	x := append([]float32(nil), z...)
	eps := make([]float32, len(x))
	var noise []float32
	if err := report(d.cfg.T, x); err != nil {
		return nil, err
	}
	every := max(1, len(steps)/8)
	for i := range steps {
		st := &steps[i]
		if err := d.predictEps(eps, x, st.t, labels, guidance); err != nil {
			return nil, err
		}
		var zt []float32
		if st.sigma > 0 {
			if noise == nil {
				noise = make([]float32, len(x))
			}
			FillNormal(noise, rng)
			zt = noise
		}
		st.apply(x, eps, zt)
		if (i+1)%every == 0 && i+1 < len(steps) {
			if err := report(steps[i+1].t+1, x); err != nil {
				return nil, err
			}
		}
	}
	for i, v := range x {
		x[i] = max(-1, min(1, v))
	}
	return x, report(0, x)
}

var _ Model = (*DDPM)(nil)

// LRSchedule implements Scheduled.
func (d *DDPM) LRSchedule() LRSchedule { return d.cfg.LRSchedule }

// ScaleLR implements Scheduled.
func (d *DDPM) ScaleLR(f float64) { d.cfg.LRSchedule.apply(f, d.opt) }
