package models

import (
	"errors"
	"fmt"
	"strings"

	"github.com/genstudio/genstudio/models/nn"
)

// TorchLayer is one torch.nn module of a network: its kind and the
// arguments its constructor takes. The exported PyTorch job
// (training.ExportTorchJob) writes each as one module of an nn.Sequential,
// at the index that gives the model's state_dict names.
type TorchLayer struct {
	// Kind is a module ("Linear", "Conv2d", "BatchNorm2d", "Dropout";
	// "ResBlock", the U-Net's residual block: skip(x) + conv2(SiLU(conv1(
	// SiLU(x)) + temb(e))), its skip a 1×1 Conv2d when In ≠ Out) or an
	// operation ("ReLU", "LeakyReLU", "SiLU", "Tanh", "Sigmoid",
	// "Upsample2x", nearest; "View" to Shape per sample; "Flatten";
	// "MinibatchStd", nn.MinibatchStd over each of the net's std_groups
	// parts of the batch).
	Kind string
	// Name is the module's attribute in a named net ("fc", "bn0"); empty
	// in a Sequential, where the index names it.
	Name           string
	In, Out        int     // Linear, Conv2d; BatchNorm2d's channels are In
	K, Stride, Pad int     // Conv2d
	Bias           bool    // Linear, Conv2d
	Slope          float64 // LeakyReLU's negative slope
	P              float64 // Dropout's probability
	Momentum, Eps  float64 // BatchNorm2d
	Shape          []int   // View: the shape of one sample
	Emb            int     // ResBlock: the width of the embedding it adds
	// SN: a Linear's or Conv2d's weight is spectrally normalised (as
	// torch.nn.utils.spectral_norm: weight_orig, weight_u, weight_v).
	SN bool
}

// TorchNet is one of a model's networks, named Name ("generator",
// "discriminator"): an nn.Sequential of its layers in order, or, when
// Named, a module whose named layers are attributes and whose forward
// applies Layers in order. Both take and give flat rows (one sample each).
// A net without a name holds layers at the root of the state_dict, which
// the family's recipe applies itself.
type TorchNet struct {
	Name   string
	Named  bool
	Layers []TorchLayer
}

// TorchDescriber is a model that can describe its networks as torch.nn
// Sequentials with its own state_dict names. ErrNoTorchDescription says
// which of its settings have no description yet.
type TorchDescriber interface {
	TorchNets() ([]TorchNet, error)
}

// ErrNoTorchDescription marks a model or setting the PyTorch export does
// not describe yet.
var ErrNoTorchDescription = errors.New("not in the PyTorch export yet")

// torchSequential describes an MLP as the nn.Sequential its state_dict
// names index: Linear, then the activation (and Dropout) after each layer.
// With the minibatch standard deviation before the last layer, which has
// no slot in those indices, it is a named net whose layers keep the
// Sequential's index names ("0", "3", …).
func (m *MLP) torchSequential(name string) (TorchNet, error) {
	act := func(a Activation) []TorchLayer {
		switch a {
		case ActReLU:
			return []TorchLayer{{Kind: "ReLU"}}
		case ActLeakyReLU:
			return []TorchLayer{{Kind: "LeakyReLU", Slope: m.Slope}}
		case ActTanh:
			return []TorchLayer{{Kind: "Tanh"}}
		case ActSigmoid:
			return []TorchLayer{{Kind: "Sigmoid"}}
		}
		return nil
	}
	net := TorchNet{Name: name, Named: m.StdBeforeLast}
	slot := 0 // the Sequential index of the next layer
	add := func(ls ...TorchLayer) {
		net.Layers = append(net.Layers, ls...)
		slot += len(ls)
	}
	for i, l := range m.Layers {
		want := fmt.Sprintf("%s.%d", name, slot)
		if l.Name != want {
			return TorchNet{}, fmt.Errorf("layer %s sits at %s of the Sequential", l.Name, want)
		}
		if m.StdBeforeLast && i+1 == len(m.Layers) {
			net.Layers = append(net.Layers, TorchLayer{Kind: "MinibatchStd"})
		}
		lin := torchLinear(l)
		lin.Name = ""
		if net.Named {
			lin.Name = fmt.Sprint(slot)
		}
		add(lin)
		if i+1 < len(m.Layers) {
			add(act(m.Hidden)...)
			// A Dropout slot (p may be 0) where the next layer's name
			// leaves one, as the seed's discriminator has.
			if m.DropoutP > 0 || m.Layers[i+1].Name == fmt.Sprintf("%s.%d", name, slot+1) {
				add(TorchLayer{Kind: "Dropout", P: m.DropoutP})
			}
		} else {
			add(act(m.Output)...)
		}
	}
	return net, nil
}

// TorchNets describes the MLP GAN's generator and discriminator (D's
// layers spectrally normalised, and the minibatch standard deviation, as
// the settings say).
func (g *GAN) TorchNets() ([]TorchNet, error) {
	gen, err := g.Gen.torchSequential("generator")
	if err != nil {
		return nil, err
	}
	disc, err := g.Disc.torchSequential("discriminator")
	if err != nil {
		return nil, err
	}
	return []TorchNet{gen, disc}, nil
}

// lastName is the last part of a dotted state_dict name ("generator.fc" → "fc").
func lastName(full string) string { return full[strings.LastIndexByte(full, '.')+1:] }

func torchConv(l *nn.Conv2d) TorchLayer {
	return TorchLayer{Kind: "Conv2d", Name: lastName(l.Name), In: l.In, Out: l.Out, K: l.K, Stride: l.Stride, Pad: l.Pad,
		Bias: l.B != nil, SN: l.SN != nil}
}

func torchLinear(l *nn.Linear) TorchLayer {
	return TorchLayer{Kind: "Linear", Name: lastName(l.Name), In: l.In, Out: l.Out, Bias: l.B != nil, SN: l.SN != nil}
}

// TorchNets describes the DCGAN's generator and discriminator as named
// modules (generator.fc, generator.bn0, …).
func (g *DCGAN) TorchNets() ([]TorchNet, error) {
	c := g.cfg
	lin, conv := torchLinear, torchConv
	bn := func(l *nn.BatchNorm2d) TorchLayer {
		return TorchLayer{Kind: "BatchNorm2d", Name: lastName(l.Name), In: l.C, Momentum: l.Momentum, Eps: l.Eps}
	}
	gn, d := g.gen, g.disc
	gen := TorchNet{Name: "generator", Named: true, Layers: []TorchLayer{
		lin(gn.FC), {Kind: "View", Shape: []int{gn.F2, gn.S4, gn.S4}}, bn(gn.BN0),
		{Kind: "ReLU"}, {Kind: "Upsample2x"}, conv(gn.Conv1), bn(gn.BN1),
		{Kind: "ReLU"}, {Kind: "Upsample2x"}, conv(gn.Conv2), {Kind: "Tanh"}, {Kind: "Flatten"},
	}}
	// D takes Pack images at once, stacked along the channels.
	disc := TorchNet{Name: "discriminator", Named: true, Layers: []TorchLayer{
		{Kind: "View", Shape: []int{c.Channels * d.Pack, c.Height, c.Width}},
		conv(d.Conv1), {Kind: "LeakyReLU", Slope: d.Slope}, conv(d.Conv2), {Kind: "LeakyReLU", Slope: d.Slope},
	}}
	if d.Std {
		disc.Layers = append(disc.Layers, TorchLayer{Kind: "MinibatchStd"})
	}
	disc.Layers = append(disc.Layers, TorchLayer{Kind: "Flatten"}, lin(d.FC))
	return []TorchNet{gen, disc}, nil
}

// TorchNets describes the MLP VAE: its five layers sit at the root of the
// state_dict (fc1, fc21, fc22, fc3, fc4), so it is one unnamed net whose
// layers are the model's own attributes; the exported recipe applies them
// (encode, reparameterise, decode) as VAE.TrainStep does.
func (v *VAE) TorchNets() ([]TorchNet, error) {
	lin := torchLinear
	return []TorchNet{{Named: true, Layers: []TorchLayer{lin(v.FC1), lin(v.FC21), lin(v.FC22), lin(v.FC3), lin(v.FC4)}}}, nil
}

// TorchNets describes the conv VAE: its encoder and decoder as named nets
// (encoder.conv1, decoder.fc, …) and the heads fc_mu and fc_logvar at the
// root of the state_dict, which the exported recipe applies between them.
func (v *ConvVAE) TorchNets() ([]TorchNet, error) {
	c := v.cfg
	conv := torchConv
	lin := func(l *Linear, name string) TorchLayer {
		t := torchLinear(l)
		t.Name = name
		return t
	}
	enc := TorchNet{Name: "encoder", Named: true, Layers: []TorchLayer{
		{Kind: "View", Shape: []int{c.Channels, c.Height, c.Width}},
		conv(v.encConv1), {Kind: "ReLU"}, conv(v.encConv2), {Kind: "ReLU"}, {Kind: "Flatten"},
	}}
	dec := TorchNet{Name: "decoder", Named: true, Layers: []TorchLayer{
		lin(v.decFC, "fc"), {Kind: "View", Shape: []int{2 * c.Features, c.Height / 4, c.Width / 4}},
		{Kind: "ReLU"}, {Kind: "Upsample2x"}, conv(v.decConv1),
		{Kind: "ReLU"}, {Kind: "Upsample2x"}, conv(v.decConv2), {Kind: "Flatten"},
	}}
	heads := TorchNet{Named: true, Layers: []TorchLayer{lin(v.fcMu, "fc_mu"), lin(v.fcLogvar, "fc_logvar")}}
	return []TorchNet{enc, heads, dec}, nil
}

// TorchNets describes the diffusion model's noise predictor. The MLP's
// four layers sit at the root of the state_dict (temb, inp, mid, out);
// the U-Net's are its root modules (inc, the residual blocks down1 … dec1,
// pool1, pool2, out) and the Sequentials temb, up2 and up1. Both are
// wired by the exported recipe (eps_net in train.py), as epsNet and
// unNet.build wire them here.
func (d *DDPM) TorchNets() ([]TorchNet, error) {
	if d.unet == nil {
		lin := torchLinear
		return []TorchNet{{Named: true, Layers: []TorchLayer{lin(d.Temb), lin(d.Inp), lin(d.Mid), lin(d.Out)}}}, nil
	}
	u := d.unet
	res := func(name string, r *unResBlock) TorchLayer {
		return TorchLayer{Kind: "ResBlock", Name: name, In: r.conv1.In, Out: r.conv1.Out, Emb: r.temb.In}
	}
	conv := torchConv
	seq := func(name string, ls ...TorchLayer) TorchNet {
		for i := range ls {
			ls[i].Name = ""
		}
		return TorchNet{Name: name, Layers: ls}
	}
	return []TorchNet{
		seq("temb", torchLinear(u.temb0), TorchLayer{Kind: "SiLU"}, torchLinear(u.temb2)),
		{Named: true, Layers: []TorchLayer{conv(u.inc), res("down1", u.down1), conv(u.pool1), res("down2", u.down2),
			conv(u.pool2), res("mid", u.mid), res("dec2", u.dec2), res("dec1", u.dec1), conv(u.out)}},
		seq("up2", TorchLayer{Kind: "Upsample2x"}, conv(u.up2)),
		seq("up1", TorchLayer{Kind: "Upsample2x"}, conv(u.up1)),
	}, nil
}
