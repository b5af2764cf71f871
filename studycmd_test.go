package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

func TestStudyConfig(t *testing.T) {
	b, err := studyConfig("gan", "mlp", "hinge+ttur", 7)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["loss"] != "hinge" || cfg["d_lr"] != 4e-4 || cfg["lr"] != 1e-4 || cfg["beta1"] != 0.0 || cfg["seed"] != 7.0 {
		t.Errorf("hinge+ttur config: %v", cfg)
	}
	b, _ = studyConfig("gan", "conv", "plain", 1)
	json.Unmarshal(b, &cfg)
	if cfg["loss"] != "ns" || cfg["arch"] != "conv" {
		t.Errorf("plain DCGAN config: %v", cfg)
	}
	if _, err := studyConfig("gan", "mlp", "unrolled", 1); err == nil || !strings.Contains(err.Error(), "unknown technique") {
		t.Errorf("an unknown technique: %v", err)
	}
	if _, err := studyConfig("vae", "mlp", "hinge", 1); err == nil {
		t.Error("a GAN loss was applied to a VAE")
	}
}

func TestMeanStd(t *testing.T) {
	m, s := meanStd([]float64{1, 2, 3, 4})
	if m != 2.5 || math.Abs(s-math.Sqrt(5.0/3)) > 1e-12 {
		t.Errorf("mean %v std %v", m, s)
	}
	if m, s := meanStd([]float64{3}); m != 3 || s != 0 {
		t.Errorf("one value: %v ± %v", m, s)
	}
}

// TestStudySmoke runs the study command end to end on a few steps.
func TestStudySmoke(t *testing.T) {
	if err := cmdStudy([]string{"--techniques", "plain,lsgan", "--steps", "3", "--seeds", "2", "--n", "256", "--json"}); err != nil {
		t.Fatal(err)
	}
}

// TestLabCommand runs the lab protocol headless on a few steps, with
// per-seed JSON lines and the samples CSV.
func TestLabCommand(t *testing.T) {
	out := t.TempDir() + "/s.csv"
	if err := cmdLab([]string{"--data", "grid25", "--technique", "plain,recommended", "--seeds", "2", "--steps", "20", "--json", "--samples-out", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != 1+2*2*2500 {
		t.Errorf("samples CSV has %d lines, want a header and 10,000 rows", lines)
	}
	if err := cmdLab([]string{"--data", "spiral"}); err == nil {
		t.Error("an unknown data set was accepted")
	}
}
