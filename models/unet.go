package models

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// The noise predictors DDPMConfig.Arch names.
const (
	DDPMArchMLP  = "mlp"  // the reference's EpsMLP (also "")
	DDPMArchConv = "conv" // a small convolutional U-Net
	DDPMArchUNet = "unet" // the U-Net's older name, still accepted
)

// DefaultUNetDDPMConfig is DefaultDDPMConfig with the U-Net noise
// predictor of 32 base channels (about 0.49 M parameters at 28×28×1).
func DefaultUNetDDPMConfig() DDPMConfig {
	c := DefaultDDPMConfig()
	c.Arch, c.Features = DDPMArchConv, 32
	return c
}

// isUNet tells which noise predictor the config builds.
func (c DDPMConfig) isUNet() bool { return c.Arch == DDPMArchConv || c.Arch == DDPMArchUNet }

// validateArch checks what the spec's field ranges do not: the image
// shapes the chosen noise predictor takes.
func (c DDPMConfig) validateArch() error {
	switch c.Arch {
	case "", DDPMArchMLP:
	case DDPMArchConv, DDPMArchUNet:
		if c.Width < 4 || c.Height < 4 || c.Width > 64 || c.Height > 64 || c.Width%4 != 0 || c.Height%4 != 0 {
			return fmt.Errorf("the U-Net needs width and height that are multiples of 4 in 4..64, got %dx%d", c.Width, c.Height)
		}
	default:
		return fmt.Errorf("noise predictor must be %q or %q, got %q", DDPMArchMLP, DDPMArchConv, c.Arch)
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

	temb0, temb2      *nn.Linear
	inc, pool1, pool2 *nn.Conv2d
	up2, up1, out     *nn.Conv2d
	down1, down2, mid *unResBlock
	dec2, dec1        *unResBlock
	params            []NamedTensor
}

// unResBlock is the ResBlock above; skip is nil when in == out.
type unResBlock struct {
	conv1, conv2 *nn.Conv2d
	temb         *nn.Linear
	skip         *nn.Conv2d
}

func unNewResBlock(name string, in, out, tdim int, dt tensor.Dtype, rng *rand.Rand) *unResBlock {
	r := &unResBlock{}
	r.conv1 = nn.NewConv2d(name+".conv1", in, out, 3, 1, 1, true, dt, rng)
	r.temb = nn.NewLinear(name+".temb", tdim, out, true, dt, rng)
	r.conv2 = nn.NewConv2d(name+".conv2", out, out, 3, 1, 1, true, dt, rng)
	if in != out {
		r.skip = nn.NewConv2d(name+".skip", in, out, 1, 1, 0, true, dt, rng)
	}
	return r
}

// Params implements nn.Module in state_dict order.
func (r *unResBlock) Params() []NamedTensor {
	ps := nn.ParamsOf(r.conv1, r.temb, r.conv2)
	if r.skip != nil {
		ps = append(ps, r.skip.Params()...)
	}
	return ps
}

// forward is skip(x) + conv2(SiLU(conv1(SiLU(x)) + temb(e))).
func (r *unResBlock) forward(g *nn.Graph, x, e *G.Node) (*G.Node, error) {
	a, err := nn.SiLU(x)
	if err == nil {
		a, err = r.conv1.Forward(g, a)
	}
	var p *G.Node
	if err == nil {
		p, err = r.temb.Forward(g, e)
	}
	if err == nil {
		a, err = nn.AddChannel(a, p)
	}
	if err == nil {
		a, err = nn.SiLU(a)
	}
	if err == nil {
		a, err = r.conv2.Forward(g, a)
	}
	s := x
	if err == nil && r.skip != nil {
		s, err = r.skip.Forward(g, x)
	}
	if err != nil {
		return nil, err
	}
	return nn.Add(s, a)
}

func newUNet(cfg DDPMConfig, dt tensor.Dtype, rng *rand.Rand) *unNet {
	f, c, td := cfg.Features, cfg.Channels, 4*cfg.Features
	conv := func(name string, in, out, stride int) *nn.Conv2d {
		return nn.NewConv2d(name, in, out, 3, stride, 1, true, dt, rng)
	}
	n := &unNet{c: c, h: cfg.Height, w: cfg.Width}
	n.temb0 = nn.NewLinear("temb.0", cfg.tembIn(), td, true, dt, rng)
	n.temb2 = nn.NewLinear("temb.2", td, td, true, dt, rng)
	n.inc = conv("inc", c, f, 1)
	n.down1 = unNewResBlock("down1", f, f, td, dt, rng)
	n.pool1 = conv("pool1", f, 2*f, 2)
	n.down2 = unNewResBlock("down2", 2*f, 2*f, td, dt, rng)
	n.pool2 = conv("pool2", 2*f, 2*f, 2)
	n.mid = unNewResBlock("mid", 2*f, 2*f, td, dt, rng)
	n.up2 = conv("up2.1", 2*f, 2*f, 1)
	n.dec2 = unNewResBlock("dec2", 4*f, 2*f, td, dt, rng)
	n.up1 = conv("up1.1", 2*f, f, 1)
	n.dec1 = unNewResBlock("dec1", 2*f, f, td, dt, rng)
	n.out = conv("out", f, c, 1)
	n.params = nn.ParamsOf(n.temb0, n.temb2, n.inc, n.down1, n.pool1, n.down2, n.pool2, n.mid,
		n.up2, n.dec2, n.up1, n.dec1, n.out)
	return n
}

// build adds the U-Net to g for xt (batch×C·H·W, NCHW planes, a graph
// input) and temb (batch×TEmb), returning batch×C·H·W and the weight
// nodes in params order.
func (n *unNet) build(g *nn.Graph, xt, temb *G.Node) (out *G.Node, weights G.Nodes, err error) {
	bt := xt.Shape()[0]
	weights = g.Nodes(n.params)
	fail := func(what string, err error) (*G.Node, G.Nodes, error) {
		return nil, nil, fmt.Errorf("U-Net %s: %w", what, err)
	}
	x, err := G.Reshape(xt, tensor.Shape{bt, n.c, n.h, n.w})
	if err != nil {
		return fail("input", err)
	}
	g.NoGrad(x)
	e, err := n.temb0.Forward(g, g.NoGrad(temb))
	if err == nil {
		e, err = nn.SiLU(e)
	}
	if err == nil {
		e, err = n.temb2.Forward(g, e)
	}
	if err == nil {
		e, err = nn.SiLU(e)
	}
	if err != nil {
		return fail("time embedding", err)
	}
	h, err := n.inc.Forward(g, x)
	if err != nil {
		return fail("inc", err)
	}
	h1, err := n.down1.forward(g, h, e)
	if err != nil {
		return fail("down1", err)
	}
	if h, err = n.pool1.Forward(g, h1); err != nil {
		return fail("pool1", err)
	}
	h2, err := n.down2.forward(g, h, e)
	if err != nil {
		return fail("down2", err)
	}
	if h, err = n.pool2.Forward(g, h2); err != nil {
		return fail("pool2", err)
	}
	if h, err = n.mid.forward(g, h, e); err != nil {
		return fail("mid", err)
	}
	up := func(l *nn.Conv2d, h, skip *G.Node) (*G.Node, error) {
		u, err := nn.Upsample2x(h)
		if err != nil {
			return nil, err
		}
		if u, err = l.Forward(g, u); err != nil {
			return nil, err
		}
		return nn.Cat(u, skip)
	}
	if h, err = up(n.up2, h, h2); err != nil {
		return fail("up2", err)
	}
	if h, err = n.dec2.forward(g, h, e); err != nil {
		return fail("dec2", err)
	}
	if h, err = up(n.up1, h, h1); err != nil {
		return fail("up1", err)
	}
	if h, err = n.dec1.forward(g, h, e); err != nil {
		return fail("dec1", err)
	}
	if h, err = nn.SiLU(h); err != nil {
		return fail("out", err)
	}
	if h, err = n.out.Forward(g, h); err != nil {
		return fail("out", err)
	}
	if out, err = G.Reshape(h, tensor.Shape{bt, n.c * n.h * n.w}); err != nil {
		return fail("output", err)
	}
	return out, weights, nil
}
