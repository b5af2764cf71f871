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
	memory := fs.Int("memory", 0, "instead: train the first of --models this many steps and print memory every 1000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ds, err := project.LoadMNIST()
	if err != nil {
		return err
	}
	if *memory > 0 {
		return benchMemory(strings.Split(*which, ",")[0], ds, *memory, min(1000, *memory))
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

// rssMB is the resident set size in MiB (Linux), or the Go runtime's
// obtained memory elsewhere.
func rssMB() float64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				var kb float64
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%f", &kb)
				return kb / 1024
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.Sys) / (1 << 20)
}

// benchMemory trains a family's default model for steps steps and prints
// resident memory, live heap and allocations per step every `every` steps,
// so that growth over a long run shows.
func benchMemory(family string, ds *project.Dataset, steps, every int) error {
	m, err := models.New(family, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	b, err := training.NewBatcher(ds, training.BatchSize(m), 0)
	if err != nil {
		return err
	}
	src := rand.NewPCG(0, 0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	lastMallocs, lastBytes, lastStep := ms.Mallocs, ms.TotalAlloc, 0
	fmt.Printf("%-8s %10s %12s %12s %14s\n", "step", "RSS MiB", "heap MiB", "allocs/step", "KiB alloc/step")
	for s := 0; s < steps; s++ {
		if _, err := m.TrainStep(b.Batch(s), training.StepRNG(src, 0, s)); err != nil {
			return err
		}
		if (s+1)%every == 0 || s+1 == steps {
			runtime.ReadMemStats(&ms)
			n := float64(s + 1 - lastStep)
			fmt.Printf("%-8d %10.1f %12.1f %12.0f %14.1f\n", s+1, rssMB(), float64(ms.HeapAlloc)/(1<<20),
				float64(ms.Mallocs-lastMallocs)/n, float64(ms.TotalAlloc-lastBytes)/n/1024)
			lastMallocs, lastBytes, lastStep = ms.Mallocs, ms.TotalAlloc, s+1
		}
	}
	return nil
}
