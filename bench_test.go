package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
)

// TestBenchReports runs the bench command with a few steps and checks that
// every row it reports is complete and plausible: times, FLOP counts
// against the references' figures, the GEMM peak, the conv share, and the
// PyTorch columns when the references can run here. It asserts no speed.
func TestBenchReports(t *testing.T) {
	args := []string{"--steps", "2", "--warmup", "1", "--conv-steps", "1", "--models", "gan,vae,gan/conv", "--json"}
	torch := exec.Command("/usr/bin/python3", "-c", "import torch").Run() == nil
	if _, err := os.Stat("../shared/bench/torch_gan_mnist.py"); err != nil || testing.Short() {
		torch = false
	}
	if !torch {
		args = append(args, "--torch=false")
	}
	var out bytes.Buffer
	if err := runBench(args, &out); err != nil {
		t.Fatal(err)
	}
	rows := map[string]benchRow{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r benchRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		rows[r.Model] = r
	}
	if len(rows) != 3 {
		t.Fatalf("got rows %v, want gan, vae and gan/conv", rows)
	}
	want := map[string]float64{"gan": 2.2499, "vae": 0.2501}
	for name, r := range rows {
		if !(r.MsStep > 0) || math.IsInf(r.MsStep, 0) || !(r.GFLOPs > 0) || !(r.PeakGFLOPs > 0) || !(r.PeakPct > 0) {
			t.Errorf("%s: implausible row %+v", name, r)
		}
		if g, ok := want[name]; ok && math.Abs(r.GFLOPStep-g) > 1e-4 {
			t.Errorf("%s: %.4f GFLOP/step, want %.4f", name, r.GFLOPStep, g)
		}
		conv := name == "gan/conv"
		if conv != (r.ConvShare > 0) || r.ConvShare > 1 {
			t.Errorf("%s: conv share %.3f", name, r.ConvShare)
		}
		if conv && r.GFLOPStep < 1 {
			t.Errorf("%s: the convolutions counted only %.3f GFLOP/step", name, r.GFLOPStep)
		}
		hasTorch := r.TorchT1 > 0 && r.TorchT2P > 0 && r.Ratio > 0 && r.TorchGF > 0
		if hasTorch != torch {
			t.Errorf("%s: PyTorch columns %+v (references available: %v)", name, r, torch)
		}
	}

	// The table form has the columns the README shows.
	out.Reset()
	if err := runBench([]string{"--steps", "1", "--warmup", "0", "--models", "vae", "--torch=false"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"Gen Studio ms/step", "ratio", "GFLOP/s", "% of GEMM peak", "conv share", "GEMM peak", "| vae |"} {
		if !strings.Contains(out.String(), col) {
			t.Errorf("the table lacks %q:\n%s", col, out.String())
		}
	}
}

// TestBenchSpecOf: the bench takes its row names, any family/arch of
// models.Specs and their aliases; every variant has a row.
func TestBenchSpecOf(t *testing.T) {
	for in, want := range map[string]string{
		"gan": "gan", "gan/mlp": "gan", "vae": "vae", "ddpm": "ddpm", "gan/conv": "gan/conv",
		"vae/conv": "vae/conv", "ddpm/unet": "ddpm/unet", "ddpm/conv": "ddpm/unet",
	} {
		s, err := benchSpecOf(in)
		if err != nil || s.key != want || s.script == "" {
			t.Errorf("benchSpecOf(%q) = %+v, %v; want %s", in, s, err, want)
		}
		if spec, _ := models.SpecOf(s.family, s.arch); s.conv != (spec.Arch != "mlp") || spec.Arch != s.arch {
			t.Errorf("%s: %+v", in, s)
		}
	}
	for _, bad := range []string{"flow", "gan/unet", "vae/rnn"} {
		if _, err := benchSpecOf(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, spec := range models.Specs() {
		s, err := benchSpecOf(spec.Name())
		if err != nil || s.script == "" {
			t.Errorf("%s has no bench row: %+v %v", spec.Name(), s, err)
			continue
		}
		if _, err := os.Stat(filepath.Join("../shared/bench", s.script)); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	}
}
