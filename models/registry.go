package models

import (
	"encoding/json"
	"fmt"
)

// Families lists the model families Gen Studio can build.
var Families = []string{"gan"}

// New builds a model of the given family from its JSON configuration, as a
// checkpoint's metadata stores it.
func New(family string, config []byte) (Model, error) {
	switch family {
	case "gan":
		cfg := DefaultGANConfig()
		if len(config) > 0 {
			if err := json.Unmarshal(config, &cfg); err != nil {
				return nil, fmt.Errorf("gan config: %w", err)
			}
		}
		return NewGAN(cfg)
	}
	return nil, fmt.Errorf("unknown model family %q", family)
}
