package models

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The noise predictors DDPMConfig.Arch names.
const (
	DDPMArchMLP  = "mlp"  // the reference's EpsMLP (also "")
	DDPMArchUNet = "unet" // a small convolutional U-Net
)

func init() {
	register("ddpm", DDPMArchUNet, func(c []byte) (Model, error) { return build(c, DefaultUNetDDPMConfig(), NewDDPM) })
}

// DefaultUNetDDPMConfig is DefaultDDPMConfig with the U-Net noise
// predictor of 32 base channels (about 0.49 M parameters at 28×28×1).
func DefaultUNetDDPMConfig() DDPMConfig {
	c := DefaultDDPMConfig()
	c.Arch, c.Features = DDPMArchUNet, 32
	return c
}

// isUNet tells which noise predictor the config builds.
func (c DDPMConfig) isUNet() bool { return c.Arch == DDPMArchUNet }

// validateArch checks the settings of the chosen noise predictor.
func (c DDPMConfig) validateArch() error {
	switch c.Arch {
	case "", DDPMArchMLP:
		if c.Hidden < 1 || c.Hidden > 16384 {
			return fmt.Errorf("hidden size must be 1..16384, got %d", c.Hidden)
		}
	case DDPMArchUNet:
		switch {
		case c.Features < 1 || c.Features > 128:
			return fmt.Errorf("U-Net features must be 1..128, got %d", c.Features)
		case c.Width < 4 || c.Height < 4 || c.Width > 64 || c.Height > 64 || c.Width%4 != 0 || c.Height%4 != 0:
			return fmt.Errorf("the U-Net needs width and height that are multiples of 4 in 4..64, got %dx%d", c.Width, c.Height)
		}
	default:
		return fmt.Errorf("noise predictor must be %q or %q, got %q", DDPMArchMLP, DDPMArchUNet, c.Arch)
	}
	return nil
}

// unNet is the U-Net noise predictor, as this PyTorch module would define
// it (module order = initialisation order = state_dict order):
//
//	temb  = Sequential(Linear(TEmb, 4F), SiLU(), Linear(4F, 4F))
//	inc   = Conv2d(C, F, 3, padding=1)
//	down1 = ResBlock(F, F)                           # full resolution
//	pool1 = Conv2d(F, 2F, 3, stride=2, padding=1)    # 1/2
//	down2 = ResBlock(2F, 2F)
//	pool2 = Conv2d(2F, 2F, 3, stride=2, padding=1)   # 1/4
//	mid   = ResBlock(2F, 2F)
//	up2   = Sequential(Upsample(2), Conv2d(2F, 2F, 3, padding=1))  # 1/2
//	dec2  = ResBlock(4F, 2F)                         # on cat([up2, down2])
//	up1   = Sequential(Upsample(2), Conv2d(2F, F, 3, padding=1))   # full
//	dec1  = ResBlock(2F, F)                          # on cat([up1, down1])
//	out   = Conv2d(F, C, 3, padding=1)               # on SiLU(dec1)
//
// with e = SiLU(temb(sinusoid(t))) fed to every ResBlock:
//
//	ResBlock(x) = skip(x) + conv2(SiLU(conv1(SiLU(x)) + temb(e)[:, :, None, None]))
//
// where skip is a 1×1 Conv2d when the channel counts differ and the
// identity otherwise. There are no normalisation layers. Every layer has
// PyTorch's default initialisation, drawn from the model's seeded stream.
type unNet struct {
	c, h, w int // image channels, height, width

	temb0, temb2             *Linear
	inc, pool1, pool2        *unConv
	up2, up1, out            *unConv
	down1, down2, mid        *unResBlock
	dec2, dec1               *unResBlock
	params                   []NamedTensor
	scratchTrain, scratchFwd *unScratch // im2col buffers of the two graphs
}

// unConv is a Conv2d with a k×k kernel, weights [out, in, k, k].
type unConv struct {
	name                    string
	in, out, k, stride, pad int
	W, B                    *tensor.Dense
}

// unNewConv draws W then b uniform in ±1/sqrt(in·k·k), PyTorch's default
// Conv2d initialisation (kaiming_uniform with a = sqrt(5)), W in its
// row-major [out, in, k, k] order.
func unNewConv(name string, in, out, k, stride int, dt tensor.Dtype, rng *rand.Rand) *unConv {
	c := &unConv{name: name, in: in, out: out, k: k, stride: stride, pad: k / 2,
		W: tensor.New(tensor.WithShape(out, in, k, k), tensor.Of(dt)),
		B: tensor.New(tensor.WithShape(out), tensor.Of(dt)),
	}
	bound := 1 / math.Sqrt(float64(in*k*k))
	for i := 0; i < out*in*k*k; i++ {
		setAt(c.W, i, (rng.Float64()*2-1)*bound)
	}
	for i := 0; i < out; i++ {
		setAt(c.B, i, (rng.Float64()*2-1)*bound)
	}
	return c
}

// unResBlock is the ResBlock above; skip is nil when in == out.
type unResBlock struct {
	conv1, conv2 *unConv
	temb         *Linear
	skip         *unConv
}

func unNewResBlock(name string, in, out, tdim int, dt tensor.Dtype, rng *rand.Rand) *unResBlock {
	r := &unResBlock{}
	r.conv1 = unNewConv(name+".conv1", in, out, 3, 1, dt, rng)
	r.temb = NewLinear(name+".temb", tdim, out, dt, rng)
	r.conv2 = unNewConv(name+".conv2", out, out, 3, 1, dt, rng)
	if in != out {
		r.skip = unNewConv(name+".skip", in, out, 1, 1, dt, rng)
	}
	return r
}

func newUNet(cfg DDPMConfig, dt tensor.Dtype, rng *rand.Rand) *unNet {
	f, c, td := cfg.Features, cfg.Channels, 4*cfg.Features
	n := &unNet{c: c, h: cfg.Height, w: cfg.Width,
		scratchTrain: &unScratch{}, scratchFwd: &unScratch{}}
	n.temb0 = NewLinear("temb.0", cfg.TEmb, td, dt, rng)
	n.temb2 = NewLinear("temb.2", td, td, dt, rng)
	n.inc = unNewConv("inc", c, f, 3, 1, dt, rng)
	n.down1 = unNewResBlock("down1", f, f, td, dt, rng)
	n.pool1 = unNewConv("pool1", f, 2*f, 3, 2, dt, rng)
	n.down2 = unNewResBlock("down2", 2*f, 2*f, td, dt, rng)
	n.pool2 = unNewConv("pool2", 2*f, 2*f, 3, 2, dt, rng)
	n.mid = unNewResBlock("mid", 2*f, 2*f, td, dt, rng)
	n.up2 = unNewConv("up2.1", 2*f, 2*f, 3, 1, dt, rng)
	n.dec2 = unNewResBlock("dec2", 4*f, 2*f, td, dt, rng)
	n.up1 = unNewConv("up1.1", 2*f, f, 3, 1, dt, rng)
	n.dec1 = unNewResBlock("dec1", 2*f, f, td, dt, rng)
	n.out = unNewConv("out", f, c, 3, 1, dt, rng)

	lin := func(l *Linear) {
		n.params = append(n.params, NamedTensor{Name: l.Name + ".weight", T: l.W, Transposed: true}, NamedTensor{Name: l.Name + ".bias", T: l.B})
	}
	conv := func(l *unConv) {
		n.params = append(n.params, NamedTensor{Name: l.name + ".weight", T: l.W}, NamedTensor{Name: l.name + ".bias", T: l.B})
	}
	res := func(r *unResBlock) {
		conv(r.conv1)
		lin(r.temb)
		conv(r.conv2)
		if r.skip != nil {
			conv(r.skip)
		}
	}
	lin(n.temb0)
	lin(n.temb2)
	conv(n.inc)
	res(n.down1)
	conv(n.pool1)
	res(n.down2)
	conv(n.pool2)
	res(n.mid)
	conv(n.up2)
	res(n.dec2)
	conv(n.up1)
	res(n.dec1)
	conv(n.out)
	return n
}

// unBuilder builds one graph's view of the U-Net.
type unBuilder struct {
	nodes map[*tensor.Dense]*G.Node // weight nodes by tensor
	sc    *unScratch
}

func (b *unBuilder) conv(l *unConv, x *G.Node, needDX bool) (*G.Node, error) {
	s := x.Shape()
	geom := unNewGeom(s[0], s[1], s[2], s[3], l.out, l.k, l.stride, l.pad)
	y, err := unConv2d(geom, b.sc, needDX, x, b.nodes[l.W], b.nodes[l.B])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	return y, nil
}

func (b *unBuilder) linear(l *Linear, x *G.Node) (*G.Node, error) {
	return Apply(x, b.nodes[l.W], b.nodes[l.B])
}

func (b *unBuilder) res(r *unResBlock, x, e *G.Node) (*G.Node, error) {
	a, err := unSiLU(x)
	if err != nil {
		return nil, err
	}
	if a, err = b.conv(r.conv1, a, true); err != nil {
		return nil, err
	}
	p, err := b.linear(r.temb, e)
	if err != nil {
		return nil, err
	}
	if a, err = unChanAdd(a, p); err != nil {
		return nil, err
	}
	if a, err = unSiLU(a); err != nil {
		return nil, err
	}
	if a, err = b.conv(r.conv2, a, true); err != nil {
		return nil, err
	}
	s := x
	if r.skip != nil {
		if s, err = b.conv(r.skip, x, true); err != nil {
			return nil, err
		}
	}
	return unAdd(s, a)
}

// build adds the U-Net to g for xt (batch×C·H·W, NCHW planes) and temb
// (batch×TEmb), returning batch×C·H·W and the weight nodes in params order.
// train picks the scratch buffers of the training graph.
func (n *unNet) build(g *G.ExprGraph, xt, temb *G.Node, train bool) (out *G.Node, weights G.Nodes, err error) {
	bt := xt.Shape()[0]
	b := &unBuilder{nodes: map[*tensor.Dense]*G.Node{}, sc: n.scratchFwd}
	if train {
		b.sc = n.scratchTrain
	}
	for _, p := range n.params {
		nd := G.NewTensor(g, p.T.Dtype(), p.T.Dims(), G.WithShape(p.T.Shape().Clone()...), G.WithValue(p.T), G.WithName(p.Name))
		b.nodes[p.T] = nd
		weights = append(weights, nd)
	}
	fail := func(what string, err error) (*G.Node, G.Nodes, error) {
		return nil, nil, fmt.Errorf("U-Net %s: %w", what, err)
	}
	x, err := G.Reshape(xt, tensor.Shape{bt, n.c, n.h, n.w})
	if err != nil {
		return fail("input", err)
	}
	e, err := b.linear(n.temb0, temb)
	if err == nil {
		e, err = unSiLU(e)
	}
	if err == nil {
		e, err = b.linear(n.temb2, e)
	}
	if err == nil {
		e, err = unSiLU(e)
	}
	if err != nil {
		return fail("time embedding", err)
	}
	h, err := b.conv(n.inc, x, false)
	if err != nil {
		return fail("inc", err)
	}
	h1, err := b.res(n.down1, h, e)
	if err != nil {
		return fail("down1", err)
	}
	if h, err = b.conv(n.pool1, h1, true); err != nil {
		return fail("pool1", err)
	}
	h2, err := b.res(n.down2, h, e)
	if err != nil {
		return fail("down2", err)
	}
	if h, err = b.conv(n.pool2, h2, true); err != nil {
		return fail("pool2", err)
	}
	if h, err = b.res(n.mid, h, e); err != nil {
		return fail("mid", err)
	}
	up := func(l *unConv, h, skip *G.Node) (*G.Node, error) {
		u, err := unUpsample(h)
		if err != nil {
			return nil, err
		}
		if u, err = b.conv(l, u, true); err != nil {
			return nil, err
		}
		return unCat(u, skip)
	}
	if h, err = up(n.up2, h, h2); err != nil {
		return fail("up2", err)
	}
	if h, err = b.res(n.dec2, h, e); err != nil {
		return fail("dec2", err)
	}
	if h, err = up(n.up1, h, h1); err != nil {
		return fail("up1", err)
	}
	if h, err = b.res(n.dec1, h, e); err != nil {
		return fail("dec1", err)
	}
	if h, err = unSiLU(h); err != nil {
		return fail("out", err)
	}
	if h, err = b.conv(n.out, h, true); err != nil {
		return fail("out", err)
	}
	if out, err = G.Reshape(h, tensor.Shape{bt, n.c * n.h * n.w}); err != nil {
		return fail("output", err)
	}
	return out, weights, nil
}

// ---- custom operations ----
//
// Gorgonia's Conv2d (im2col, one matrix product, then a 4-D transpose,
// each with generic backward passes) takes about 0.4 s for one 32→32
// channel 3×3 convolution's forward and backward at batch 64, 28×28 on
// this 2-core machine (about 6 s a step for this network), and its
// Upsample2D goes through At/SetAt per element. These ops do the same
// arithmetic on NCHW data directly: convolution as im2col plus one BLAS
// gemm per chunk of images with the bias fused, its input gradient as the
// convolution with flipped filters (stride 1) or gemm plus col2im (stride
// 2), its weight gradient as one gemm per chunk; and one-pass SiLU (its
// sigmoid kept for the backward pass), per-channel add, residual add,
// nearest upsampling and channel concatenation, each with its own backward
// op. Each op keeps its output tensor between runs (every run overwrites
// all of it); the im2col buffers are shared by the ops of one graph (a
// tape machine runs them one at a time).

var unOpSeq atomic.Int64

// unOp is one custom operation: a fixed output shape, a kernel that
// overwrites out from the inputs, and optionally its symbolic gradient.
type unOp struct {
	name  string
	arity int
	typ   hm.Type
	shape tensor.Shape
	run   func(out *tensor.Dense, in []*tensor.Dense) error
	wrt   []bool
	diff  func(in G.Nodes, out, grad *G.Node) (G.Nodes, error)
	buf   *tensor.Dense
}

// unApply makes an op named name (made unique so that Gorgonia never
// merges two of them) whose inputs have the given numbers of dimensions.
func unApply(name string, shape tensor.Shape, run func(out *tensor.Dense, in []*tensor.Dense) error,
	wrt []bool, diff func(in G.Nodes, out, grad *G.Node) (G.Nodes, error), inputs ...*G.Node) (*G.Node, error) {
	a := hm.TypeVariable('a')
	var ts hm.Types
	for _, in := range inputs {
		ts = append(ts, G.TensorType{Dims: in.Dims(), Of: a})
	}
	ts = append(ts, G.TensorType{Dims: len(shape), Of: a})
	if wrt == nil {
		wrt = make([]bool, len(inputs))
	}
	op := &unOp{name: fmt.Sprintf("%s#%d", name, unOpSeq.Add(1)), arity: len(inputs), typ: hm.NewFnType(ts...),
		shape: shape.Clone(), run: run, wrt: wrt, diff: diff}
	return G.ApplyOp(op, inputs...)
}

func (op *unOp) Arity() int    { return op.arity }
func (op *unOp) Type() hm.Type { return op.typ }
func (op *unOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *unOp) ReturnsPtr() bool      { return false }
func (op *unOp) CallsExtern() bool     { return false }
func (op *unOp) OverwritesInput() int  { return -1 }
func (op *unOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.name) }
func (op *unOp) String() string        { return op.name }
func (op *unOp) DiffWRT(n int) []bool  { return op.wrt }
func (op *unOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op *unOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if op.diff == nil {
		return nil, fmt.Errorf("%s is not differentiable", op.name)
	}
	return op.diff(in, out, grad)
}

func (op *unOp) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != op.arity {
		return nil, fmt.Errorf("%s: %d inputs, want %d", op.name, len(vs), op.arity)
	}
	in := make([]*tensor.Dense, len(vs))
	for i, v := range vs {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("%s: input %d is %T, not a dense tensor", op.name, i, v)
		}
		if d.RequiresIterator() {
			d = d.Materialize().(*tensor.Dense)
		}
		if d.Dtype() != vs[0].Dtype() {
			return nil, fmt.Errorf("%s: inputs of mixed dtypes", op.name)
		}
		in[i] = d
	}
	dt := in[0].Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%s: unsupported dtype %v", op.name, dt)
	}
	if op.buf == nil || op.buf.Dtype() != dt {
		op.buf = tensor.New(tensor.WithShape(op.shape.Clone()...), tensor.Of(dt))
	}
	if err := op.run(op.buf, in); err != nil {
		return nil, fmt.Errorf("%s: %w", op.name, err)
	}
	return op.buf, nil
}

// unData returns the float32 or float64 slices of ts, which share a dtype.
func unData[T float32 | float64](ts ...*tensor.Dense) ([][]T, error) {
	out := make([][]T, len(ts))
	for i, t := range ts {
		d, ok := t.Data().([]T)
		if !ok {
			return nil, fmt.Errorf("tensor %d holds %T", i, t.Data())
		}
		out[i] = d[:t.Shape().TotalSize()]
	}
	return out, nil
}

// unRun adapts a generic kernel to both dtypes.
func unRun(k32 func(out []float32, in [][]float32) error, k64 func(out []float64, in [][]float64) error) func(*tensor.Dense, []*tensor.Dense) error {
	return func(out *tensor.Dense, in []*tensor.Dense) error {
		if out.Dtype() == tensor.Float32 {
			d, err := unData[float32](append([]*tensor.Dense{out}, in...)...)
			if err != nil {
				return err
			}
			return k32(d[0], d[1:])
		}
		d, err := unData[float64](append([]*tensor.Dense{out}, in...)...)
		if err != nil {
			return err
		}
		return k64(d[0], d[1:])
	}
}

// unParallel runs f over [0, n) in about GOMAXPROCS pieces when n·cost is
// large enough to pay for the goroutines.
func unParallel(n, cost int, f func(lo, hi int)) {
	p := runtime.GOMAXPROCS(0)
	if p < 2 || n < 2 || n*cost < 1<<15 {
		f(0, n)
		return
	}
	p = min(p, n)
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		lo, hi := i*n/p, (i+1)*n/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// ---- SiLU ----

// unSiLUCache keeps the forward pass's sigmoid(x) for the backward pass
// when the graph has one (the op's SymDiff turns it on at build time).
type unSiLUCache struct {
	on  bool
	s32 []float32
	s64 []float64
}

// unSiLU is x·sigmoid(x), elementwise on a tensor of any shape.
func unSiLU(x *G.Node) (*G.Node, error) {
	c := &unSiLUCache{}
	run := unRun(
		func(out []float32, in [][]float32) error { unSiLU32(out, in[0], c); return nil },
		func(out []float64, in [][]float64) error { unSiLU64(out, in[0], c); return nil })
	return unApply("SiLU", x.Shape(), run, []bool{true}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
		c.on = true
		dx, err := unApply("SiLUGrad", in[0].Shape(), unRun(
			func(out []float32, in [][]float32) error { return unSiLUGrad32(out, in[0], in[1], c) },
			func(out []float64, in [][]float64) error { return unSiLUGrad64(out, in[0], in[1], c) }), nil, nil, in[0], gy)
		return G.Nodes{dx}, err
	}, x)
}

func unSiLU32(out, x []float32, c *unSiLUCache) {
	if c.on && len(c.s32) != len(x) {
		c.s32 = make([]float32, len(x))
	}
	unParallel(len(x), 8, func(lo, hi int) {
		var tmp [256]float32
		for a := lo; a < hi; a += len(tmp) {
			b := min(hi, a+len(tmp))
			s := tmp[:b-a]
			if c.on {
				s = c.s32[a:b]
			}
			unSigmoids(s, x[a:b])
			o := out[a:b]
			for i, v := range x[a:b] {
				o[i] = v * s[i]
			}
		}
	})
}

func unSiLU64(out, x []float64, c *unSiLUCache) {
	if c.on && len(c.s64) != len(x) {
		c.s64 = make([]float64, len(x))
	}
	for i, v := range x {
		s := 1 / (1 + math.Exp(-v))
		if c.on {
			c.s64[i] = s
		}
		out[i] = v * s
	}
}

// unSiLUGrad32 is dy·(s + x·s·(1-s)) with s = sigmoid(x) from the forward pass.
func unSiLUGrad32(out, x, g []float32, c *unSiLUCache) error {
	if len(c.s32) != len(x) {
		return errors.New("SiLU gradient before its forward pass")
	}
	unParallel(len(x), 4, func(lo, hi int) {
		s := c.s32[lo:hi]
		for i, v := range x[lo:hi] {
			out[lo+i] = g[lo+i] * s[i] * (1 + v*(1-s[i]))
		}
	})
	return nil
}

func unSiLUGrad64(out, x, g []float64, c *unSiLUCache) error {
	if len(c.s64) != len(x) {
		return errors.New("SiLU gradient before its forward pass")
	}
	for i, v := range x {
		s := c.s64[i]
		out[i] = g[i] * s * (1 + v*(1-s))
	}
	return nil
}

// unSigmoids writes s[i] = 1/(1+exp(-x[i])) in float32, within a few
// ulps: e^u = 2^n · e^f with n = round(u·log2 e), f = u - n·ln 2 (ln 2
// split in two so that f is exact) and e^f, |f| ≤ 0.35, from its degree-7
// Taylor polynomial, written out in the loop (a call per element would
// spill every register).
func unSigmoids(s, x []float32) {
	const ln2Hi, ln2Lo = 0.693359375, -2.12194440e-4
	s = s[:len(x)]
	for i, v := range x {
		u := -v
		switch {
		case u > 80:
			s[i] = 0
			continue
		case u < -80:
			s[i] = 1
			continue
		}
		r := u*math.Log2E + 12582912
		n := int32(math.Float32bits(r)) - 0x4b400000
		fn := r - 12582912
		f := (u - fn*ln2Hi) - fn*ln2Lo
		p := float32(1.0 / 5040)
		p = p*f + 1.0/720
		p = p*f + 1.0/120
		p = p*f + 1.0/24
		p = p*f + 1.0/6
		p = p*f + 0.5
		p = p*f + 1
		p = p*f + 1
		s[i] = 1 / (1 + p*math.Float32frombits(uint32(n+127)<<23))
	}
}

// ---- per-channel add (time embedding) ----

// unChanAdd is x[b, c, :, :] + e[b, c] for x of shape [B, C, H, W] and e [B, C].
func unChanAdd(x, e *G.Node) (*G.Node, error) {
	s := x.Shape()
	if e.Dims() != 2 || e.Shape()[0] != s[0] || e.Shape()[1] != s[1] {
		return nil, fmt.Errorf("channel add: %v to %v", e.Shape(), s)
	}
	hw := s[2] * s[3]
	return unApply("ChanAdd", s, unRun(
		func(out []float32, in [][]float32) error { return unChanAddKernel(out, in[0], in[1], hw) },
		func(out []float64, in [][]float64) error { return unChanAddKernel(out, in[0], in[1], hw) }),
		[]bool{true, true}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			de, err := unApply("ChanSum", e.Shape(), unRun(
				func(out []float32, in [][]float32) error { return unChanSumKernel(out, in[0], hw) },
				func(out []float64, in [][]float64) error { return unChanSumKernel(out, in[0], hw) }), nil, nil, gy)
			return G.Nodes{gy, de}, err
		}, x, e)
}

func unChanAddKernel[T float32 | float64](out, x, e []T, hw int) error {
	unParallel(len(e), hw, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := e[i]
			o, s := out[i*hw:(i+1)*hw], x[i*hw:(i+1)*hw]
			for j := range o {
				o[j] = s[j] + v
			}
		}
	})
	return nil
}

// unChanSumKernel sums each hw-long plane of g into out.
func unChanSumKernel[T float32 | float64](out, g []T, hw int) error {
	for i := range out {
		var s T
		for _, v := range g[i*hw : (i+1)*hw] {
			s += v
		}
		out[i] = s
	}
	return nil
}

// ---- residual add ----

// unAdd is a + b for tensors of one shape, in one pass into a kept buffer
// (Gorgonia's Add clones a first).
func unAdd(a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("add %v and %v", a.Shape(), b.Shape())
	}
	return unApply("Add", a.Shape(), unRun(unAddKernel[float32], unAddKernel[float64]),
		[]bool{true, true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			return G.Nodes{gy, gy}, nil
		}, a, b)
}

func unAddKernel[T float32 | float64](out []T, in [][]T) error {
	a, b := in[0], in[1]
	unParallel(len(out), 1, func(lo, hi int) {
		o, x, y := out[lo:hi], a[lo:hi], b[lo:hi]
		y = y[:len(x)]
		o = o[:len(x)]
		for i, v := range x {
			o[i] = v + y[i]
		}
	})
	return nil
}

// ---- nearest-neighbour upsampling ×2 ----

func unUpsample(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	h, w := s[2], s[3]
	planes := s[0] * s[1]
	return unApply("Upsample2x", tensor.Shape{s[0], s[1], 2 * h, 2 * w}, unRun(
		func(out []float32, in [][]float32) error { return unUpKernel(out, in[0], planes, h, w) },
		func(out []float64, in [][]float64) error { return unUpKernel(out, in[0], planes, h, w) }),
		[]bool{true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			dx, err := unApply("Upsample2xGrad", s, unRun(
				func(out []float32, in [][]float32) error { return unUpGradKernel(out, in[0], planes, h, w) },
				func(out []float64, in [][]float64) error { return unUpGradKernel(out, in[0], planes, h, w) }), nil, nil, gy)
			return G.Nodes{dx}, err
		}, x)
}

func unUpKernel[T float32 | float64](out, x []T, planes, h, w int) error {
	unParallel(planes, 4*h*w, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := x[p*h*w:(p+1)*h*w], out[p*4*h*w:(p+1)*4*h*w]
			for i := 0; i < h; i++ {
				r0 := dst[2*i*2*w : (2*i+1)*2*w]
				for j, v := range src[i*w : (i+1)*w] {
					r0[2*j], r0[2*j+1] = v, v
				}
				copy(dst[(2*i+1)*2*w:(2*i+2)*2*w], r0)
			}
		}
	})
	return nil
}

func unUpGradKernel[T float32 | float64](out, g []T, planes, h, w int) error {
	unParallel(planes, 4*h*w, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := g[p*4*h*w:(p+1)*4*h*w], out[p*h*w:(p+1)*h*w]
			for i := 0; i < h; i++ {
				r0, r1 := src[2*i*2*w:(2*i+1)*2*w], src[(2*i+1)*2*w:(2*i+2)*2*w]
				for j := 0; j < w; j++ {
					dst[i*w+j] = (r0[2*j] + r0[2*j+1]) + (r1[2*j] + r1[2*j+1])
				}
			}
		}
	})
	return nil
}

// ---- channel concatenation ----

// unCat is torch.cat([a, b], dim=1) for NCHW tensors of the same B, H, W.
func unCat(a, b *G.Node) (*G.Node, error) {
	sa, sb := a.Shape(), b.Shape()
	if sa[0] != sb[0] || sa[2] != sb[2] || sa[3] != sb[3] {
		return nil, fmt.Errorf("concat %v and %v", sa, sb)
	}
	bt, hw, ca, cb := sa[0], sa[2]*sa[3], sa[1], sb[1]
	return unApply("CatC", tensor.Shape{bt, ca + cb, sa[2], sa[3]}, unRun(
		func(out []float32, in [][]float32) error { return unCatKernel(out, in[0], in[1], bt, ca*hw, cb*hw) },
		func(out []float64, in [][]float64) error { return unCatKernel(out, in[0], in[1], bt, ca*hw, cb*hw) }),
		[]bool{true, true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			slice := func(lo, n int, shape tensor.Shape) (*G.Node, error) {
				return unApply("SliceC", shape, unRun(
					func(out []float32, in [][]float32) error {
						return unSliceKernel(out, in[0], bt, (ca+cb)*hw, lo*hw, n*hw)
					},
					func(out []float64, in [][]float64) error {
						return unSliceKernel(out, in[0], bt, (ca+cb)*hw, lo*hw, n*hw)
					}), nil, nil, gy)
			}
			da, err := slice(0, ca, sa)
			if err != nil {
				return nil, err
			}
			db, err := slice(ca, cb, sb)
			return G.Nodes{da, db}, err
		}, a, b)
}

func unCatKernel[T float32 | float64](out, a, b []T, bt, na, nb int) error {
	for i := 0; i < bt; i++ {
		copy(out[i*(na+nb):], a[i*na:(i+1)*na])
		copy(out[i*(na+nb)+na:], b[i*nb:(i+1)*nb])
	}
	return nil
}

func unSliceKernel[T float32 | float64](out, g []T, bt, row, off, n int) error {
	for i := 0; i < bt; i++ {
		copy(out[i*n:(i+1)*n], g[i*row+off:i*row+off+n])
	}
	return nil
}

// ---- convolution ----

// unGeom is one convolution's geometry: b images of cin×h×w, cout k×k
// filters with stride s and zero padding pad, giving cout×ho×wo.
type unGeom struct {
	b, cin, h, w, cout, k, s, pad, ho, wo int
}

func unNewGeom(b, cin, h, w, cout, k, s, pad int) unGeom {
	return unGeom{b: b, cin: cin, h: h, w: w, cout: cout, k: k, s: s, pad: pad,
		ho: (h+2*pad-k)/s + 1, wo: (w+2*pad-k)/s + 1}
}

func (g unGeom) kdim() int { return g.cin * g.k * g.k } // rows of the im2col matrix
func (g unGeom) p() int    { return g.ho * g.wo }       // output pixels per image
func (g unGeom) direct() bool {
	return g.k == 1 && g.s == 1 && g.pad == 0
}

// chunk is how many images share one gemm: enough columns (≥ 1024) for
// BLAS to run efficiently on the small feature maps.
func (g unGeom) chunk() int { return max(1, min(g.b, 1024/g.p())) }

// unScratch holds one graph's im2col and gather buffers.
type unScratch struct {
	f32 [4][]float32
	f64 [4][]float64
}

func unScratchOf[T float32 | float64](s *unScratch, slot, n int) []T {
	var z T
	if _, ok := any(z).(float32); ok {
		if cap(s.f32[slot]) < n {
			s.f32[slot] = make([]float32, n)
		}
		return any(s.f32[slot][:n]).([]T)
	}
	if cap(s.f64[slot]) < n {
		s.f64[slot] = make([]float64, n)
	}
	return any(s.f64[slot][:n]).([]T)
}

func unTrans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// unGemm is C = op(A)·op(B) + beta·C, row-major, through Gorgonia's BLAS.
func unGemm[T float32 | float64](tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		G.WhichBLAS().Sgemm(unTrans(tA), unTrans(tB), m, n, k, 1, a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		G.WhichBLAS().Dgemm(unTrans(tA), unTrans(tB), m, n, k, 1, a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// unIm2col writes the columns of image x (cin×h×w) for channels
// [cLo, cHi) into dst: row (c·k + ki)·k + kj, column off + oy·wo + ox holds
// x[c, oy·s - pad + ki, ox·s - pad + kj] (0 outside the image); rows are
// ld apart.
func unIm2col[T float32 | float64](dst []T, ld, off int, x []T, g unGeom, cLo, cHi int) {
	hw := g.h * g.w
	same := g.s == 1 && g.ho == g.h && g.wo == g.w
	for c := cLo; c < cHi; c++ {
		plane := x[c*hw : (c+1)*hw]
		for ki := 0; ki < g.k; ki++ {
			for kj := 0; kj < g.k; kj++ {
				row := dst[((c*g.k+ki)*g.k+kj)*ld+off:]
				if same {
					unShiftRow(row[:hw], plane, g.w, ki-g.pad, kj-g.pad)
					continue
				}
				// ox with 0 ≤ ox·s - pad + kj < w
				lo := min(g.wo, max(0, (g.pad-kj+g.s-1)/g.s))
				hi := max(lo, min(g.wo, (g.w-1+g.pad-kj)/g.s+1))
				for oy := 0; oy < g.ho; oy++ {
					seg := row[oy*g.wo : (oy+1)*g.wo]
					iy := oy*g.s - g.pad + ki
					if iy < 0 || iy >= g.h {
						clear(seg)
						continue
					}
					src := plane[iy*g.w : (iy+1)*g.w]
					clear(seg[:lo])
					clear(seg[hi:])
					if g.s == 1 {
						copy(seg[lo:hi], src[lo-g.pad+kj:])
					} else {
						for ox := lo; ox < hi; ox++ {
							seg[ox] = src[ox*g.s-g.pad+kj]
						}
					}
				}
			}
		}
	}
}

// unShiftRow writes row[oy·w + ox] = plane[(oy+di)·w + ox+dj], 0 outside
// the plane: one im2col row of a stride-1 convolution whose output is the
// size of its input, as one block copy plus the edges.
func unShiftRow[T float32 | float64](row, plane []T, w, di, dj int) {
	n := len(row)
	delta := di*w + dj
	lo, hi := max(0, -delta), min(n, n-delta)
	if lo >= hi {
		clear(row)
		return
	}
	clear(row[:lo])
	copy(row[lo:hi], plane[lo+delta:hi+delta])
	clear(row[hi:])
	h := n / w
	for oy := 0; oy < h; oy++ {
		if iy := oy + di; iy < 0 || iy >= h {
			clear(row[oy*w : (oy+1)*w])
		}
	}
	switch {
	case dj < 0:
		for oy := 0; oy < h; oy++ {
			clear(row[oy*w : oy*w+min(w, -dj)])
		}
	case dj > 0:
		for oy := 0; oy < h; oy++ {
			clear(row[oy*w+max(0, w-dj) : (oy+1)*w])
		}
	}
}

// unCol2im adds the columns of src (laid out as unIm2col writes them) back
// into image dx (cin×h×w) for channels [cLo, cHi).
func unCol2im[T float32 | float64](dx []T, src []T, ld, off int, g unGeom, cLo, cHi int) {
	hw := g.h * g.w
	for c := cLo; c < cHi; c++ {
		plane := dx[c*hw : (c+1)*hw]
		for ki := 0; ki < g.k; ki++ {
			for kj := 0; kj < g.k; kj++ {
				row := src[((c*g.k+ki)*g.k+kj)*ld+off:]
				lo := min(g.wo, max(0, (g.pad-kj+g.s-1)/g.s))
				hi := max(lo, min(g.wo, (g.w-1+g.pad-kj)/g.s+1))
				for oy := 0; oy < g.ho; oy++ {
					iy := oy*g.s - g.pad + ki
					if iy < 0 || iy >= g.h {
						continue
					}
					seg := row[oy*g.wo : (oy+1)*g.wo]
					dst := plane[iy*g.w : (iy+1)*g.w]
					if g.s == 1 {
						src := seg[lo:hi]
						d := dst[lo-g.pad+kj:]
						d = d[:len(src)]
						for i, v := range src {
							d[i] += v
						}
					} else {
						for ox := lo; ox < hi; ox++ {
							dst[ox*g.s-g.pad+kj] += seg[ox]
						}
					}
				}
			}
		}
	}
}

// unCols fills cols (kdim × n·p, row stride n·p) with images b0..b0+n-1 of x.
func unCols[T float32 | float64](cols, x []T, g unGeom, b0, n int) {
	p, ld, img := g.p(), n*g.p(), g.cin*g.h*g.w
	unParallel(g.cin, n*g.k*g.k*p, func(lo, hi int) {
		for i := 0; i < n; i++ {
			xb := x[(b0+i)*img : (b0+i+1)*img]
			if g.direct() {
				for c := lo; c < hi; c++ {
					copy(cols[c*ld+i*p:c*ld+(i+1)*p], xb[c*p:(c+1)*p])
				}
				continue
			}
			unIm2col(cols, ld, i*p, xb, g, lo, hi)
		}
	})
}

// unGather copies images b0..b0+n-1 of y (cout×p each) into dst as one
// cout × n·p matrix.
func unGather[T float32 | float64](dst, y []T, g unGeom, b0, n int) {
	p, ld := g.p(), n*g.p()
	for co := 0; co < g.cout; co++ {
		for i := 0; i < n; i++ {
			copy(dst[co*ld+i*p:co*ld+(i+1)*p], y[((b0+i)*g.cout+co)*p:])
		}
	}
}

// unConvFwd is y = conv(x, w) + bias.
func unConvFwd[T float32 | float64](y, x, w, bias []T, g unGeom, sc *unScratch) {
	defer convRecord(time.Now(), 2*g.b*g.cout*g.p()*g.kdim())
	unConvFwdRun(y, x, w, bias, g, sc)
}

// unConvFwdRun is unConvFwd without the timing (unConvDX calls it too).
func unConvFwdRun[T float32 | float64](y, x, w, bias []T, g unGeom, sc *unScratch) {
	p, kd, nb := g.p(), g.kdim(), g.chunk()
	for b0 := 0; b0 < g.b; b0 += nb {
		n := min(nb, g.b-b0)
		var cols []T
		if g.direct() && n == 1 {
			cols = x[b0*kd*p : (b0+1)*kd*p]
		} else {
			cols = unScratchOf[T](sc, 0, kd*n*p)
			unCols(cols, x, g, b0, n)
		}
		dst := y[b0*g.cout*p : (b0+1)*g.cout*p]
		if n > 1 {
			dst = unScratchOf[T](sc, 1, g.cout*n*p)
		}
		for co := 0; co < g.cout; co++ {
			r := dst[co*n*p : (co+1)*n*p]
			for j := range r {
				r[j] = bias[co]
			}
		}
		unGemm(false, false, g.cout, n*p, kd, w, kd, cols, n*p, 1, dst, n*p)
		if n > 1 {
			for co := 0; co < g.cout; co++ {
				for i := 0; i < n; i++ {
					copy(y[((b0+i)*g.cout+co)*p:((b0+i)*g.cout+co+1)*p], dst[co*n*p+i*p:])
				}
			}
		}
	}
}

// unConvDX is dx = conv_transpose(dy, w): the gradient with respect to x.
// For a stride-1 convolution that keeps the image size it is the forward
// convolution of dy with the flipped, transposed filters (same padding),
// which avoids col2im's scattered adds.
func unConvDX[T float32 | float64](dx, w, dy []T, g unGeom, sc *unScratch) {
	defer convRecord(time.Now(), 2*g.b*g.cout*g.p()*g.kdim())
	if g.s == 1 && g.ho == g.h && g.wo == g.w && !g.direct() {
		k := g.k
		wf := unScratchOf[T](sc, 2, len(w))
		for co := 0; co < g.cout; co++ {
			for ci := 0; ci < g.cin; ci++ {
				for ki := 0; ki < k; ki++ {
					for kj := 0; kj < k; kj++ {
						wf[((ci*g.cout+co)*k+ki)*k+kj] = w[((co*g.cin+ci)*k+k-1-ki)*k+k-1-kj]
					}
				}
			}
		}
		zero := unScratchOf[T](sc, 3, g.cin)
		clear(zero)
		unConvFwdRun(dx, dy, wf, zero, unNewGeom(g.b, g.cout, g.h, g.w, g.cin, k, 1, g.pad), sc)
		return
	}
	p, kd, nb, img := g.p(), g.kdim(), g.chunk(), g.cin*g.h*g.w
	for b0 := 0; b0 < g.b; b0 += nb {
		n := min(nb, g.b-b0)
		gy := dy[b0*g.cout*p : (b0+1)*g.cout*p]
		if n > 1 {
			gy = unScratchOf[T](sc, 1, g.cout*n*p)
			unGather(gy, dy, g, b0, n)
		}
		if g.direct() && n == 1 {
			unGemm(true, false, kd, p, g.cout, w, kd, gy, p, 0, dx[b0*img:(b0+1)*img], p)
			continue
		}
		dcols := unScratchOf[T](sc, 0, kd*n*p)
		unGemm(true, false, kd, n*p, g.cout, w, kd, gy, n*p, 0, dcols, n*p)
		ld := n * p
		unParallel(g.cin, n*g.k*g.k*p, func(lo, hi int) {
			for i := 0; i < n; i++ {
				xb := dx[(b0+i)*img : (b0+i+1)*img]
				if g.direct() {
					for c := lo; c < hi; c++ {
						copy(xb[c*p:(c+1)*p], dcols[c*ld+i*p:])
					}
					continue
				}
				clear(xb[lo*g.h*g.w : hi*g.h*g.w])
				unCol2im(xb, dcols, ld, i*p, g, lo, hi)
			}
		})
	}
}

// unConvDW is dw = Σ_b dy_b · cols(x_b)ᵀ: the gradient with respect to w.
func unConvDW[T float32 | float64](dw, x, dy []T, g unGeom, sc *unScratch) {
	defer convRecord(time.Now(), 2*g.b*g.cout*g.p()*g.kdim())
	p, kd, nb := g.p(), g.kdim(), g.chunk()
	clear(dw)
	for b0 := 0; b0 < g.b; b0 += nb {
		n := min(nb, g.b-b0)
		var cols []T
		if g.direct() && n == 1 {
			cols = x[b0*kd*p : (b0+1)*kd*p]
		} else {
			cols = unScratchOf[T](sc, 0, kd*n*p)
			unCols(cols, x, g, b0, n)
		}
		gy := dy[b0*g.cout*p : (b0+1)*g.cout*p]
		if n > 1 {
			gy = unScratchOf[T](sc, 1, g.cout*n*p)
			unGather(gy, dy, g, b0, n)
		}
		unGemm(false, true, g.cout, kd, n*p, gy, n*p, cols, n*p, 1, dw, kd)
	}
}

// unConvDB sums dy over images and pixels per output channel.
func unConvDB[T float32 | float64](db, dy []T, g unGeom) {
	defer convRecord(time.Now(), g.b*g.cout*g.p())
	p := g.p()
	clear(db)
	for b := 0; b < g.b; b++ {
		for co := 0; co < g.cout; co++ {
			var s T
			for _, v := range dy[(b*g.cout+co)*p : (b*g.cout+co+1)*p] {
				s += v
			}
			db[co] += s
		}
	}
}

// unConv2d is Conv2d(x; w, b) for x [B, cin, h, w], w [cout, cin, k, k]
// and b [cout]. needDX false skips the gradient with respect to x (for the
// network's input).
func unConv2d(g unGeom, sc *unScratch, needDX bool, x, w, b *G.Node) (*G.Node, error) {
	if !w.Shape().Eq(tensor.Shape{g.cout, g.cin, g.k, g.k}) || b.Shape().TotalSize() != g.cout {
		return nil, fmt.Errorf("conv weights %v, %v for geometry %+v", w.Shape(), b.Shape(), g)
	}
	if g.ho < 1 || g.wo < 1 {
		return nil, errors.New("conv output would be empty")
	}
	xs, ws := x.Shape(), w.Shape()
	ys := tensor.Shape{g.b, g.cout, g.ho, g.wo}
	fwd := unRun(
		func(out []float32, in [][]float32) error { unConvFwd(out, in[0], in[1], in[2], g, sc); return nil },
		func(out []float64, in [][]float64) error { unConvFwd(out, in[0], in[1], in[2], g, sc); return nil })
	return unApply(fmt.Sprintf("Conv%dx%d/%d", g.k, g.k, g.s), ys, fwd, []bool{needDX, true, true},
		func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			var dx *G.Node
			var err error
			if needDX {
				dx, err = unApply("ConvDX", xs, unRun(
					func(out []float32, in [][]float32) error { unConvDX(out, in[0], in[1], g, sc); return nil },
					func(out []float64, in [][]float64) error { unConvDX(out, in[0], in[1], g, sc); return nil }), nil, nil, in[1], gy)
				if err != nil {
					return nil, err
				}
			}
			dw, err := unApply("ConvDW", ws, unRun(
				func(out []float32, in [][]float32) error { unConvDW(out, in[0], in[1], g, sc); return nil },
				func(out []float64, in [][]float64) error { unConvDW(out, in[0], in[1], g, sc); return nil }), nil, nil, in[0], gy)
			if err != nil {
				return nil, err
			}
			db, err := unApply("ConvDB", b.Shape(), unRun(
				func(out []float32, in [][]float32) error { unConvDB(out, in[0], g); return nil },
				func(out []float64, in [][]float64) error { unConvDB(out, in[0], g); return nil }), nil, nil, gy)
			return G.Nodes{dx, dw, db}, err
		}, x, w, b)
}
