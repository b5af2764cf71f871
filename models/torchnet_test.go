package models_test

import (
	"testing"

	"github.com/genstudio/genstudio/models"
)

// TestTorchNetsDescribeEveryVariant: every family and arch, with every
// GAN remedy, is described for the PyTorch job.
func TestTorchNetsDescribeEveryVariant(t *testing.T) {
	for _, c := range []struct{ family, config string }{
		{"gan", `{"g_hidden":[8],"d_hidden":[8]}`},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"batch":64,"pack":2}`},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"spectral_norm":true,"minibatch_std":true,"ms_weight":1}`},
		{"gan", `{"g_hidden":[8],"d_hidden":[8],"diff_augment":true,"r1":1,"gp":10,"loss":"wgan"}`},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4}`},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4,"minibatch_std":true,"spectral_norm":true}`},
		{"gan", `{"arch":"conv","g_features":4,"d_features":4,"diff_augment":true}`},
		{"vae", `{"hidden":8,"latent":2}`},
		{"vae", `{"arch":"conv","features":4,"latent":2}`},
		{"ddpm", `{"hidden":8,"temb":4,"t":10,"sample_steps":2}`},
		{"ddpm", `{"arch":"conv","features":4,"temb":4,"t":10,"sample_steps":2,"classes":3}`},
	} {
		m, err := models.New(c.family, []byte(c.config))
		if err != nil {
			t.Fatal(err)
		}
		nets, err := m.(models.TorchDescriber).TorchNets()
		if err != nil || len(nets) == 0 {
			t.Errorf("%s %s: %d nets, %v", c.family, c.config, len(nets), err)
		}
		m.Close()
	}
}
