package models

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Techniques are the named remedies for mode collapse a study or a preset
// lays over a variant's defaults: each sets spec fields by JSON key.
var Techniques = map[string]map[string]any{
	"plain": {},
	"hinge": {"loss": GANLossHinge},
	"lsgan": {"loss": GANLossLS},
	// TTUR's common setting (Heusel et al.): lr_D 4e-4, lr_G 1e-4, Adam(0, 0.9).
	"ttur": {"lr": 1e-4, "d_lr": 4e-4, "beta1": 0.0, "beta2": 0.9},
	// PacGAN (Lin et al.): D judges 2 or 4 samples at once.
	"pacgan2": {"pack": 2},
	"pacgan4": {"pack": 4},
	// Spectral normalisation of every D layer (Miyato et al.).
	"sn": {"spectral_norm": true},
	// MSGAN's mode-seeking term with λ = 1 (Mao et al.).
	"msgan": {"ms_weight": 1.0},
	// The minibatch standard-deviation layer before D's last layer (ProGAN).
	"mbstd": {"minibatch_std": true},
	// DiffAugment's colour, translation and cutout on D's inputs.
	"diffaug": {"diff_augment": true},
	// The R1 penalty on D's gradient at the real images, γ = 1 (Mescheder
	// et al. 2018).
	"r1": {"r1": 1.0},
	// WGAN-GP (Gulrajani et al. 2017): the Wasserstein loss, the gradient
	// penalty λ = 10 and the paper's Adam(1e-4, 0, 0.9); one D step per G
	// step here, where the paper takes five.
	"wgangp": {"loss": GANLossWGAN, "gp": 10.0, "lr": 1e-4, "beta1": 0.0, "beta2": 0.9},
	// Samples from an exponential moving average of G's weights (β 0.999).
	"ema": {"ema": 0.999},
	// Adam at 1e-3, both learning rates decayed linearly to 0 over the run
	// (with ema, the remedy that lifts the seed's MLP GAN out of collapse).
	"lrdecay": {"lr": 1e-3, "lr_schedule": LRLinear},
	// Top-k training (Sinha et al. 2020): G learns from the fakes D scores
	// best, down to half of them (2-D lab only).
	"topk": {"top_k": 0.5},
	// Discriminator rejection sampling (Azadi et al. 2019): keep each sample
	// with probability exp(D(x) − max D) (2-D lab only).
	"drs": {"rejection": true},
}

// TechniqueNames lists Techniques sorted.
func TechniqueNames() []string {
	var names []string
	for n := range Techniques {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ApplyTechniques sets in cfg (a variant's JSON configuration as a map)
// the settings of each technique of spec ("a+b" combines them). It refuses
// a technique that sets a key cfg does not have: it does not apply.
func ApplyTechniques(cfg map[string]any, spec string) error {
	for _, t := range strings.Split(spec, "+") {
		set, ok := Techniques[t]
		if !ok {
			return fmt.Errorf("unknown technique %q (known: %s; combine with +)", t, strings.Join(TechniqueNames(), ", "))
		}
		for k, v := range set {
			if _, has := cfg[k]; !has {
				return fmt.Errorf("technique %s does not apply to this model (it has no %q setting)", t, k)
			}
			cfg[k] = v
		}
	}
	return nil
}

// Preset is a named recipe in the form's preset menu: a variant and the
// techniques laid over its defaults.
type Preset struct {
	Name         string
	Family, Arch string
	// Config holds settings laid over the variant's defaults before the
	// techniques (a smaller network, say).
	Config     map[string]any
	Techniques string // as ApplyTechniques takes them ("plain": the defaults)
	Steps      int    // the recipe's training length (0: the form's)
	Note       string // what it is, and what was measured
	// Default marks the recipe the studio opens with and `genstudio
	// train` trains when no model is named.
	Default bool
}

// DefaultPreset is the recipe marked Default.
func DefaultPreset() Preset {
	for _, p := range Presets() {
		if p.Default {
			return p
		}
	}
	return Presets()[0]
}

// PresetConfig is p's configuration: the variant's defaults (def, as a
// JSON map), then p.Config, then p's techniques.
func PresetConfig(p Preset, def map[string]any) (map[string]any, error) {
	cfg := maps.Clone(def)
	for k, v := range p.Config {
		if _, has := cfg[k]; !has {
			return nil, fmt.Errorf("preset %s: the %s/%s model has no %q setting", p.Name, p.Family, p.Arch, k)
		}
		cfg[k] = v
	}
	if err := ApplyTechniques(cfg, p.Techniques); err != nil {
		return nil, fmt.Errorf("preset %s: %w", p.Name, err)
	}
	return cfg, nil
}

// Presets are the recipes the form offers, the seed's first.
func Presets() []Preset {
	return []Preset{
		{Name: "Seed recipe (MLP GAN)", Family: "gan", Arch: "mlp", Techniques: "plain",
			Note: "the seed's MLP GAN exactly; it collapses onto a few digits (3 of 10 classes, recall 0 after 3,000 steps)"},
		{Name: "DCGAN", Family: "gan", Arch: "conv", Techniques: "plain",
			Note: "the conv GAN: 10 of 10 classes, recall 0.78, IS 6.1 after 3,000 steps (N = 2,000)"},
		{Name: "DCGAN, 32 features, EMA", Family: "gan", Arch: "conv", Config: map[string]any{"g_features": 32, "d_features": 32},
			Techniques: "ema", Steps: 6000,
			Note: "a DCGAN with half the feature maps (a third of the step time), 6,000 steps, samples from G's weight average; 10 of 10 classes, recall 0.80, IS 5.7, FID 224 (N = 256)"},
		{Name: "DCGAN 48/32, batch 32, EMA", Family: "gan", Arch: "conv", Config: map[string]any{"g_features": 48, "d_features": 32, "batch": 32},
			Techniques: "ema", Steps: 8500, Default: true,
			Note: "the studio's default: G with 48 feature maps, D with 32, batch 32, 8,500 steps (8.4 minutes here), samples from G's weight average; 10 of 10 classes, recall 0.92, IS 5.8, FID 208 (N = 256)"},
		{Name: "MLP GAN, EMA, lr decay", Family: "gan", Arch: "mlp", Techniques: "ema+lrdecay",
			Note: "the seed's MLP GAN with Adam 1e-3 decayed linearly to 0 and samples from G's weight average: 10 of 10 classes on 3 of 3 seeds where the seed recipe has 3, FID 332 against 1314, IS 5.7 against 2.1 after 3,000 steps (N = 2,000)"},
		{Name: "MLP VAE", Family: "vae", Arch: "mlp", Techniques: "plain",
			Note: "10 of 10 classes, recall 0.63 after 3,000 steps, blurrier digits (N = 2,000)"},
	}
}
