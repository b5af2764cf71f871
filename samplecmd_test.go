package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

func smallCheckpoint(t *testing.T, dir string, seed uint64) string {
	t.Helper()
	c := models.DefaultDCGANConfig()
	c.GFeatures, c.DFeatures, c.Batch, c.Seed = 4, 4, 4, seed
	m, err := models.NewDCGAN(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := filepath.Join(dir, "m.safetensors")
	if err := training.SaveCheckpoint(p, m, training.CheckpointInfo{Step: 5, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSampleFromRedraws: sample, interpolate, then sample --from each
// image and info on them; a redraw from other weights is refused.
func TestSampleFromRedraws(t *testing.T) {
	dir := t.TempDir()
	ck := smallCheckpoint(t, dir, 1)
	grid, gal, strip, walk := filepath.Join(dir, "g.png"), filepath.Join(dir, "gal"), filepath.Join(dir, "s.png"), filepath.Join(dir, "w.gif")
	if err := cmdSample([]string{"--checkpoint", ck, "--n", "9", "--seed", "4", "--truncation", "0.7", "--out", grid, "--gallery", gal}); err != nil {
		t.Fatal(err)
	}
	if err := cmdInterpolate([]string{"--checkpoint", ck, "--from-seed", "3", "--to-seed", "8", "--frames", "5", "--out", strip, "--gif", walk}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{grid, filepath.Join(gal, "sample-0005.png"), strip} {
		out := img + ".again.png"
		if err := cmdSample([]string{"--from", img, "--out", out}); err != nil {
			t.Fatalf("%s: %v", img, err)
		}
		a, _ := os.ReadFile(img)
		b, _ := os.ReadFile(out)
		if string(a) != string(b) {
			t.Errorf("%s: the redrawn file differs", filepath.Base(img))
		}
	}
	p, err := training.ReadProvenance(grid)
	if err != nil || p.Sampler.Truncation != 0.7 || p.N != 9 || p.Seed != 4 {
		t.Fatalf("%+v %v", p, err)
	}
	if err := cmdInfo([]string{grid, strip}); err != nil {
		t.Error(err)
	}
	b, _ := os.ReadFile(walk)
	if c, err := training.GIFComments(b); err != nil || len(c) != 1 {
		t.Errorf("the GIF's comments: %q %v", c, err)
	}
	other := smallCheckpoint(t, t.TempDir(), 2) // other weights
	if err := cmdSample([]string{"--from", grid, "--checkpoint", other}); err == nil || !strings.Contains(err.Error(), "other weights") {
		t.Errorf("redraw from other weights: %v", err)
	}
	if err := cmdSample([]string{"--checkpoint", ck, "--temperature", "0.5"}); err == nil {
		t.Error("--temperature on a GAN passed")
	}
}

// TestSampleConditional: --class and --guidance reach a conditional
// diffusion model, are recorded, and redraw exactly.
func TestSampleConditional(t *testing.T) {
	dir := t.TempDir()
	c := models.DefaultDDPMConfig()
	c.Hidden, c.Batch, c.T, c.SampleSteps, c.Classes = 8, 4, 20, 4, 3
	m, err := models.NewDDPM(c)
	if err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(dir, "c.safetensors")
	err = training.SaveCheckpoint(ck, m, training.CheckpointInfo{Step: 1})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "g.png")
	if err := cmdSample([]string{"--checkpoint", ck, "--n", "4", "--class", "2", "--guidance", "4", "--out", out}); err != nil {
		t.Fatal(err)
	}
	p, err := training.ReadProvenance(out)
	if err != nil || p.Sampler.Class == nil || *p.Sampler.Class != 2 || *p.Sampler.Guidance != 4 {
		t.Fatalf("%+v %v", p.Sampler, err)
	}
	if err := cmdSample([]string{"--from", out}); err != nil {
		t.Fatal(err)
	}
	if err := cmdSample([]string{"--checkpoint", ck, "--class", "3"}); err == nil {
		t.Error("class 3 of 3 classes passed")
	}
	if err := cmdSample([]string{"--checkpoint", smallCheckpoint(t, dir, 1), "--guidance", "2"}); err == nil {
		t.Error("--guidance on a GAN passed")
	}
}
