package models

import (
	"encoding/json"
	"fmt"
)

// Families lists the model families Gen Studio can build, in the order of
// Specs.
var Families []string

// Architectures lists each family's canonical architectures, in the order
// of Specs; "mlp" is the default. Aliases (the DDPM's "unet") are not
// listed but SpecOf, New and DefaultConfig take them.
var Architectures map[string][]string

// ArchOf reads the "arch" of a JSON config as written; configs without one
// are "mlp". SpecOf resolves aliases such as "unet".
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
// architecture (default "mlp"; an alias such as the DDPM's "unet" builds
// the same model as its canonical name).
func New(family string, config []byte) (Model, error) {
	s, err := SpecOf(family, ArchOf(config))
	if err != nil {
		return nil, err
	}
	return s.Build(config)
}

// DefaultConfig returns the JSON default configuration of family/arch
// (arch may be an alias), without building the model.
func DefaultConfig(family, arch string) ([]byte, error) {
	s, err := SpecOf(family, arch)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s.Default())
}
