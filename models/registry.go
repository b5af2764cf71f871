package models

import (
	"encoding/json"
	"fmt"
)

// Families lists the model families Gen Studio can build.
var Families = []string{"gan", "vae", "ddpm"}

var builders = map[string]func(config []byte) (Model, error){
	"gan":  func(c []byte) (Model, error) { return build(c, DefaultGANConfig(), NewGAN) },
	"vae":  func(c []byte) (Model, error) { return build(c, DefaultVAEConfig(), NewVAE) },
	"ddpm": func(c []byte) (Model, error) { return build(c, DefaultDDPMConfig(), NewDDPM) },
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
// checkpoint's metadata stores it.
func New(family string, config []byte) (Model, error) {
	b, ok := builders[family]
	if !ok {
		return nil, fmt.Errorf("unknown model family %q", family)
	}
	return b(config)
}
