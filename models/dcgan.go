package models

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
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

// dcMaxActivation bounds the largest activation a config may need (values:
// 256 MB in float32; a step holds several such tensors).
const dcMaxActivation = 1 << 26

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
	case !(c.Slope >= 0 && c.Slope < 1):
		return fmt.Errorf("LeakyReLU slope must be in [0, 1), got %g", c.Slope)
	}
	// The largest activations are the generator's upsampled batch×F×S×S map
	// and the discriminator's batch×F×(S/2)² one (and their gradients):
	// refuse sizes that would need gigabytes.
	if n := max(c.Batch*c.GFeatures*side*side, c.Batch*c.DFeatures*side*side/4); n > dcMaxActivation {
		return fmt.Errorf("batch %d with %d/%d feature maps needs too much memory; lower the batch or the feature maps", c.Batch, c.GFeatures, c.DFeatures)
	}
	return validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch)
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
	m.gen = newDCGenerator(cfg, dt, rng)
	m.disc = newDCDiscriminator(cfg, dt, rng)
	m.optG = NewAdam(tensorsOf(m.gen.params()), cfg.LR, cfg.Beta1, cfg.Beta2)
	m.optD = NewAdam(tensorsOf(m.disc.params()), cfg.LR, cfg.Beta1, cfg.Beta2)
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
	for _, p := range append(m.gen.params(), m.disc.params()...) {
		n += p.T.Shape().TotalSize()
	}
	return n
}

// State implements Model: the generator's weights and batch-norm running
// statistics, the discriminator's weights, then both Adams' moments, named
// like PyTorch's state_dict and optimizer state. Convolution weights are
// stored out×in×kh×kw, as PyTorch stores them.
func (m *DCGAN) State() []NamedTensor {
	dp := m.disc.params()
	return slices.Concat(m.gen.state(), dp, m.optG.MomentTensors("optim_g", m.gen.params()), m.optD.MomentTensors("optim_d", dp))
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
// gradX and gradW say whether a graph differentiating through the layer
// needs the gradient with respect to x and to the weights: Gorgonia's tape
// runs every node of the graph, so gradients nobody reads are better never
// built (the discriminator's weights in the generator's step, the images in
// the discriminator's).
func (c *dcConv) apply(x, w, b *G.Node, gradX, gradW bool) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 || s[1] != c.In {
		return nil, fmt.Errorf("%s: input shape %v, want (N, %d, H, W)", c.Name, s, c.In)
	}
	op := dcConvOp{kind: dcConvFwd, k: c.K, stride: c.Stride, pad: c.Pad, bias: b != nil, noGradX: !gradX, noGradW: !gradW}
	if ho, wo := op.outHW(s[2], s[3]); ho < 1 || wo < 1 {
		return nil, fmt.Errorf("%s: input %dx%d is too small", c.Name, s[2], s[3])
	}
	in := G.Nodes{x, w}
	if b != nil {
		in = append(in, b)
	}
	y, err := G.ApplyOp(op, in...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	return y, nil
}

// The kinds of dcConvOp.
const (
	dcConvFwd   = iota // (x, w[, b]) → y
	dcConvGradX        // (w, dy) → dx
	dcConvGradW        // (x, dy) → dw
	dcConvGradB        // dy → db
)

// dcConvOp is a 2-D convolution, PyTorch's Conv2d (cross-correlation, NCHW,
// weights out×in×kh×kw, square kernel, equal stride and padding on both
// axes), and the pieces of its backward pass.
//
// It unfolds a group of g samples at a time into a K×(g·P) matrix (K =
// in·k·k, P = output pixels; Caffe's layout, so each kernel offset copies
// contiguous runs of an input row), small enough to stay in cache, and
// multiplies it by the Out×K weight matrix with one BLAS gemm; the Out×(g·P)
// result is already NCHW within each sample. G.Conv2d unfolds the whole
// batch into an N×Ho×Wo×K tensor (hundreds of MB at batch 64), multiplies,
// then transposes the result (and the gradient) between NHWC and NCHW: with
// it a default training step took 3.8 s here, with this op 0.5 s.
type dcConvOp struct {
	kind           int
	k, stride, pad int
	bias           bool   // dcConvFwd: a bias input follows the weights
	x              [4]int // dcConvGradX: the input's shape
	// dcConvFwd: no gradient with respect to x, or to the weights and bias
	noGradX, noGradW bool
}

func (op dcConvOp) outHW(h, w int) (int, int) {
	return (h+2*op.pad-op.k)/op.stride + 1, (w+2*op.pad-op.k)/op.stride + 1
}

func (op dcConvOp) Arity() int {
	switch op.kind {
	case dcConvFwd:
		if op.bias {
			return 3
		}
		return 2
	case dcConvGradB:
		return 1
	}
	return 2
}

func (op dcConvOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4, t1 := G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 1, Of: a}
	switch op.kind {
	case dcConvFwd:
		if op.bias {
			return hm.NewFnType(t4, t4, t1, t4)
		}
		return hm.NewFnType(t4, t4, t4)
	case dcConvGradB:
		return hm.NewFnType(t4, t1)
	}
	return hm.NewFnType(t4, t4, t4)
}

func (op dcConvOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if len(ds) != op.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", op, len(ds), op.Arity())
	}
	shapes := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%v: input %d has no shape", op, i)
		}
		shapes[i] = s
	}
	switch op.kind {
	case dcConvFwd:
		x, w := shapes[0], shapes[1]
		if x.Dims() != 4 || w.Dims() != 4 || w[1] != x[1] || w[2] != op.k || w[3] != op.k {
			return nil, fmt.Errorf("%v: input %v and weights %v do not fit", op, x, w)
		}
		if op.bias && (shapes[2].Dims() != 1 || shapes[2][0] != w[0]) {
			return nil, fmt.Errorf("%v: bias %v for %d outputs", op, shapes[2], w[0])
		}
		ho, wo := op.outHW(x[2], x[3])
		return tensor.Shape{x[0], w[0], ho, wo}, nil
	case dcConvGradX:
		w, dy := shapes[0], shapes[1]
		ho, wo := op.outHW(op.x[2], op.x[3])
		if w.Dims() != 4 || dy.Dims() != 4 || w[1] != op.x[1] || !dy.Eq(tensor.Shape{op.x[0], w[0], ho, wo}) {
			return nil, fmt.Errorf("%v: weights %v and gradient %v do not fit", op, w, dy)
		}
		return tensor.Shape{op.x[0], op.x[1], op.x[2], op.x[3]}, nil
	case dcConvGradW:
		x, dy := shapes[0], shapes[1]
		if x.Dims() != 4 || dy.Dims() != 4 || x[0] != dy[0] {
			return nil, fmt.Errorf("%v: input %v and gradient %v do not fit", op, x, dy)
		}
		return tensor.Shape{dy[1], x[1], op.k, op.k}, nil
	default:
		if shapes[0].Dims() != 4 {
			return nil, fmt.Errorf("%v: gradient %v is not 4-D", op, shapes[0])
		}
		return tensor.Shape{shapes[0][1]}, nil
	}
}

func (op dcConvOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

func (op dcConvOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	ins, shapes, err := dcInputs(op, op.Arity(), vs)
	if err != nil {
		return nil, err
	}
	os, err := op.InferShape(shapes...)
	if err != nil {
		return nil, err
	}
	out := dcOutput(prealloc, os, ins[0].Dtype())
	switch ins[0].Dtype() {
	case tensor.Float32:
		err = dcConvRun[float32](op, ins, out)
	case tensor.Float64:
		err = dcConvRun[float64](op, ins, out)
	default:
		err = fmt.Errorf("%v: unsupported dtype %v", op, ins[0].Dtype())
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dcConvGeom is the geometry of one convolution.
type dcConvGeom struct {
	n, cin, h, w, cout, ho, wo int
	k, stride, pad             int
}

func (g dcConvGeom) kk() int { return g.cin * g.k * g.k } // rows of the unfolded matrix
func (g dcConvGeom) p() int  { return g.ho * g.wo }       // output pixels per sample

// dcConvGroupValues bounds the unfolded matrix: about 2 MB of float32, so
// that it stays in cache between the unfolding and the gemm (a variable so
// that tests can force several groups).
var dcConvGroupValues = 1 << 19

// group is how many samples one unfolded matrix holds.
func (g dcConvGeom) group() int { return max(1, min(g.n, dcConvGroupValues/max(1, g.kk()*g.p()))) }

// dcConvScratch recycles the unfolded matrices between runs.
var dcConvScratch = [2]sync.Pool{}

func dcScratch[T float32 | float64](n int) *[]T {
	var zero T
	pool := &dcConvScratch[0]
	if any(zero) == any(float64(0)) {
		pool = &dcConvScratch[1]
	}
	if p, ok := pool.Get().(*[]T); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]T, n)
	return &s
}

func dcRelease[T float32 | float64](p *[]T) {
	var zero T
	if any(zero) == any(float64(0)) {
		dcConvScratch[1].Put(p)
	} else {
		dcConvScratch[0].Put(p)
	}
}

func dcConvRun[T float32 | float64](op dcConvOp, ins []*tensor.Dense, out *tensor.Dense) error {
	t0 := time.Now()
	data := make([][]T, len(ins))
	for i, in := range ins {
		d, ok := in.Data().([]T)
		if !ok {
			return fmt.Errorf("%v: input %d has the wrong element type", op, i)
		}
		data[i] = d
	}
	o := out.Data().([]T)
	g := dcConvGeom{k: op.k, stride: op.stride, pad: op.pad}
	switch op.kind {
	case dcConvFwd:
		xs, ws := ins[0].Shape(), ins[1].Shape()
		g.n, g.cin, g.h, g.w, g.cout = xs[0], xs[1], xs[2], xs[3], ws[0]
	case dcConvGradX:
		g.n, g.cin, g.h, g.w, g.cout = op.x[0], op.x[1], op.x[2], op.x[3], ins[0].Shape()[0]
	case dcConvGradW:
		xs, dys := ins[0].Shape(), ins[1].Shape()
		g.n, g.cin, g.h, g.w, g.cout = xs[0], xs[1], xs[2], xs[3], dys[1]
	case dcConvGradB:
		dys := ins[0].Shape()
		dcBiasGrad(data[0], o, dys[0], dys[1], dys[2]*dys[3])
		convRecord(t0, dys.TotalSize())
		return nil
	}
	g.ho, g.wo = op.outHW(g.h, g.w)
	defer convRecord(t0, 2*g.n*g.cout*g.p()*g.kk())
	switch op.kind {
	case dcConvFwd:
		var b []T
		if op.bias {
			b = data[2]
		}
		dcConvForward(g, data[0], data[1], b, o)
	case dcConvGradX:
		dcConvBackX(g, data[0], data[1], o)
	case dcConvGradW:
		dcConvBackW(g, data[0], data[1], o)
	}
	return nil
}

// dcConvForward computes y = conv(x, w) + b.
func dcConvForward[T float32 | float64](g dcConvGeom, x, w, b, y []T) {
	kk, p, gs := g.kk(), g.p(), g.group()
	col, res := dcScratch[T](kk*gs*p), dcScratch[T](g.cout*gs*p)
	defer dcRelease(col)
	defer dcRelease(res)
	for n0 := 0; n0 < g.n; n0 += gs {
		m := min(gs, g.n-n0)
		dcIm2Col(g, x, n0, m, (*col)[:kk*m*p])
		dcGemm(false, false, g.cout, m*p, kk, w, kk, (*col)[:kk*m*p], m*p, 0, (*res)[:g.cout*m*p], m*p)
		for j := 0; j < m; j++ {
			for c := 0; c < g.cout; c++ {
				dst := y[((n0+j)*g.cout+c)*p:][:p]
				src := (*res)[(c*m+j)*p:][:p]
				if b == nil {
					copy(dst, src)
					continue
				}
				bc := b[c]
				for q, v := range src {
					dst[q] = v + bc
				}
			}
		}
	}
}

// dcGatherDY copies samples n0..n0+m of dy (N, Cout, P) into a Cout×(m·P) matrix.
func dcGatherDY[T float32 | float64](g dcConvGeom, dy []T, n0, m int, dst []T) {
	p := g.p()
	for j := 0; j < m; j++ {
		for c := 0; c < g.cout; c++ {
			copy(dst[(c*m+j)*p:][:p], dy[((n0+j)*g.cout+c)*p:][:p])
		}
	}
}

// dcConvBackX computes dx = convᵀ(dy, w): dcol = wᵀ·dy, folded back (col2im).
func dcConvBackX[T float32 | float64](g dcConvGeom, w, dy, dx []T) {
	kk, p, gs := g.kk(), g.p(), g.group()
	col, dyg := dcScratch[T](kk*gs*p), dcScratch[T](g.cout*gs*p)
	defer dcRelease(col)
	defer dcRelease(dyg)
	clear(dx)
	for n0 := 0; n0 < g.n; n0 += gs {
		m := min(gs, g.n-n0)
		dcGatherDY(g, dy, n0, m, (*dyg)[:g.cout*m*p])
		dcGemm(true, false, kk, m*p, g.cout, w, kk, (*dyg)[:g.cout*m*p], m*p, 0, (*col)[:kk*m*p], m*p)
		dcCol2Im(g, (*col)[:kk*m*p], n0, m, dx)
	}
}

// dcConvBackW computes dw = Σ dy·colᵀ over the batch.
func dcConvBackW[T float32 | float64](g dcConvGeom, x, dy, dw []T) {
	kk, p, gs := g.kk(), g.p(), g.group()
	col, dyg := dcScratch[T](kk*gs*p), dcScratch[T](g.cout*gs*p)
	defer dcRelease(col)
	defer dcRelease(dyg)
	var beta T
	for n0 := 0; n0 < g.n; n0 += gs {
		m := min(gs, g.n-n0)
		dcIm2Col(g, x, n0, m, (*col)[:kk*m*p])
		dcGatherDY(g, dy, n0, m, (*dyg)[:g.cout*m*p])
		dcGemm(false, true, g.cout, kk, m*p, (*dyg)[:g.cout*m*p], m*p, (*col)[:kk*m*p], m*p, beta, dw, kk)
		beta = 1
	}
}

func dcBiasGrad[T float32 | float64](dy, db []T, n, c, hw int) {
	dcParallel(c, n*c*hw, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for k := 0; k < n; k++ {
				for _, v := range dy[(k*c+ch)*hw:][:hw] {
					s += float64(v)
				}
			}
			db[ch] = T(s)
		}
	})
}

// dcParallel runs f over [0, n) split into contiguous ranges, one goroutine
// each, when the work (cost, in values touched) is worth it. Each index must
// write its own memory, so the result does not depend on the split.
func dcParallel(n, cost int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n, cost/(1<<15))
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// dcIm2Col unfolds samples n0..n0+m of x into col (K rows, m·P columns):
// col[(ci·k+ky)·k+kx][j·P + oy·Wo+ox] = x[n0+j, ci, oy·s−p+ky, ox·s−p+kx] (0 outside).
func dcIm2Col[T float32 | float64](g dcConvGeom, x []T, n0, m int, col []T) {
	p, s := g.p(), g.stride
	dcParallel(g.cin, len(col), func(c0, c1 int) {
		for ci := c0; ci < c1; ci++ {
			for ky := 0; ky < g.k; ky++ {
				for kx := 0; kx < g.k; kx++ {
					row := col[((ci*g.k+ky)*g.k+kx)*m*p:][:m*p]
					// valid ox: 0 ≤ ox·s − pad + kx < W
					lo := max(0, (g.pad-kx+s-1)/s)
					hi := min(g.wo, (g.w-1+g.pad-kx)/s+1)
					if g.w-1+g.pad-kx < 0 {
						hi = 0
					}
					for j := 0; j < m; j++ {
						plane := x[((n0+j)*g.cin+ci)*g.h*g.w:][:g.h*g.w]
						for oy := 0; oy < g.ho; oy++ {
							dst := row[j*p+oy*g.wo:][:g.wo]
							iy := oy*s - g.pad + ky
							if iy < 0 || iy >= g.h || lo >= hi {
								clear(dst)
								continue
							}
							clear(dst[:lo])
							clear(dst[hi:])
							src := plane[iy*g.w:][:g.w]
							if s == 1 {
								copy(dst[lo:hi], src[lo-g.pad+kx:])
								continue
							}
							for ox := lo; ox < hi; ox++ {
								dst[ox] = src[ox*s-g.pad+kx]
							}
						}
					}
				}
			}
		}
	})
}

// dcCol2Im adds the unfolded gradient col back onto samples n0..n0+m of dx
// (the adjoint of dcIm2Col).
func dcCol2Im[T float32 | float64](g dcConvGeom, col []T, n0, m int, dx []T) {
	p, s := g.p(), g.stride
	dcParallel(g.cin, len(col), func(c0, c1 int) {
		for ci := c0; ci < c1; ci++ {
			for ky := 0; ky < g.k; ky++ {
				for kx := 0; kx < g.k; kx++ {
					row := col[((ci*g.k+ky)*g.k+kx)*m*p:][:m*p]
					lo := max(0, (g.pad-kx+s-1)/s)
					hi := min(g.wo, (g.w-1+g.pad-kx)/s+1)
					if g.w-1+g.pad-kx < 0 || lo >= hi {
						continue
					}
					for j := 0; j < m; j++ {
						plane := dx[((n0+j)*g.cin+ci)*g.h*g.w:][:g.h*g.w]
						for oy := 0; oy < g.ho; oy++ {
							iy := oy*s - g.pad + ky
							if iy < 0 || iy >= g.h {
								continue
							}
							src := row[j*p+oy*g.wo:][:g.wo]
							dst := plane[iy*g.w:][:g.w]
							if s == 1 {
								d := dst[lo-g.pad+kx:][:hi-lo]
								for i, v := range src[lo:hi] {
									d[i] += v
								}
								continue
							}
							for ox := lo; ox < hi; ox++ {
								dst[ox*s-g.pad+kx] += src[ox]
							}
						}
					}
				}
			}
		}
	})
}

// dcGemm is C = A·B + beta·C (row-major, A m×k or its transpose, B k×n or
// its transpose) on the BLAS Gorgonia uses (OpenBLAS when cgo is on).
func dcGemm[T float32 | float64](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float32:
		G.WhichBLAS().Sgemm(ta, tb, m, n, k, 1, a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		G.WhichBLAS().Dgemm(ta, tb, m, n, k, 1, a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

func (op dcConvOp) ReturnsPtr() bool      { return false }
func (op dcConvOp) CallsExtern() bool     { return false }
func (op dcConvOp) OverwritesInput() int  { return -1 }
func (op dcConvOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op dcConvOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op dcConvOp) String() string {
	name := [...]string{"dcConv2d", "dcConv2dGradX", "dcConv2dGradW", "dcConv2dGradB"}[op.kind]
	return fmt.Sprintf("%s{k=%d,s=%d,p=%d,bias=%t,x=%v,grad=%t/%t}", name, op.k, op.stride, op.pad, op.bias, op.x, !op.noGradX, !op.noGradW)
}

// DiffWRT: only the forward convolution is differentiated, in the inputs
// its flags ask for.
func (op dcConvOp) DiffWRT(n int) []bool {
	out := make([]bool, n)
	if op.kind == dcConvFwd {
		for i := range out {
			out[i] = (i == 0 && !op.noGradX) || (i > 0 && !op.noGradW)
		}
	}
	return out
}

func (op dcConvOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.kind != dcConvFwd || len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v is not differentiable", op)
	}
	x, w := inputs[0], inputs[1]
	out := make(G.Nodes, len(inputs))
	plain := dcConvOp{k: op.k, stride: op.stride, pad: op.pad}
	var err error
	if !op.noGradX {
		xs := x.Shape()
		gx := plain
		gx.kind, gx.x = dcConvGradX, [4]int{xs[0], xs[1], xs[2], xs[3]}
		if out[0], err = G.ApplyOp(gx, w, grad); err != nil {
			return nil, err
		}
	}
	if !op.noGradW {
		gw := plain
		gw.kind = dcConvGradW
		if out[1], err = G.ApplyOp(gw, x, grad); err != nil {
			return nil, err
		}
		if op.bias {
			gb := plain
			gb.kind = dcConvGradB
			if out[2], err = G.ApplyOp(gb, grad); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
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

// dcBatchNorm is PyTorch's BatchNorm2d (affine, momentum 0.1, eps 1e-5):
// in training mode it normalises with the batch mean and biased variance
// over (N, H, W), and the caller folds those statistics into the running
// ones (update); in evaluation mode it uses the running statistics.
//
// Neither Gorgonia's BatchNorm nor a composition of its ops is used.
// BatchNorm keeps its running statistics inside each graph's op (so the
// sampling and training graphs would not share them), SetTraining(true)
// resets them, its γ/β are full-shape tensors with clock-seeded Glorot
// initialisation, and its DoDiff reads inputs the op does not have. The
// composition (Mean over N,H,W, BroadcastSub, …) needs Reshape, and
// Gorgonia's register allocator does not see that a reshape shares its
// input's memory: an in-place op on the reshaped value overwrote the
// input (the graph's input tensor itself, in a test) and the gradients
// through the normalisation came out wrong. So batch norm is one op with a
// hand-written backward (dcBNOp), checked by finite differences.
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

// apply normalises x (N, C, H, W): with batch statistics when n has no
// running statistics (training), else with them. With stats set (training
// only) it also returns a (2, C) node holding the batch mean and biased
// variance, for update.
func (bn *dcBatchNorm) apply(x *G.Node, n *dcBNNodes, stats bool) (y, st *G.Node, err error) {
	if s := x.Shape(); s.Dims() != 4 || s[1] != bn.C {
		return nil, nil, fmt.Errorf("%s: input shape %v, want (N, %d, H, W)", bn.Name, s, bn.C)
	}
	if n.rm != nil {
		y, err = G.ApplyOp(dcBNOp{kind: dcBNEval, eps: bn.Eps}, x, n.gamma, n.beta, n.rm, n.rv)
		return y, nil, err
	}
	if y, err = G.ApplyOp(dcBNOp{kind: dcBNTrain, eps: bn.Eps}, x, n.gamma, n.beta); err != nil {
		return nil, nil, err
	}
	if stats {
		if st, err = G.ApplyOp(dcBNOp{kind: dcBNStats, eps: bn.Eps}, x); err != nil {
			return nil, nil, err
		}
	}
	return y, st, nil
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

// The kinds of dcBNOp.
const (
	dcBNTrain     = iota // (x, γ, β) → y, batch statistics
	dcBNEval             // (x, γ, β, running mean, running var) → y
	dcBNStats            // x → (2, C): batch mean and biased variance
	dcBNGradX            // (x, γ, dy) → dx
	dcBNGradGamma        // (x, dy) → dγ
	dcBNGradBeta         // dy → dβ
)

// dcBNOp is per-channel batch normalisation of x (N, C, H, W) and the
// pieces of its backward pass. With x̂ = (x − μ)/sqrt(σ² + ε) over the
// M = N·H·W values of a channel:
//
//	y  = γ·x̂ + β
//	dβ = Σ dy,  dγ = Σ dy·x̂
//	dx = γ/sqrt(σ² + ε) · (dy − dβ/M − x̂·dγ/M)
//
// Statistics are accumulated in float64, as PyTorch's CPU kernels do.
type dcBNOp struct {
	kind int
	eps  float64
}

var dcBNNames = [...]string{"dcBatchNorm", "dcBatchNormEval", "dcBatchNormStats", "dcBatchNormGradX", "dcBatchNormGradGamma", "dcBatchNormGradBeta"}

func (op dcBNOp) Arity() int { return [...]int{3, 5, 1, 3, 2, 1}[op.kind] }

func (op dcBNOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4, t2, t1 := G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a}
	switch op.kind {
	case dcBNTrain:
		return hm.NewFnType(t4, t1, t1, t4)
	case dcBNEval:
		return hm.NewFnType(t4, t1, t1, t1, t1, t4)
	case dcBNStats:
		return hm.NewFnType(t4, t2)
	case dcBNGradX:
		return hm.NewFnType(t4, t1, t4, t4)
	case dcBNGradGamma:
		return hm.NewFnType(t4, t4, t1)
	default:
		return hm.NewFnType(t4, t1)
	}
}

func (op dcBNOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if len(ds) != op.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", op, len(ds), op.Arity())
	}
	s, ok := ds[0].(tensor.Shape)
	if !ok || s.Dims() != 4 {
		return nil, fmt.Errorf("%v: first input must be 4-D, got %v", op, ds[0])
	}
	switch op.kind {
	case dcBNStats:
		return tensor.Shape{2, s[1]}, nil
	case dcBNGradGamma, dcBNGradBeta:
		return tensor.Shape{s[1]}, nil
	}
	return s.Clone(), nil
}

func (op dcBNOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

func (op dcBNOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	ins, shapes, err := dcInputs(op, op.Arity(), vs)
	if err != nil {
		return nil, err
	}
	os, err := op.InferShape(shapes...)
	if err != nil {
		return nil, err
	}
	s := ins[0].Shape()
	out := dcOutput(prealloc, os, ins[0].Dtype())
	switch ins[0].Dtype() {
	case tensor.Float32:
		err = dcBNRun(op, ins, out.Data().([]float32), s[0], s[1], s[2]*s[3])
	case tensor.Float64:
		err = dcBNRun(op, ins, out.Data().([]float64), s[0], s[1], s[2]*s[3])
	default:
		err = fmt.Errorf("%v: unsupported dtype %v", op, ins[0].Dtype())
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func dcBNRun[T float32 | float64](op dcBNOp, ins []*tensor.Dense, out []T, n, c, hw int) error {
	data := func(i int) ([]T, error) {
		d, ok := ins[i].Data().([]T)
		if !ok {
			return nil, fmt.Errorf("%v: input %d has the wrong element type", op, i)
		}
		want := c
		if i == 0 || (i == 2 && op.kind == dcBNGradX) || (i == 1 && op.kind == dcBNGradGamma) {
			want = n * c * hw
		}
		if len(d) != want {
			return nil, fmt.Errorf("%v: input %d has %d values, want %d", op, i, len(d), want)
		}
		return d, nil
	}
	all := make([][]T, len(ins))
	for i := range ins {
		var err error
		if all[i], err = data(i); err != nil {
			return err
		}
	}
	m := float64(n * hw)
	dcParallel(c, 3*n*c*hw, func(c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			// plane(k) is channel ch of sample k.
			plane := func(x []T, k int) []T { return x[(k*c+ch)*hw:][:hw] }
			var mean, variance float64
			if op.kind != dcBNGradBeta && op.kind != dcBNEval {
				x := all[0]
				for k := 0; k < n; k++ {
					for _, v := range plane(x, k) {
						mean += float64(v)
					}
				}
				mean /= m
				for k := 0; k < n; k++ {
					for _, v := range plane(x, k) {
						d := float64(v) - mean
						variance += d * d
					}
				}
				variance /= m
			}
			switch op.kind {
			case dcBNStats:
				out[ch], out[c+ch] = T(mean), T(variance)
			case dcBNTrain, dcBNEval:
				if op.kind == dcBNEval {
					mean, variance = float64(all[3][ch]), float64(all[4][ch])
				}
				scale := float64(all[1][ch]) / math.Sqrt(variance+op.eps)
				shift := float64(all[2][ch]) - mean*scale
				sc, sh := T(scale), T(shift)
				for k := 0; k < n; k++ {
					dst := plane(out, k)
					for i, v := range plane(all[0], k) {
						dst[i] = v*sc + sh
					}
				}
			case dcBNGradBeta:
				var s float64
				for k := 0; k < n; k++ {
					for _, g := range plane(all[0], k) {
						s += float64(g)
					}
				}
				out[ch] = T(s)
			case dcBNGradGamma, dcBNGradX:
				dy := all[len(all)-1]
				inv := 1 / math.Sqrt(variance+op.eps)
				var sdy, sdyx float64
				for k := 0; k < n; k++ {
					xs, gs := plane(all[0], k), plane(dy, k)
					for i, v := range xs {
						g := float64(gs[i])
						sdy += g
						sdyx += g * (float64(v) - mean)
					}
				}
				if op.kind == dcBNGradGamma {
					out[ch] = T(sdyx * inv)
					continue
				}
				// dx = a·dy + b·x + d with a = γ·inv, b = −γ·inv³·Σdy(x−μ)/M,
				// d = −γ·inv·Σdy/M − b·μ.
				a := float64(all[1][ch]) * inv
				b := -a * inv * inv * sdyx / m
				d := -a*sdy/m - b*mean
				ta, tb, td := T(a), T(b), T(d)
				for k := 0; k < n; k++ {
					dst, xs, gs := plane(out, k), plane(all[0], k), plane(dy, k)
					for i, v := range xs {
						dst[i] = ta*gs[i] + tb*v + td
					}
				}
			}
		}
	})
	return nil
}

func (op dcBNOp) ReturnsPtr() bool      { return false }
func (op dcBNOp) CallsExtern() bool     { return false }
func (op dcBNOp) OverwritesInput() int  { return -1 }
func (op dcBNOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op dcBNOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op dcBNOp) String() string { return fmt.Sprintf("%s{eps=%g}", dcBNNames[op.kind], op.eps) }

// DiffWRT: only the training forward is differentiated (in x, γ and β).
func (op dcBNOp) DiffWRT(n int) []bool {
	out := make([]bool, n)
	if op.kind == dcBNTrain {
		for i := range out {
			out[i] = true
		}
	}
	return out
}

func (op dcBNOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.kind != dcBNTrain || len(inputs) != 3 {
		return nil, fmt.Errorf("%v is not differentiable", op)
	}
	x, gamma := inputs[0], inputs[1]
	dx, err := G.ApplyOp(dcBNOp{kind: dcBNGradX, eps: op.eps}, x, gamma, grad)
	if err != nil {
		return nil, err
	}
	dg, err := G.ApplyOp(dcBNOp{kind: dcBNGradGamma, eps: op.eps}, x, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(dcBNOp{kind: dcBNGradBeta, eps: op.eps}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dg, db}, nil
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

// dcUpsample2 is nearest-neighbour ×2 upsampling of (N, C, H, W): the same
// function as G.Upsample2D(x, 2), whose element-by-element At/SetAt loops
// took a quarter of a training step.
func dcUpsample2(x *G.Node) (*G.Node, error) {
	if x.Shape().Dims() != 4 {
		return nil, fmt.Errorf("upsample: input has shape %v, want (N, C, H, W)", x.Shape())
	}
	return G.ApplyOp(dcUpsampleOp{}, x)
}

// dcUpsampleOp is nearest ×2 upsampling (N, C, H, W) → (N, C, 2H, 2W); with
// grad set it is its adjoint, summing each 2×2 block (N, C, 2H, 2W) → (N, C, H, W).
type dcUpsampleOp struct{ grad bool }

func (op dcUpsampleOp) Arity() int { return 1 }

func (op dcUpsampleOp) Type() hm.Type {
	t := G.TensorType{Dims: 4, Of: hm.TypeVariable('a')}
	return hm.NewFnType(t, t)
}

func (op dcUpsampleOp) outShape(in tensor.Shape) (tensor.Shape, error) {
	if in.Dims() != 4 {
		return nil, fmt.Errorf("%v: input shape %v is not 4-D", op, in)
	}
	out := in.Clone()
	if op.grad {
		if in[2]%2 != 0 || in[3]%2 != 0 {
			return nil, fmt.Errorf("%v: input shape %v has odd sides", op, in)
		}
		out[2], out[3] = in[2]/2, in[3]/2
	} else {
		out[2], out[3] = in[2]*2, in[3]*2
	}
	return out, nil
}

func (op dcUpsampleOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if len(ds) != 1 {
		return nil, fmt.Errorf("%v: %d inputs", op, len(ds))
	}
	s, ok := ds[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input has no shape", op)
	}
	return op.outShape(s)
}

func (op dcUpsampleOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

// UsePreallocDo writes into prealloc when it has the output's shape and
// dtype (the tape machine offers registers that other nodes used before).
func (op dcUpsampleOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	ins, _, err := dcInputs(op, 1, vs)
	if err != nil {
		return nil, err
	}
	in := ins[0]
	os, err := op.outShape(in.Shape())
	if err != nil {
		return nil, err
	}
	out := dcOutput(prealloc, os, in.Dtype())
	s := in.Shape()
	if op.grad {
		s = os
	}
	planes, h, w := s[0]*s[1], s[2], s[3]
	switch src := in.Data().(type) {
	case []float32:
		dcUpsample(src, out.Data().([]float32), planes, h, w, op.grad)
	case []float64:
		dcUpsample(src, out.Data().([]float64), planes, h, w, op.grad)
	default:
		return nil, fmt.Errorf("%v: unsupported dtype %v", op, in.Dtype())
	}
	return out, nil
}

// dcUpsample copies each small h×w plane of small into 2h×2w big (or, for
// the gradient, sums big's 2×2 blocks into small).
func dcUpsample[T float32 | float64](in, out []T, planes, h, w int, grad bool) {
	w2 := 2 * w
	dcParallel(planes, 5*planes*h*w, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			for y := 0; y < h; y++ {
				if grad {
					r0 := in[(p*2*h+2*y)*w2:][:w2]
					r1 := in[(p*2*h+2*y+1)*w2:][:w2]
					dst := out[(p*h+y)*w:][:w]
					for x := range dst {
						dst[x] = r0[2*x] + r0[2*x+1] + r1[2*x] + r1[2*x+1]
					}
					continue
				}
				src := in[(p*h+y)*w:][:w]
				r0 := out[(p*2*h+2*y)*w2:][:w2]
				for x, v := range src {
					r0[2*x], r0[2*x+1] = v, v
				}
				copy(out[(p*2*h+2*y+1)*w2:][:w2], r0)
			}
		}
	})
}

// dcInputs checks that an op got arity contiguous dense tensors of one
// dtype and returns them with their shapes.
func dcInputs(op fmt.Stringer, arity int, vs []G.Value) ([]*tensor.Dense, []G.DimSizer, error) {
	if len(vs) != arity {
		return nil, nil, fmt.Errorf("%v: %d inputs, want %d", op, len(vs), arity)
	}
	ins := make([]*tensor.Dense, len(vs))
	shapes := make([]G.DimSizer, len(vs))
	for i, v := range vs {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, nil, fmt.Errorf("%v: input %d is %T, not a dense tensor", op, i, v)
		}
		if d.Dtype() != vs[0].Dtype() {
			return nil, nil, fmt.Errorf("%v: mixed dtypes %v and %v", op, d.Dtype(), vs[0].Dtype())
		}
		if d.RequiresIterator() || d.DataSize() != d.Shape().TotalSize() {
			return nil, nil, fmt.Errorf("%v: input %d is not a contiguous tensor", op, i)
		}
		ins[i], shapes[i] = d, d.Shape()
	}
	return ins, shapes, nil
}

// dcOutput returns prealloc when it is a dense tensor of the given shape and
// dtype, else a new one.
func dcOutput(prealloc G.Value, shape tensor.Shape, dt tensor.Dtype) *tensor.Dense {
	if d, ok := prealloc.(*tensor.Dense); ok && d.Dtype() == dt && d.Shape().Eq(shape) && d.IsNativelyAccessible() && !d.IsView() {
		return d
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(dt))
}

func (op dcUpsampleOp) ReturnsPtr() bool      { return false }
func (op dcUpsampleOp) CallsExtern() bool     { return false }
func (op dcUpsampleOp) OverwritesInput() int  { return -1 }
func (op dcUpsampleOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op dcUpsampleOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op dcUpsampleOp) String() string {
	if op.grad {
		return "dcUpsample2Grad"
	}
	return "dcUpsample2"
}

// DiffWRT: the forward op is differentiable; its adjoint is not needed twice.
func (op dcUpsampleOp) DiffWRT(int) []bool { return []bool{!op.grad} }

func (op dcUpsampleOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.grad {
		return nil, fmt.Errorf("%v has no second derivative", op)
	}
	dx, err := G.ApplyOp(dcUpsampleOp{grad: true}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// dcLeaky is LeakyReLU with the given negative slope (0: ReLU) as one op
// (the MLPs' fused maskActOp, split over the cores for feature maps).
func dcLeaky(x *G.Node, slope float64) (*G.Node, error) {
	return G.ApplyOp(maskActOp{slope: slope, relu: slope == 0}, x)
}

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

// forward builds G on z (batch×latent) and returns tanh images (batch, C,
// S, S). With stats set (training graphs) it also returns the (2, C) batch
// statistics nodes of bn0 and bn1.
func (gn *dcGenerator) forward(n *dcGenNodes, z *G.Node, batch int, stats bool) (*G.Node, [2]*G.Node, error) {
	var st [2]*G.Node
	h, err := G.Mul(z, n.fc)
	if err != nil {
		return nil, st, fmt.Errorf("generator.fc: %w", err)
	}
	if h, err = G.Reshape(h, tensor.Shape{batch, gn.F2, gn.S4, gn.S4}); err != nil {
		return nil, st, err
	}
	if h, st[0], err = gn.BN0.apply(h, n.bn0, stats); err != nil {
		return nil, st, fmt.Errorf("generator.bn0: %w", err)
	}
	if h, err = dcLeaky(h, 0); err != nil {
		return nil, st, err
	}
	if h, err = dcUpsample2(h); err != nil {
		return nil, st, err
	}
	if h, err = gn.Conv1.apply(h, n.c1w, nil, true, true); err != nil {
		return nil, st, err
	}
	if h, st[1], err = gn.BN1.apply(h, n.bn1, stats); err != nil {
		return nil, st, fmt.Errorf("generator.bn1: %w", err)
	}
	if h, err = dcLeaky(h, 0); err != nil {
		return nil, st, err
	}
	if h, err = dcUpsample2(h); err != nil {
		return nil, st, err
	}
	if h, err = gn.Conv2.apply(h, n.c2w, n.c2b, true, true); err != nil {
		return nil, st, err
	}
	if h, err = G.Tanh(h); err != nil {
		return nil, st, err
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
// inputGrad and weightGrad say which gradients the graph needs (see dcConv.apply).
func (d *dcDiscriminator) forward(n *dcDiscNodes, x *G.Node, batch int, inputGrad, weightGrad bool) (*G.Node, error) {
	h, err := d.Conv1.apply(x, n.c1w, n.c1b, inputGrad, weightGrad)
	if err != nil {
		return nil, err
	}
	if h, err = dcLeaky(h, d.Slope); err != nil {
		return nil, err
	}
	if h, err = d.Conv2.apply(h, n.c2w, n.c2b, true, weightGrad); err != nil {
		return nil, err
	}
	if h, err = dcLeaky(h, d.Slope); err != nil {
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
	vm    G.VM
	z     *tensor.Dense
	out   G.Value
	stats [2]G.Value // (2, C): batch mean and biased variance of bn0, bn1
}

func (m *DCGAN) buildGenTrain() (*dcGenTrainGraph, error) {
	b := m.cfg.Batch
	eg := G.NewGraph()
	f := &dcGenTrainGraph{z: tensor.New(tensor.WithShape(b, m.cfg.Latent), tensor.Of(m.dt))}
	z := G.NewMatrix(eg, m.dt, G.WithShape(b, m.cfg.Latent), G.WithValue(f.z), G.WithName("z"))
	out, st, err := m.gen.forward(m.gen.nodes(eg, true), z, b, true)
	if err != nil {
		return nil, err
	}
	G.Read(out, &f.out)
	for i := range st {
		G.Read(st[i], &f.stats[i])
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
	out, _, err := m.gen.forward(m.gen.nodes(eg, false), z, batch, false)
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
	dn := m.disc.nodes(eg)
	s.weights = dn.all()
	xr := G.NewTensor(eg, m.dt, 4, G.WithShape(m.imageShape(b)...), G.WithValue(s.real), G.WithName("x_real"))
	xf := G.NewTensor(eg, m.dt, 4, G.WithShape(m.imageShape(b)...), G.WithValue(s.fake), G.WithName("x_fake"))
	lr, err := m.disc.forward(dn, xr, b, false, true)
	if err != nil {
		return nil, err
	}
	lf, err := m.disc.forward(dn, xf, b, false, true)
	if err != nil {
		return nil, err
	}
	cost, err := discriminatorLoss(lr, lf)
	if err != nil {
		return nil, err
	}
	if s.vm, err = compileStep(eg, cost, &s.loss, s.weights, false, "D loss"); err != nil {
		return nil, err
	}
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
	gn := m.gen.nodes(eg, true)
	s.weights = gn.all()
	z := G.NewMatrix(eg, m.dt, G.WithShape(b, m.cfg.Latent), G.WithValue(s.z), G.WithName("z"))
	fake, _, err := m.gen.forward(gn, z, b, false)
	if err != nil {
		return nil, err
	}
	logits, err := m.disc.forward(m.disc.nodes(eg), fake, b, true, false)
	if err != nil {
		return nil, err
	}
	cost, err := bceWithLogits(logits, true)
	if err != nil {
		return nil, err
	}
	if s.vm, err = compileStep(eg, cost, &s.loss, s.weights, false, "G loss"); err != nil {
		return nil, err
	}
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
	for i := range f.stats {
		var st []float64
		if st, err = dcFloats(f.stats[i]); err != nil {
			return
		}
		c := len(st) / 2
		mean[i], variance[i] = st[:c], st[c:]
	}
	return
}

// updateRunningStats folds a training forward's statistics into bn0 and bn1.
func (m *DCGAN) updateRunningStats(mean, variance [2][]float64) error {
	b, s4 := m.cfg.Batch, m.gen.S4
	for i, bn := range []*dcBatchNorm{m.gen.BN0, m.gen.BN1} {
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
	return optimizeStep(s.vm, s.weights, &s.loss, m.optD, "discriminator step", "D loss")
}

// genStep runs the G update through the just-updated D. Like the MLP GAN it
// recomputes G(z) for the same z (same weights, same batch statistics, so
// the same fake) inside its graph.
func (m *DCGAN) genStep() (float64, error) {
	s := m.gstep
	if err := copyInto(s.z, m.z); err != nil {
		return 0, err
	}
	return optimizeStep(s.vm, s.weights, &s.loss, m.optG, "generator step", "G loss")
}
