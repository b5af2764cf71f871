package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"

	"github.com/genstudio/genstudio/app"
	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/models/nn"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// benchSpec is one model the bench command can time: a variant of
// models.Specs under the name its report rows have always used.
type benchSpec struct {
	key, family, arch string // family/arch: the spec's canonical names
	conv              bool   // a conv model: fewer steps, and the convolution share is reported
	script            string // the PyTorch reference in the bench folder, if there is one
}

// benchScripts names the bench's models ("family" for the MLPs,
// "family/arch" otherwise, "ddpm/unet" as the U-Net always was) and their
// PyTorch references in the bench folder, in report order. The models
// themselves come from models.SpecOf.
var benchScripts = []struct{ key, script string }{
	{"gan", "torch_gan_mnist.py"},
	{"vae", "torch_vae_mnist.py"},
	{"ddpm", "torch_ddpm_mnist.py"},
	{"gan/conv", "torch_dcgan_mnist.py"},
	{"vae/conv", "torch_convvae_mnist.py"},
	{"ddpm/unet", "torch_unet_mnist.py"},
}

// specOfKey resolves a bench model name, "family" or "family/arch" (arch
// may be an alias), to its spec.
func specOfKey(key string) (models.Spec, error) {
	family, arch, _ := strings.Cut(key, "/")
	return models.SpecOf(family, arch)
}

// benchSpecOf returns the bench model that key names: a bench row's name,
// or any family/arch of models.Specs with its aliases (ddpm/conv and
// ddpm/unet are the same model, reported as ddpm/unet).
func benchSpecOf(key string) (benchSpec, error) {
	spec, err := specOfKey(key)
	if err != nil {
		var keys []string
		for _, b := range benchScripts {
			keys = append(keys, b.key)
		}
		return benchSpec{}, fmt.Errorf("bench: unknown model %q (have %s, or family/arch): %w", key, strings.Join(keys, ", "), err)
	}
	out := benchSpec{key: spec.Name(), family: spec.Family, arch: spec.Arch, conv: spec.Arch != "mlp"}
	for _, b := range benchScripts {
		if s, err := specOfKey(b.key); err == nil && s.Name() == spec.Name() {
			out.key, out.script = b.key, b.script
		}
	}
	return out, nil
}

// benchRun is one timed run of Gen Studio's step.
type benchRun struct {
	ms        float64 // ms per step
	gflop     float64 // GFLOP per step (3× rule, or the convolutions as run)
	convShare float64 // share of the time in convolution kernels (conv models)
}

// benchModel times steps training steps of a model's default configuration
// (the reference's shapes) on MNIST after warmup steps, like the PyTorch
// reference: batch drawing, noise and the whole update are inside the timing.
func benchModel(spec benchSpec, ds *project.Dataset, warmup, steps int) (benchRun, error) {
	// Start from a clean heap: what the previous model left (a U-Net's
	// hundreds of MB) would otherwise be collected during this one's timing.
	runtime.GC()
	debug.FreeOSMemory()
	cfg, err := models.DefaultConfig(spec.family, spec.arch)
	if err != nil {
		return benchRun{}, err
	}
	m, err := models.New(spec.family, cfg)
	if err != nil {
		return benchRun{}, err
	}
	defer m.Close()
	b, err := training.NewBatcher(ds, training.BatchSize(m), 0)
	if err != nil {
		return benchRun{}, err
	}
	src := rand.NewPCG(0, 0)
	var start time.Time
	for s := 0; s < warmup+steps; s++ {
		if s == warmup {
			nn.ResetConvStats()
			start = time.Now()
		}
		if _, err := m.TrainStep(b.Batch(s), training.StepRNG(src, 0, s)); err != nil {
			return benchRun{}, err
		}
	}
	total := time.Since(start)
	conv := nn.ReadConvStats()
	r := benchRun{ms: float64(total.Microseconds()) / 1000 / float64(steps)}
	if fc, ok := m.(models.FLOPCounter); ok && fc.StepFLOPs() > 0 {
		r.gflop = fc.StepFLOPs() / 1e9
	} else {
		r.gflop = conv.FLOPs / float64(steps) / 1e9
	}
	if spec.conv {
		r.convShare = conv.Time.Seconds() / total.Seconds()
	}
	return r, nil
}

// benchRunJSON is a benchRun as bench --one prints it.
type benchRunJSON struct {
	Ms, GFLOP, ConvShare float64
}

// benchFresh times a model like benchModel in a new process of this program.
func benchFresh(spec benchSpec, warmup, steps int) (benchRun, error) {
	exe, err := os.Executable()
	if err != nil {
		return benchRun{}, err
	}
	cmd := exec.Command(exe, "bench", "--fresh=false", "--one", "--torch=false", "--models", spec.key,
		"--warmup", fmt.Sprint(warmup), "--steps", fmt.Sprint(steps))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return benchRun{}, fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var r benchRunJSON
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return benchRun{}, fmt.Errorf("bench --one printed %q: %w", stdout.String(), err)
	}
	return benchRun{ms: r.Ms, gflop: r.GFLOP, convShare: r.ConvShare}, nil
}

// torchRun is what a reference script prints.
type torchRun struct {
	MsPerStep float64 `json:"ms_per_step"`
	GFLOPs    float64 `json:"gflops"`
}

// benchTorch runs a reference script and returns its result.
func benchTorch(script string, steps, warmup, threads int, env []string) (torchRun, error) {
	cmd := exec.Command("/usr/bin/python3", script, "--steps", fmt.Sprint(steps), "--warmup", fmt.Sprint(warmup), "--threads", fmt.Sprint(threads))
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Dir(script)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := bytes.TrimSpace(errOut.Bytes())
		if i := bytes.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return torchRun{}, fmt.Errorf("%s: %w: %s", script, err, msg)
	}
	var r torchRun
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil || r.MsPerStep <= 0 {
		return torchRun{}, fmt.Errorf("%s printed no JSON result: %v", script, err)
	}
	return r, nil
}

// gemmPeak measures the GFLOP/s of a square 1024 float32 GEMM on the BLAS
// the models use (the best of five rounds of at least 0.2 s each), the
// ceiling the "% of GEMM peak" column compares with.
func gemmPeak() float64 {
	const n = 1024
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range a {
		a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	impl := G.WhichBLAS()
	gemm := func() { impl.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, b, n, 0, c, n) }
	for i := 0; i < 3; i++ {
		gemm()
	}
	var rates []float64
	for round := 0; round < 5; round++ {
		calls, t0 := 0, time.Now()
		for time.Since(t0) < 200*time.Millisecond {
			gemm()
			calls++
		}
		rates = append(rates, 2*n*n*n*float64(calls)/time.Since(t0).Seconds()/1e9)
	}
	return slices.Max(rates)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchMachine describes where and what the bench ran.
type benchMachine struct {
	Date        string  `json:"date"`
	CPU         string  `json:"cpu"`
	CPUs        int     `json:"cpus"`
	BLAS        string  `json:"blas"`
	BLASThreads int     `json:"blas_threads"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Commit      string  `json:"commit,omitempty"`
	PeakGFLOPs  float64 `json:"gemm_peak_gflops"`
}

func describeMachine() benchMachine {
	m := benchMachine{Date: time.Now().Format("2006-01-02"), CPUs: runtime.NumCPU(), BLAS: nn.BLASName,
		BLASThreads: nn.BLASThreads(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPU: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		dirty := ""
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				m.Commit = s.Value[:min(7, len(s.Value))]
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+changes"
				}
			}
		}
		if m.Commit != "" {
			m.Commit += dirty
		}
	}
	if m.Commit == "" { // built with -buildvcs=false: ask git about the working directory
		if out, err := exec.Command("git", "rev-parse", "--short=7", "HEAD").Output(); err == nil {
			m.Commit = strings.TrimSpace(string(out))
			if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
				m.Commit += "+changes"
			}
		}
	}
	if m.Commit == "" {
		m.Commit = "unknown"
	}
	return m
}

// benchRow is one line of the table: a model's medians over the reps.
type benchRow struct {
	Model     string  `json:"model"`
	Steps     int     `json:"steps"`
	Reps      int     `json:"reps"`
	MsStep    float64 `json:"genstudio_ms_per_step"`
	TorchT1   float64 `json:"pytorch_t1_ms_per_step,omitempty"`
	TorchT2P  float64 `json:"pytorch_t2_passive_ms_per_step,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"` // Gen Studio / PyTorch's best
	GFLOPStep float64 `json:"gflop_per_step"`
	GFLOPs    float64 `json:"gflops"`
	PeakPct   float64 `json:"pct_of_gemm_peak"`
	TorchGF   float64 `json:"pytorch_best_gflops,omitempty"`
	ConvShare float64 `json:"conv_share,omitempty"`
	benchMachine
}

// cmdBench is the bench command; from the command line each of Gen
// Studio's runs gets a fresh process, as each PyTorch run does.
func cmdBench(args []string) error { return runBench(append([]string{"--fresh"}, args...), os.Stdout) }

// runBench is the bench command writing its report to out.
func runBench(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	steps := fs.Int("steps", 300, "timed steps per run of an MLP model")
	warmup := fs.Int("warmup", 20, "untimed steps before timing")
	convSteps := fs.Int("conv-steps", 20, "timed steps per run of a conv model")
	reps := fs.Int("reps", 1, "repetitions, interleaved with the references")
	ref := fs.String("ref", "../shared/bench", "folder of the PyTorch reference scripts")
	torch := fs.Bool("torch", true, "also run the PyTorch references when /usr/bin/python3 has torch")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	which := fs.String("models", "gan,vae,ddpm,gan/conv,vae/conv,ddpm/unet", "comma-separated models to measure: family or family/arch (ddpm/conv is ddpm/unet)")
	memory := fs.Int("memory", 0, "instead: train the first of --models this many steps and print memory every 1000")
	uiPeriod := fs.Duration("ui-period", 0, "with --ui: the least time between two window updates (0: the studio's own)")
	fresh := fs.Bool("fresh", false, "run each of Gen Studio's timed runs in a fresh process (the default from the command line): a model measured after another one inherits its heap and caches, which slowed the MLP DDPM by a quarter after the U-Net")
	one := fs.Bool("one", false, "internal (--fresh): time the one model of --models with --warmup and --steps and print the run as JSON")
	ui := fs.Bool("ui", false, "instead: train each of --models (default gan,vae) alternately headless and in the studio window (needs a display) and report the window's cost")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ui {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "models" })
		if !set {
			*which = "gan,vae"
		}
		return benchWindow(out, strings.Split(*which, ","), *steps, *warmup, max(*reps, 3), *uiPeriod, *asJSON)
	}
	var specs []benchSpec
	for _, k := range strings.Split(*which, ",") {
		s, err := benchSpecOf(strings.TrimSpace(k))
		if err != nil {
			return err
		}
		specs = append(specs, s)
	}
	if *steps < 1 || *convSteps < 1 || *reps < 1 || *warmup < 0 {
		return errors.New("bench: --steps, --conv-steps and --reps must be at least 1")
	}
	ds, err := project.LoadMNIST()
	if err != nil {
		return err
	}
	if *one {
		r, err := benchModel(specs[0], ds, *warmup, *steps)
		if err != nil {
			return err
		}
		return json.NewEncoder(out).Encode(benchRunJSON{r.ms, r.gflop, r.convShare})
	}
	if *memory > 0 {
		return benchMemory(out, specs[0], ds, *memory, min(1000, *memory))
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
	machine := describeMachine()
	peakBefore := gemmPeak()
	type samples struct {
		ours              []benchRun
		t1, t2p, t1f, t2f []float64
	}
	got := make([]samples, len(specs))
	for r := 0; r < *reps; r++ {
		for i, spec := range specs {
			n, w := *steps, *warmup
			if spec.conv {
				n, w = *convSteps, min(*warmup, 3)
			}
			if haveTorch && spec.script != "" {
				script := filepath.Join(*ref, spec.script)
				t1, err := benchTorch(script, n, w, 1, nil)
				if err != nil {
					return err
				}
				t2, err := benchTorch(script, n, w, 2, []string{"OMP_WAIT_POLICY=PASSIVE"})
				if err != nil {
					return err
				}
				got[i].t1, got[i].t2p = append(got[i].t1, t1.MsPerStep), append(got[i].t2p, t2.MsPerStep)
				got[i].t1f, got[i].t2f = append(got[i].t1f, t1.GFLOPs), append(got[i].t2f, t2.GFLOPs)
			}
			var run benchRun
			if *fresh {
				run, err = benchFresh(spec, w, n)
			} else {
				run, err = benchModel(spec, ds, w, n)
			}
			if err != nil {
				return fmt.Errorf("bench %s: %w", spec.key, err)
			}
			got[i].ours = append(got[i].ours, run)
		}
	}
	// A ceiling: the better of a measurement before and one after the runs.
	machine.PeakGFLOPs = max(peakBefore, gemmPeak())
	var rows []benchRow
	for i, spec := range specs {
		g := got[i]
		var ms, gf, conv []float64
		for _, r := range g.ours {
			ms, gf, conv = append(ms, r.ms), append(gf, r.gflop), append(conv, r.convShare)
		}
		row := benchRow{Model: spec.key, Steps: *steps, Reps: *reps, MsStep: median(ms), GFLOPStep: median(gf),
			ConvShare: median(conv), TorchT1: median(g.t1), TorchT2P: median(g.t2p), benchMachine: machine}
		if spec.conv {
			row.Steps = *convSteps
		}
		row.GFLOPs = row.GFLOPStep / row.MsStep * 1000
		row.PeakPct = 100 * row.GFLOPs / machine.PeakGFLOPs
		if best := bestPositive(row.TorchT1, row.TorchT2P); best > 0 {
			row.Ratio = row.MsStep / best
			row.TorchGF = max(median(g.t1f), median(g.t2f))
		}
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	printBenchTable(out, machine, rows, *torch && !haveTorch, *ref)
	return nil
}

// benchWindow measures what the studio window costs training (see
// app.BenchUI): reps pairs of a headless and a windowed run of each model.
func benchWindow(out io.Writer, families []string, steps, warmup, reps int, period time.Duration, asJSON bool) error {
	res, err := app.BenchUI(app.BenchUIOptions{Families: families, Steps: steps, Warmup: warmup, Reps: reps, UIPeriod: period, Log: os.Stderr})
	if err != nil {
		return err
	}
	m := describeMachine()
	if asJSON {
		enc := json.NewEncoder(out)
		for _, r := range res {
			if err := enc.Encode(struct {
				app.BenchUIResult
				benchMachine
			}{r, m}); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(out, "Gen Studio window cost, %s, commit %s: %s, %d CPUs; %s with %d threads\n\n",
		m.Date, m.Commit, m.CPU, m.CPUs, m.BLAS, m.BLASThreads)
	fmt.Fprintln(out, "| model | steps × reps | headless ms/step | window ms/step | overhead | overhead of each pair | UI threads' CPU share | window updates / frames per run | UI callback latency p99 (max) |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range res {
		var pairs, cpu, upd, lat []string
		for i, p := range r.PairOverheadPct {
			if i < len(r.UILatencyP99Ms) && i < len(r.UILatencyMaxMs) {
				lat = append(lat, fmt.Sprintf("%.1f (%.1f) ms", r.UILatencyP99Ms[i], r.UILatencyMaxMs[i]))
			}
			pairs = append(pairs, fmt.Sprintf("%+.1f%%", p))
			if i < len(r.UICPUPct) {
				cpu = append(cpu, fmt.Sprintf("%.1f%%", r.UICPUPct[i]))
			}
			if i < len(r.Updates) && i < len(r.Frames) {
				upd = append(upd, fmt.Sprintf("%d/%d", r.Updates[i], r.Frames[i]))
			}
		}
		fmt.Fprintf(out, "| %s | %d × %d | %.1f | %.1f | %+.1f%% | %s | %s | %s | %s |\n", r.Family, r.Steps, len(r.WindowMs),
			r.HeadlessMedian, r.WindowMedian, r.OverheadPct, strings.Join(pairs, " "), strings.Join(cpu, " "), strings.Join(upd, " "), strings.Join(lat, " "))
	}
	fmt.Fprintln(out, "\noverhead: the window's median ms/step over the headless median, minus 1; the runs alternate headless, window, ….")
	return nil
}

func bestPositive(a, b float64) float64 {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// printBenchTable writes the table as markdown, ready for the README.
func printBenchTable(w io.Writer, m benchMachine, rows []benchRow, torchMissing bool, ref string) {
	fmt.Fprintf(w, "Gen Studio bench, %s, commit %s: %s, %d CPUs; %s with %d threads, GOMAXPROCS %d\n",
		m.Date, m.Commit, m.CPU, m.CPUs, m.BLAS, m.BLASThreads, m.GOMAXPROCS)
	fmt.Fprintf(w, "GEMM peak (float32 1024×1024×1024 on this BLAS, best round before or after the runs): %.1f GFLOP/s\n\n", m.PeakGFLOPs)
	fmt.Fprintln(w, "| model | steps × reps | Gen Studio ms/step | PyTorch t1 | PyTorch t2-passive | ratio | GFLOP/step | GFLOP/s | % of GEMM peak | PyTorch GFLOP/s | conv share |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	opt := func(format string, v float64) string {
		if v <= 0 {
			return "–"
		}
		return fmt.Sprintf(format, v)
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d × %d | %.1f | %s | %s | %s | %.3f | %.1f | %.0f%% | %s | %s |\n",
			r.Model, r.Steps, r.Reps, r.MsStep, opt("%.1f", r.TorchT1), opt("%.1f", r.TorchT2P), opt("%.2f", r.Ratio),
			r.GFLOPStep, r.GFLOPs, r.PeakPct, opt("%.1f", r.TorchGF), opt("%.0f%%", 100*r.ConvShare))
	}
	fmt.Fprintln(w, "\nratio: Gen Studio ÷ PyTorch's best (the faster of --threads 1 and OMP_WAIT_POLICY=PASSIVE --threads 2).")
	fmt.Fprintln(w, "GFLOP/step: the 3× rule of the references for MLPs; for conv models, the convolutions as run.")
	if torchMissing {
		fmt.Fprintln(w, "(PyTorch references not run: /usr/bin/python3 with torch or", ref, "not found)")
	}
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
func benchMemory(w io.Writer, spec benchSpec, ds *project.Dataset, steps, every int) error {
	cfg, err := models.DefaultConfig(spec.family, spec.arch)
	if err != nil {
		return err
	}
	m, err := models.New(spec.family, cfg)
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
	fmt.Fprintf(w, "%-8s %10s %12s %12s %14s\n", "step", "RSS MiB", "heap MiB", "allocs/step", "KiB alloc/step")
	for s := 0; s < steps; s++ {
		if _, err := m.TrainStep(b.Batch(s), training.StepRNG(src, 0, s)); err != nil {
			return err
		}
		if (s+1)%every == 0 || s+1 == steps {
			runtime.ReadMemStats(&ms)
			n := float64(s + 1 - lastStep)
			fmt.Fprintf(w, "%-8d %10.1f %12.1f %12.0f %14.1f\n", s+1, rssMB(), float64(ms.HeapAlloc)/(1<<20),
				float64(ms.Mallocs-lastMallocs)/n, float64(ms.TotalAlloc-lastBytes)/n/1024)
			lastMallocs, lastBytes, lastStep = ms.Mallocs, ms.TotalAlloc, s+1
		}
	}
	return nil
}
