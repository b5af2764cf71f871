package training_test

import (
	"bytes"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// TestPreviewViews checks the live preview of each family: the sample grid
// is Sample's, and the second view is the VAE's reconstructions or the
// diffusion model's denoising path (the same as AuxView draws on its own,
// though the preview gets it from the grid's sampling run), or nothing.
func TestPreviewViews(t *testing.T) {
	for _, c := range []struct {
		family, config string
		aux            bool
	}{
		{"gan", `{"g_hidden":[16],"d_hidden":[16],"latent":8}`, false},
		{"vae", `{"hidden":16,"latent":4}`, true},
		{"ddpm", `{"hidden":16,"temb":8,"t":50,"sampler":"ddim","sample_steps":5,"eta":0}`, true},
	} {
		t.Run(c.family, func(t *testing.T) {
			m, err := models.New(c.family, []byte(c.config))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			const n = 16
			z := models.NoiseFromSeed(n, m.NoiseDim(), 7)
			real := make([]uint8, 8*m.Shape().Size())
			for i := range real {
				real[i] = uint8(i * 37)
			}
			grid, aux, title, err := training.Preview(m, z, real)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Sample(z)
			if err != nil {
				t.Fatal(err)
			}
			want := training.GridImage(out, n, training.GridCols(n), m.Shape())
			if !grid.Bounds().Eq(want.Bounds()) || !bytes.Equal(grid.Pix, want.Pix) {
				t.Errorf("the preview grid differs from the samples' grid")
			}
			if (aux != nil) != c.aux || (title != "") != c.aux {
				t.Fatalf("second view %v %q, want one: %v", aux != nil, title, c.aux)
			}
			if aux == nil {
				return
			}
			alone, title2, err := training.AuxView(m, z, real)
			if err != nil {
				t.Fatal(err)
			}
			if title2 != title || !alone.Bounds().Eq(aux.Bounds()) || !bytes.Equal(alone.Pix, aux.Pix) {
				t.Errorf("the preview's second view %v %q differs from AuxView's %v %q", aux.Bounds(), title, alone.Bounds(), title2)
			}
		})
	}
}
