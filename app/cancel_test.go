package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// slowDiffusion is an untrained MLP DDPM whose 1,000-step chain takes a
// while to sample, saved as a checkpoint.
func slowDiffusion(t *testing.T) (models.Model, string) {
	t.Helper()
	c := models.DefaultDDPMConfig()
	c.Hidden, c.Batch, c.SampleSteps = 64, 4, 1000
	m, err := models.NewDDPM(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p := filepath.Join(t.TempDir(), "ddpm.safetensors")
	if err := training.SaveCheckpoint(p, m, training.CheckpointInfo{Step: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return m, p
}

// TestExportAndExploreCancel cancels the two jobs that sample a diffusion
// chain: a gallery export (nothing is left in its folder) and the Explore
// tab's grid.
func TestExportAndExploreCancel(t *testing.T) {
	s := newTestStudio(t)
	m, ck := slowDiffusion(t)
	dir := filepath.Join(t.TempDir(), "gallery")
	done := make(chan error, 1)
	ui(func() {
		s.model = m
		s.ExportGallery(dir, func(_ *training.Gallery, err error) { done <- err })
		if s.exportCancel == nil {
			t.Fatal("no cancel for the export")
		}
		s.exportCancel() // the dialog's Cancel
	})
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled export: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the cancelled export did not stop")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the cancelled export left %d files", len(left))
	}
	if !strings.Contains(s.status.Text, "cancelled") {
		t.Errorf("status %q", s.status.Text)
	}
	ui(func() { s.model = nil })

	p := s.explore
	ui(func() {
		addOption(p.source, ck)
		p.source.SetSelected(ck)
	})
	waitFor(t, "the grid's Cancel", func() bool { return p.info != nil && !p.stopBtn.Disabled() })
	tap(p.stopBtn)
	time.Sleep(300 * time.Millisecond)
	ui(func() {
		if p.gridProv != nil {
			t.Error("the cancelled grid was drawn")
		}
		if !strings.Contains(p.status.Text, "cancelled") || !p.stopBtn.Disabled() {
			t.Errorf("after Cancel: status %q, button enabled %v", p.status.Text, !p.stopBtn.Disabled())
		}
	})
}

// TestExportTorchJobFromTheWindow writes the form's MLP GAN, the default
// recipe, the U-Net and a GAN with remedies as PyTorch jobs.
func TestExportTorchJobFromTheWindow(t *testing.T) {
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	ui(func() { smallForm(s, "50") })
	dir := filepath.Join(t.TempDir(), "job")
	done := make(chan error, 1)
	ui(func() { s.ExportTorchJob(dir, func(err error) { done <- err }) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.py", "train.py", "job.json", "data/images.npy"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "job.json"))
	if !strings.Contains(string(b), `"g_hidden": [`) || !strings.Contains(string(b), `"Steps": 50`) {
		t.Errorf("job.json does not hold the form's settings:\n%s", b)
	}
	// The default recipe (a DCGAN) exports too.
	ui(func() { s.form.preset.SetSelected(models.DefaultPreset().Name) })
	ui(func() { s.ExportTorchJob(filepath.Join(t.TempDir(), "dcgan"), func(err error) { done <- err }) })
	if err := <-done; err != nil {
		t.Fatalf("exporting the default recipe: %v", err)
	}
	// So does the U-Net diffusion model, its residual blocks as modules.
	unet := filepath.Join(t.TempDir(), "unet")
	ui(func() { s.form.family.SetSelected(variants[variantIndex("ddpm", "conv")].Label) })
	ui(func() { s.ExportTorchJob(unet, func(err error) { done <- err }) })
	if err := <-done; err != nil {
		t.Fatalf("exporting the U-Net: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(unet, "model.py")); !strings.Contains(string(b), "self.down1 = ResBlock(") {
		t.Errorf("the U-Net's model.py:\n%s", b)
	}
	// And a GAN with the remedies for mode collapse, which the recipe carries.
	rem := filepath.Join(t.TempDir(), "remedies")
	ui(func() {
		s.form.family.SetSelected(variants[variantIndex("gan", "mlp")].Label)
		s.form.fill(variantIndex("gan", "mlp"), map[string]any{"diff_augment": true, "spectral_norm": true, "pack": 2})
	})
	ui(func() { s.ExportTorchJob(rem, func(err error) { done <- err }) })
	if err := <-done; err != nil {
		t.Fatalf("exporting a GAN with remedies: %v", err)
	}
	b, _ = os.ReadFile(filepath.Join(rem, "job.json"))
	if !strings.Contains(string(b), `"diff_augment": true`) || !strings.Contains(string(b), `"pack": 2`) {
		t.Errorf("job.json lacks the remedies:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(rem, "model.py")); !strings.Contains(string(b), "nn.utils.spectral_norm(nn.Linear(") {
		t.Errorf("the remedies' model.py:\n%s", b)
	}
}
