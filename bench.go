package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// benchRow is one measured configuration.
type benchRow struct {
	Model   string  `json:"model"`
	Impl    string  `json:"impl"`
	Config  string  `json:"config"`
	MsStep  float64 `json:"ms_per_step"`
	Steps   int     `json:"steps"`
	Comment string  `json:"comment,omitempty"`
}

// benchModel times steps training steps of a family's default model (the
// reference's shapes) on MNIST after warmup steps, like the PyTorch
// reference: batch drawing, noise and the whole update are inside the timing.
func benchModel(family string, ds *project.Dataset, warmup, steps int) (float64, error) {
	m, err := models.New(family, nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	b, err := training.NewBatcher(ds, 64, 0)
	if err != nil {
		return 0, err
	}
	src := rand.NewPCG(0, 0)
	var start time.Time
	for s := 0; s < warmup+steps; s++ {
		if s == warmup {
			start = time.Now()
		}
		if _, err := m.TrainStep(b.Batch(s), training.StepRNG(src, 0, s)); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / float64(steps), nil
}

// benchTorch runs a reference script and returns its ms/step.
func benchTorch(script string, steps int, threads int, env []string) (float64, error) {
	cmd := exec.Command("/usr/bin/python3", script, "--steps", fmt.Sprint(steps), "--threads", fmt.Sprint(threads))
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Dir(script)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %w", script, err)
	}
	var r struct {
		MsPerStep float64 `json:"ms_per_step"`
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		return 0, fmt.Errorf("%s printed no JSON result: %w", script, err)
	}
	return r.MsPerStep, nil
}

func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	steps := fs.Int("steps", 300, "timed steps per run")
	warmup := fs.Int("warmup", 20, "untimed steps before timing")
	reps := fs.Int("reps", 1, "repetitions, interleaved with the references")
	ref := fs.String("ref", "../shared/bench", "folder of the PyTorch reference scripts")
	torch := fs.Bool("torch", true, "also run the PyTorch references when /usr/bin/python3 has torch")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	which := fs.String("models", "gan,vae,ddpm", "comma-separated families to measure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ds, err := project.LoadMNIST()
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(*ref); err == nil {
		*ref = abs
	}
	haveTorch := false
	if *torch {
		if _, err := os.Stat(filepath.Join(*ref, "torch_gan_mnist.py")); err == nil {
			haveTorch = exec.Command("/usr/bin/python3", "-c", "import torch").Run() == nil
		}
	}
	var rows []benchRow
	for r := 0; r < *reps; r++ {
		for _, fam := range strings.Split(*which, ",") {
			if haveTorch {
				script := filepath.Join(*ref, "torch_"+fam+"_mnist.py")
				for _, c := range []struct {
					name    string
					threads int
					env     []string
				}{{"t1", 1, nil}, {"t2-passive", 2, []string{"OMP_WAIT_POLICY=PASSIVE"}}} {
					ms, err := benchTorch(script, *steps, c.threads, c.env)
					if err != nil {
						return err
					}
					rows = append(rows, benchRow{Model: fam, Impl: "pytorch", Config: c.name, MsStep: ms, Steps: *steps})
				}
			}
			ms, err := benchModel(fam, ds, *warmup, *steps)
			if err != nil {
				return err
			}
			rows = append(rows, benchRow{Model: fam, Impl: "genstudio", Config: fmt.Sprintf("%s, GOMAXPROCS %d", models.BLASName, runtime.GOMAXPROCS(0)), MsStep: ms, Steps: *steps})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Printf("%-6s %-10s %-34s %10s\n", "model", "impl", "config", "ms/step")
	for _, r := range rows {
		fmt.Printf("%-6s %-10s %-34s %10.1f\n", r.Model, r.Impl, r.Config, r.MsStep)
	}
	if !haveTorch {
		fmt.Println("(PyTorch references not run: /usr/bin/python3 with torch or", *ref, "not found)")
	}
	return nil
}
