package models_test

import (
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// TestStateSplits checks that every model's state splits into weights,
// buffers and optimizer state with nothing left over or counted twice:
// Adam keeps two moments per weight, buffers are the batch-norm statistics.
func TestStateSplits(t *testing.T) {
	for _, fa := range [][2]string{{"gan", "mlp"}, {"gan", "conv"}, {"vae", "mlp"}, {"vae", "conv"}, {"ddpm", "mlp"}, {"ddpm", "unet"}} {
		t.Run(fa[0]+"/"+fa[1], func(t *testing.T) {
			cfg, err := models.DefaultConfig(fa[0], fa[1])
			if err != nil {
				t.Fatal(err)
			}
			m, err := models.New(fa[0], cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			w, b, o := models.Weights(m), models.Buffers(m), models.OptimizerState(m)
			if len(w)+len(b)+len(o) != len(m.State()) || len(o) != 2*len(w) || len(w) == 0 {
				t.Fatalf("%d weights, %d buffers, %d optimizer tensors of %d", len(w), len(b), len(o), len(m.State()))
			}
			for _, p := range o {
				if !strings.HasPrefix(p.Name, "optim") {
					t.Errorf("optimizer tensor %s", p.Name)
				}
			}
			for _, p := range b {
				if !strings.Contains(p.Name, ".running_") && !strings.HasSuffix(p.Name, ".num_batches_tracked") {
					t.Errorf("buffer %s", p.Name)
				}
			}
			if wantBuffers := fa == [2]string{"gan", "conv"}; wantBuffers != (len(b) > 0) {
				t.Errorf("%d buffers", len(b))
			}
		})
	}
}

// TestSampleImages checks the one sampling entry point: images in [0, 1]
// for every family, sampler options for diffusion models only.
func TestSampleImages(t *testing.T) {
	for _, family := range []string{"gan", "vae", "ddpm"} {
		cfg, _ := models.DefaultConfig(family, "mlp")
		m, err := models.New(family, cfg)
		if err != nil {
			t.Fatal(err)
		}
		z := models.NoiseFromSeed(2, m.NoiseDim(), 1)
		x, err := models.SampleImages(m, z, nil, nil)
		if err != nil || len(x) != 2*m.Shape().Size() {
			t.Fatalf("%s: %d values, %v", family, len(x), err)
		}
		for _, v := range x {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s: value %g outside [0, 1]", family, v)
			}
		}
		_, err = models.SampleImages(m, z, &models.SampleOptions{Sampler: "ddim", Steps: 5}, nil)
		if _, diff := m.(models.Diffuser); diff != (err == nil) {
			t.Errorf("%s: sampler options gave %v", family, err)
		}
		m.Close()
	}
}
