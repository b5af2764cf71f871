package models_test

import (
	"errors"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// TestTorchNetsRefuseWhatTheExportLacks: the GAN settings the PyTorch job
// does not carry are refused by name; the plain models are described.
func TestTorchNetsRefuseWhatTheExportLacks(t *testing.T) {
	for _, c := range []struct {
		family, config string
		refused        bool
	}{
		{"gan", `{"g_hidden":[8],"d_hidden":[8]}`, false},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"batch":64,"pack":2}`, true},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"spectral_norm":true}`, true},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4}`, false},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4,"minibatch_std":true}`, true},
		{"vae", `{"hidden":8,"latent":2}`, false},
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
