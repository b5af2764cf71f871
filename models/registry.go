package models

import (
	"encoding/json"
	"fmt"
)

// Families lists the model families Gen Studio can build.
var Families = []string{"gan", "vae", "ddpm"}

// Architectures lists each family's architectures; "mlp" is the default.
var Architectures = map[string][]string{"gan": {"mlp"}, "vae": {"mlp"}, "ddpm": {"mlp"}}

// builders make a model from its JSON config, by "family/arch".
var builders = map[string]func(config []byte) (Model, error){
	"gan/mlp":  func(c []byte) (Model, error) { return build(c, DefaultGANConfig(), NewGAN) },
	"vae/mlp":  func(c []byte) (Model, error) { return build(c, DefaultVAEConfig(), NewVAE) },
	"ddpm/mlp": func(c []byte) (Model, error) { return build(c, DefaultDDPMConfig(), NewDDPM) },
}

// register adds an architecture's builder (called from init functions of
// the files that define them).
func register(family, arch string, b func(config []byte) (Model, error)) {
	builders[family+"/"+arch] = b
	Architectures[family] = append(Architectures[family], arch)
}

// ArchOf reads the "arch" of a JSON config; configs without one are "mlp".
func ArchOf(config []byte) string {
	var c struct {
		Arch string `json:"arch"`
	}
	if len(config) > 0 && json.Unmarshal(config, &c) == nil && c.Arch != "" {
		return c.Arch
	}
	return "mlp"
}

// build decodes config over the family's defaults and makes the model.
func build[C any, M Model](config []byte, cfg C, make func(C) (M, error)) (Model, error) {
	if len(config) > 0 {
		if err := json.Unmarshal(config, &cfg); err != nil {
			return nil, fmt.Errorf("model config: %w", err)
		}
	}
	m, err := make(cfg)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// New builds a model of the given family from its JSON configuration, as a
// checkpoint's metadata stores it; the config's "arch" picks the
// architecture (default "mlp").
func New(family string, config []byte) (Model, error) {
	if _, ok := Architectures[family]; !ok {
		return nil, fmt.Errorf("unknown model family %q", family)
	}
	arch := ArchOf(config)
	b, ok := builders[family+"/"+arch]
	if !ok {
		return nil, fmt.Errorf("the %s family has no %q architecture", family, arch)
	}
	return b(config)
}

// defaultConfigs are each architecture's default configuration.
var defaultConfigs = map[string]func() any{
	"gan/mlp":   func() any { return DefaultGANConfig() },
	"gan/conv":  func() any { return DefaultDCGANConfig() },
	"vae/mlp":   func() any { return DefaultVAEConfig() },
	"vae/conv":  func() any { return DefaultConvVAEConfig() },
	"ddpm/mlp":  func() any { return DefaultDDPMConfig() },
	"ddpm/unet": func() any { return DefaultUNetDDPMConfig() },
}

// DefaultConfig returns the JSON default configuration of family/arch,
// without building the model.
func DefaultConfig(family, arch string) ([]byte, error) {
	def, ok := defaultConfigs[family+"/"+arch]
	if !ok {
		return nil, fmt.Errorf("the %s family has no %q architecture", family, arch)
	}
	return json.Marshal(def())
}
