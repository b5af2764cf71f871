package models_test

import (
	"errors"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// TestTorchNetsRefuseWhatTheExportLacks: DiffAugment, the GAN setting the
// PyTorch job does not carry, is refused by name; every family and arch
// and the other remedies are described.
func TestTorchNetsRefuseWhatTheExportLacks(t *testing.T) {
	for _, c := range []struct {
		family, config string
		refused        bool
	}{
		{"gan", `{"g_hidden":[8],"d_hidden":[8]}`, false},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"batch":64,"pack":2}`, false},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"spectral_norm":true,"minibatch_std":true,"ms_weight":1}`, false},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"diff_augment":true}`, true},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4}`, false},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4,"minibatch_std":true,"spectral_norm":true}`, false},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4,"diff_augment":true}`, true},
		{"vae", `{"hidden":8,"latent":2}`, false},
		{"vae", `{"arch":"conv","features":4,"latent":2}`, false},
		{"ddpm", `{"hidden":8,"temb":4,"t":10,"sample_steps":2}`, false},
		{"ddpm", `{"arch":"conv","features":4,"temb":4,"t":10,"sample_steps":2,"classes":3}`, false},
	} {
		m, err := models.New(c.family, []byte(c.config))
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.(models.TorchDescriber).TorchNets()
		if errors.Is(err, models.ErrNoTorchDescription) != c.refused || (!c.refused && err != nil) {
			t.Errorf("%s %s: %v", c.family, c.config, err)
		}
		m.Close()
	}
}
