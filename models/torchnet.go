package models

import (
	"errors"
	"fmt"
)

// TorchLayer is one torch.nn module of a network: its kind and the
// arguments its constructor takes. The exported PyTorch job
// (training.ExportTorchJob) writes each as one module of an nn.Sequential,
// at the index that gives the model's state_dict names.
type TorchLayer struct {
	Kind    string  // "Linear", "ReLU", "LeakyReLU", "Dropout", "Tanh" or "Sigmoid"
	In, Out int     // Linear
	Bias    bool    // Linear
	Slope   float64 // LeakyReLU's negative slope
	P       float64 // Dropout's probability
}

// TorchNet is one of a model's networks as an nn.Sequential named Name
// ("generator", "discriminator"): its layers in order.
type TorchNet struct {
	Name   string
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
func (m *MLP) torchSequential(name string) (TorchNet, error) {
	if m.StdBeforeLast {
		return TorchNet{}, fmt.Errorf("the minibatch standard deviation layer: %w", ErrNoTorchDescription)
	}
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
	net := TorchNet{Name: name}
	for i, l := range m.Layers {
		if l.SN != nil {
			return TorchNet{}, fmt.Errorf("spectral normalisation: %w", ErrNoTorchDescription)
		}
		want := fmt.Sprintf("%s.%d", name, len(net.Layers))
		if l.Name != want {
			return TorchNet{}, fmt.Errorf("layer %s sits at %s of the Sequential", l.Name, want)
		}
		net.Layers = append(net.Layers, TorchLayer{Kind: "Linear", In: l.In, Out: l.Out, Bias: l.B != nil})
		if i+1 < len(m.Layers) {
			net.Layers = append(net.Layers, act(m.Hidden)...)
			// A Dropout slot (p may be 0) where the next layer's name
			// leaves one, as the seed's discriminator has.
			if m.DropoutP > 0 || m.Layers[i+1].Name == fmt.Sprintf("%s.%d", name, len(net.Layers)+1) {
				net.Layers = append(net.Layers, TorchLayer{Kind: "Dropout", P: m.DropoutP})
			}
		} else {
			net.Layers = append(net.Layers, act(m.Output)...)
		}
	}
	return net, nil
}

// TorchNets describes the MLP GAN's generator and discriminator. Settings
// the export does not carry yet (packing, spectral norm, the minibatch
// standard deviation, DiffAugment, mode seeking) are refused by name.
func (g *GAN) TorchNets() ([]TorchNet, error) {
	c := g.cfg
	switch {
	case c.Pack > 1:
		return nil, fmt.Errorf("PacGAN packing: %w", ErrNoTorchDescription)
	case c.DiffAugment:
		return nil, fmt.Errorf("DiffAugment: %w", ErrNoTorchDescription)
	case c.MSWeight > 0:
		return nil, fmt.Errorf("mode seeking: %w", ErrNoTorchDescription)
	}
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
