package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// TestTrainFlagSpellings: every model flag train ever took is still there,
// each once.
func TestTrainFlagSpellings(t *testing.T) {
	var have []string
	for _, f := range imageFlags {
		have = append(have, f.flag)
	}
	for _, f := range modelFlags() {
		if slices.Contains(have, f.name) {
			t.Fatalf("--%s twice", f.name)
		}
		if f.usage == "" {
			t.Errorf("--%s has no usage", f.name)
		}
		have = append(have, f.name)
	}
	for _, name := range strings.Fields("size channels batch lr beta1 latent g-hidden d-hidden hidden features g-features d-features kl-beta kl-warmup temperature timesteps schedule sampler sample-steps eta") {
		if !slices.Contains(have, name) {
			t.Errorf("--%s is gone", name)
		}
	}
}

func TestFamilyConfig(t *testing.T) {
	for _, arch := range []string{"conv", "unet"} {
		spec, err := models.SpecOf("ddpm", arch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := familyConfig(spec, 5, map[string]string{"features": "8", "timesteps": "100", "size": "32", "schedule": "cosine"})
		if err != nil {
			t.Fatal(err)
		}
		var c models.DDPMConfig
		if err := json.Unmarshal(got.config, &c); err != nil {
			t.Fatal(err)
		}
		if c.Arch != "conv" || c.Features != 8 || c.T != 100 || c.Width != 32 || c.Height != 32 || c.Schedule != "cosine" || c.Seed != 5 {
			t.Fatalf("--arch %s: config %+v", arch, c)
		}
		if slices.Sort(got.keys); !slices.Equal(got.keys, []string{"features", "height", "schedule", "t", "width"}) {
			t.Fatalf("keys %v", got.keys)
		}
	}
	gan, _ := models.SpecOf("gan", "mlp")
	got, err := familyConfig(gan, 1, map[string]string{"g-hidden": "64, 128", "lr": "1e-3", "latent": "1e2"})
	if err != nil {
		t.Fatal(err)
	}
	var g models.GANConfig
	json.Unmarshal(got.config, &g)
	if !slices.Equal(g.GHidden, []int{64, 128}) || g.LR != 1e-3 || g.Latent != 100 {
		t.Fatalf("gan config %+v", g)
	}
	unet, _ := models.SpecOf("ddpm", "conv")
	for _, c := range []struct {
		spec models.Spec
		set  map[string]string
		want string
	}{
		{gan, map[string]string{"features": "8"}, "--features does not apply to the gan/mlp model"},
		{unet, map[string]string{"hidden": "8"}, "--hidden does not apply to the ddpm/conv model"},
		{unet, map[string]string{"features": "300"}, "--features: U-Net features must be 1..128, got 300"},
		{unet, map[string]string{"schedule": "quadratic"}, "--schedule: Noise schedule must be one of linear, cosine"},
		{gan, map[string]string{"g-hidden": "64,x"}, "--g-hidden: Generator layers"},
		{gan, map[string]string{"lr": "2"}, "--lr: Learning rate must be in (0, 1), got 2"},
		{gan, map[string]string{"size": "big"}, "--size"},
	} {
		if _, err := familyConfig(c.spec, 1, c.set); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.spec.Name(), c.set, err, c.want)
		}
	}
	// A project's stored config gets only the flags given.
	vae, _ := models.SpecOf("vae", "mlp")
	top, err := familyConfig(vae, 1, map[string]string{"latent": "8"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := overlay([]byte(`{"hidden":16,"batch":8}`), top)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"batch":8,"hidden":16,"latent":8}` {
		t.Fatalf("overlay %s", b)
	}
}

// isUNet tells a U-Net noise predictor from the MLP by its tensors.
func isUNet(m models.Model) bool {
	for _, nt := range m.State() {
		if nt.Name == "inc.weight" {
			return true
		}
	}
	return false
}

// TestTrainConvDDPM: `genstudio train --family ddpm --arch conv` and
// `--arch unet` both train the U-Net headless; a checkpoint whose config
// says "unet" (as older ones do) resumes.
func TestTrainConvDDPM(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on MNIST")
	}
	var last string
	for _, arch := range []string{"conv", "unet"} {
		out := filepath.Join(t.TempDir(), arch)
		err := cmdTrain([]string{"--family", "ddpm", "--arch", arch, "--steps", "1", "--out", out,
			"--features", "4", "--timesteps", "10", "--sample-steps", "2", "--batch", "4", "--preview-every", "1"})
		if err != nil {
			t.Fatalf("--arch %s: %v", arch, err)
		}
		last = filepath.Join(out, "checkpoints", "step-00000001.safetensors")
		ck, err := training.LoadCheckpoint(last)
		if err != nil {
			t.Fatal(err)
		}
		c := ck.Model.Config().(models.DDPMConfig)
		if !isUNet(ck.Model) || c.Arch != "conv" || c.Features != 4 || c.T != 10 {
			t.Fatalf("--arch %s trained %+v", arch, c)
		}
		ck.Model.Close()
	}

	// An older checkpoint: the same model, its config saying "unet".
	m, err := models.New("ddpm", []byte(`{"arch":"unet","features":4,"t":10,"sample_steps":2,"batch":4}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old := filepath.Join(dir, "old.safetensors")
	err = training.SaveCheckpoint(old, m, training.CheckpointInfo{Step: 1, Seed: 1, Dataset: "mnist"})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := training.LoadCheckpoint(old)
	if err != nil {
		t.Fatal(err)
	}
	if !isUNet(ck.Model) || ck.Model.Config().(models.DDPMConfig).Arch != "unet" {
		t.Fatalf("old checkpoint loaded as %+v", ck.Model.Config())
	}
	ck.Model.Close()
	if err := cmdTrain([]string{"--resume", old, "--steps", "2", "--out", dir, "--preview-every", "1"}); err != nil {
		t.Fatal(err)
	}
}

// TestTrainOnOffFlags: the GANs' on/off settings work as bare flags and
// with =false, and reach the checkpoint's config with the diversity
// settings beside them; the run resumes from that checkpoint with its
// spectral-norm state.
func TestTrainOnOffFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on MNIST")
	}
	out := t.TempDir()
	err := cmdTrain([]string{"--steps", "2", "--out", out, "--batch", "8", "--latent", "8", "--g-hidden", "16", "--d-hidden", "16",
		"--spectral-norm", "--minibatch-std", "--diff-augment=false", "--mode-seeking", "0.5", "--preview-every", "1"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "checkpoints", "step-00000002.safetensors")
	ck, err := training.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	c := ck.Model.Config().(models.GANConfig)
	ck.Model.Close()
	if !c.SpectralNorm || !c.MinibatchStd || c.DiffAugment || c.MSWeight != 0.5 {
		t.Fatalf("flags gave %+v", c)
	}
	if err := cmdTrain([]string{"--resume", path, "--steps", "3", "--out", out, "--preview-every", "1"}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if err := cmdTrain([]string{"--steps", "1", "--out", t.TempDir(), "--spectral-norm=maybe"}); err == nil {
		t.Error("--spectral-norm=maybe was accepted")
	}
}

// TestTrainDefaultRecipe: train without a model named trains the default
// preset's model with its settings.
func TestTrainDefaultRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on MNIST")
	}
	out := t.TempDir()
	if err := cmdTrain([]string{"--steps", "1", "--out", out, "--preview-every", "1"}); err != nil {
		t.Fatal(err)
	}
	ck, err := training.LoadCheckpoint(filepath.Join(out, "checkpoints", "step-00000001.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Model.Close()
	def := models.DefaultPreset()
	b, _ := json.Marshal(ck.Model.Config())
	var cfg map[string]any
	json.Unmarshal(b, &cfg)
	if ck.Model.Family() != def.Family || models.ArchOf(b) != def.Arch {
		t.Fatalf("trained %s/%s, the default recipe is %s/%s", ck.Model.Family(), models.ArchOf(b), def.Family, def.Arch)
	}
	want, err := models.PresetConfig(def, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if k != "seed" && fmt.Sprint(cfg[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, the default recipe has %v", k, cfg[k], v)
		}
	}
	if !def.Default || def.Steps < 1 {
		t.Errorf("default preset %+v", def)
	}
}
