package training_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/models/nn"
	"github.com/genstudio/genstudio/training"
)

// The exported variants: every family and arch, small, with the settings
// the job carries.
var torchJobGANs = []struct{ name, family, config string }{
	{"gan-mlp", "gan", `{"g_hidden":[32,64],"d_hidden":[64,32],"batch":16,"ema":0.9,"lr_schedule":"cosine","clip":5}`},
	{"gan-conv", "gan", `{"arch":"conv","g_features":8,"d_features":8,"batch":16,"ema":0.9,"lr_schedule":"warmup","loss":"hinge","d_lr":4e-4}`},
	{"vae-mlp", "vae", `{"hidden":64,"latent":8,"batch":16,"ema":0.9,"kl_warmup_steps":10,"free_bits":0.1,"clip":5,"lr_schedule":"linear"}`},
	{"vae-conv", "vae", `{"arch":"conv","features":8,"latent":8,"batch":16,"ema":0.9,"kl_beta":2,"temperature":0.8}`},
	// The remedies for mode collapse the recipe carries: PacGAN, spectral
	// norm, the minibatch std, mode seeking and DiffAugment.
	{"gan-mlp-remedies", "gan", `{"g_hidden":[32,64],"d_hidden":[64,32],"batch":16,"pack":2,"spectral_norm":true,"minibatch_std":true,"ms_weight":1,"diff_augment":true}`},
	{"gan-conv-remedies", "gan", `{"arch":"conv","g_features":8,"d_features":8,"batch":16,"pack":2,"spectral_norm":true,"minibatch_std":true,"ms_weight":0.5,"loss":"lsgan","diff_augment":true}`},
	// The gradient penalties (R1, WGAN-GP), against PyTorch's double
	// backward.
	{"gan-mlp-penalties", "gan", `{"g_hidden":[32,64],"d_hidden":[64,32],"batch":16,"loss":"wgan","gp":10,"r1":1,"spectral_norm":true,"pack":2}`},
	{"gan-conv-penalties", "gan", `{"arch":"conv","g_features":8,"d_features":8,"batch":16,"loss":"wgan","gp":10,"r1":1,"diff_augment":true,"spectral_norm":true}`},
	{"ddpm-mlp", "ddpm", `{"t":100,"hidden":64,"temb":16,"batch":16,"ema":0.9,"classes":10,"label_dropout":0.2,"guidance":2,"sampler":"ddim","sample_steps":5,"lr_schedule":"cosine","clip":5}`},
	{"ddpm-conv", "ddpm", `{"arch":"conv","features":8,"t":100,"temb":16,"batch":16,"ema":0.9,"schedule":"cosine","sampler":"ddim","sample_steps":4,"eta":0,"temperature":0.9}`},
}

// requireTorchrun skips where torchrun is missing, except in CI.
func requireTorchrun(t *testing.T) string {
	t.Helper()
	requireTorch(t)
	p, err := exec.LookPath("torchrun")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("torchrun is missing (make test installs python3-torch)")
		}
		t.Skip("no torchrun")
	}
	return p
}

// pyJob runs Python code in the job folder (its train.py and model.py
// importable) and returns its stdout.
func pyJob(t *testing.T, job, code string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", code)
	cmd.Dir = job
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "PYTHONPATH="+job)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("python: %v\n%s", err, msg)
	}
	return string(out)
}

// npyHeader starts a .npy file of dtype descr and the given shape.
func npyHeader(descr, shape string) []byte {
	h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }"
	h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
	return append(append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8)), h...)
}

func npyFloat32(v []float32, rows, cols int) []byte {
	out := npyHeader("<f4", itoa(rows)+", "+itoa(cols))
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

func npyFloat64(v []float64, rows, cols int) []byte {
	out := npyHeader("<f8", itoa(rows)+", "+itoa(cols))
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(x))
	}
	return out
}

func npyInt64(v []int64) []byte {
	out := npyHeader("<i8", itoa(len(v))+",")
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, uint64(x))
	}
	return out
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestTorchJobRoundTrip exports a small MLP GAN project as a PyTorch job,
// trains it 20 steps with torchrun on two processes (gloo), then opens the
// run in Gen Studio: the newest checkpoint loads, samples and is evaluated,
// and training goes on 10 steps here in the same run folder, whose history
// then holds every step once.
func TestTorchJobRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("torchrun")
	}
	torchrun := requireTorchrun(t)
	for _, v := range torchJobGANs {
		t.Run(v.name, func(t *testing.T) { torchJobRoundTrip(t, torchrun, v.family, v.config) })
	}
}

func torchJobRoundTrip(t *testing.T, torchrun, family, config string) {
	m, err := models.New(family, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data := loadMNIST(t).Subset(512)
	job := t.TempDir()
	if err := training.ExportTorchJob(job, m, data, training.TorchJobOptions{Steps: 20, Seed: 7, PreviewEvery: 5,
		CheckpointEvery: 10, Name: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.py", "train.py", "job.json", "requirements.txt", "README.md", "slurm.sbatch",
		"k8s-job.yaml", "data/images.npy", "data/labels.npy"} {
		if st, err := os.Stat(filepath.Join(job, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(job, "train.py"))
	if strings.Contains(string(b), "genstudio") && strings.Contains(string(b), "import genstudio") {
		t.Error("the job imports Gen Studio")
	}
	run := filepath.Join(job, "runs", "first")
	// Debian's torch 1.13 under Python 3.11 needs explicit --redirects and --tee.
	cmd := exec.Command(torchrun, "--redirects", "1", "--tee", "1", "--standalone", "--nproc_per_node", "2",
		"train.py", "--steps", "20", "--out", run)
	cmd.Dir = job
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	var cfg struct{ Processes int }
	if b, err := os.ReadFile(filepath.Join(run, "config.json")); err != nil || json.Unmarshal(b, &cfg) != nil || cfg.Processes != 2 {
		t.Fatalf("config.json: %s (%v)", b, err)
	}
	s, err := training.SummarizeRun(run)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != training.RunFinished || s.Step != 20 || len(s.Checkpoints) != 2 || s.Family != family {
		t.Fatalf("the job's run: %+v", s)
	}
	if ps, _ := training.ListPreviews(filepath.Join(run, training.SamplesFolder)); len(ps) != 5 {
		t.Errorf("%d previews, want 5 (steps 0, 5, 10, 15, 20)", len(ps))
	}
	ckPath := filepath.Join(run, training.CkptFolder, training.CheckpointName(20))
	ck, err := training.LoadCheckpoint(ckPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Model.Close()
	if ck.Info.Step != 20 || ck.Info.OptStep != 20 || ck.Info.Run == nil || ck.Info.Run.Steps != 20 {
		t.Fatalf("checkpoint info %+v", ck.Info)
	}
	ev, err := training.MNISTEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	r, err := training.EvaluateModel(context.Background(), ck.Model, nil, training.EvalOptions{N: 256, Seed: 1, Evaluator: ev, Train: loadMNIST(t)})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(r.FID) || r.N != 256 {
		t.Fatalf("evaluation of the job's checkpoint: %+v", r)
	}
	// Go on here for 10 steps, in the same run folder.
	o := training.Options{Steps: 30, StartStep: ck.Info.Step, Seed: ck.Info.Seed, PreviewEvery: 5, CheckpointSteps: 10,
		RunDir: run, PreviewDir: filepath.Join(run, training.SamplesFolder), CheckpointDir: filepath.Join(run, training.CkptFolder),
		MetricsPath: filepath.Join(run, training.MetricsFile)}
	w, err := training.NewWorker(ck.Model, data, o)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	if _, _, _, done := drain(w); done.Err != nil || done.Step != 30 {
		t.Fatalf("training on here: step %d, %v", done.Step, done.Err)
	}
	recs, err := training.ReadMetrics(filepath.Join(run, training.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 30 {
		t.Fatalf("%d metrics lines, want 30", len(recs))
	}
	for i, rec := range recs {
		if rec.Step != i+1 || len(rec.Losses) != len(m.LossNames()) || !(rec.LR > 0) {
			t.Fatalf("metrics line %d: %+v", i, rec)
		}
	}
	if s, _ := training.SummarizeRun(run); s.State != training.RunFinished || s.Step != 30 || len(s.Checkpoints) != 3 {
		t.Fatalf("after training on: %+v", s)
	}
}

// TestTorchJobForwardAndStep: the exported model.py computes Gen Studio's
// generator output on the same weights and noise (within 1e-4), and one
// step of the exported recipe from a Gen Studio checkpoint gives Gen
// Studio's next-step losses (within 1e-3) on the same batch and noise.
func TestTorchJobForwardAndStep(t *testing.T) {
	requireTorch(t)
	for _, v := range torchJobGANs {
		t.Run(v.name, func(t *testing.T) {
			// The MLP's dropout draws its masks from each side's own generator.
			cfg := v.config
			if strings.HasPrefix(v.name, "gan-mlp") {
				cfg = strings.Replace(cfg, `"batch":16`, `"batch":16,"dropout":0`, 1)
			}
			torchJobForwardAndStep(t, v.family, cfg)
		})
	}
}

func torchJobForwardAndStep(t *testing.T, family, cfg string) {
	m, err := models.New(family, []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data := loadMNIST(t).Subset(64)
	n := data.ImageSize()
	batch := func(k int) []uint8 { return data.Pixels[k*16*n : (k+1)*16*n] }
	tr := m
	for k := 0; k < 3; k++ { // Adam's moments and the average are not zero
		if _, err := tr.TrainStep(batch(k), rand.New(rand.NewPCG(uint64(k), 9))); err != nil {
			t.Fatal(err)
		}
	}
	job := t.TempDir()
	if err := training.ExportTorchJob(job, m, data, training.TorchJobOptions{Steps: 10, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(job, "ck.safetensors")
	if err := training.SaveCheckpoint(ck, m, training.CheckpointInfo{Step: 3}); err != nil {
		t.Fatal(err)
	}
	// The forward pass: Sample draws from G's weight average (and the
	// running batch-norm statistics), and so does model.py given them.
	dim := m.NoiseDim()
	z := make([]float32, 8*dim)
	models.FillNormal(z, rand.New(rand.NewPCG(5, 5)))
	os.WriteFile(filepath.Join(job, "z.npy"), npyFloat32(z, 8, dim), 0o644)
	got, err := m.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(job, "want.npy"), npyFloat32(got, 8, n), 0o644)
	const trainer = `
import json, numpy as np, torch, train
job = json.load(open("job.json"))
tr = train.TRAINERS[job["family"]](job, torch.device("cpu"), 1, 0)
t, meta = train.read_safetensors("ck.safetensors")
tr.load_state(t, json.loads(meta["genstudio"])["opt_step"])
`
	out := pyJob(t, job, trainer+`
x = tr.sample(torch.from_numpy(np.load("z.npy")))
print(float(np.abs(x - np.load("want.npy")).max()))
`)
	if d, err := parseFloat(out); err != nil || d > 1e-4 {
		t.Errorf("model.py's samples differ from Gen Studio's by %s", out)
	}
	t.Logf("samples: largest difference %s", strings.TrimSpace(out))

	if d, ok := m.(*models.DDPM); ok {
		torchJobDenoiser(t, job, trainer, d, z)
	}

	// One step: the same batch and noise on both sides.
	rng := rand.New(rand.NewPCG(77, 1))
	z16 := make([]float32, 16*dim)
	noise := `torch.from_numpy(np.load("z16.npy"))`
	var want []float64
	if d, ok := m.(*models.DDPM); ok {
		// TrainStepLabels draws the timesteps, then ε, then the label
		// dropout; train.py's step takes them as they came out.
		c := d.Config().(models.DDPMConfig)
		draw := rand.New(rand.NewPCG(77, 1))
		ts, lab := make([]int64, 16), make([]int64, 16)
		for i := range ts {
			ts[i] = int64(draw.IntN(c.T))
		}
		models.FillNormal(z16, draw)
		labels := data.Labels[48:64]
		for i := range lab {
			lab[i] = -1
			if c.Classes > 0 && draw.Float64() >= c.LabelDropout {
				lab[i] = int64(labels[i])
			}
		}
		os.WriteFile(filepath.Join(job, "ts.npy"), npyInt64(ts), 0o644)
		os.WriteFile(filepath.Join(job, "lab.npy"), npyInt64(lab), 0o644)
		noise = `(torch.from_numpy(np.load("ts.npy")), ` + noise + `, torch.from_numpy(np.load("lab.npy")))`
		want, err = d.TrainStepLabels(batch(3), labels, rng)
	} else {
		// TrainStep's first draw: z, or the VAE's eps; then WGAN-GP's ε.
		draw := rand.New(rand.NewPCG(77, 1))
		models.FillNormal(z16, draw)
		extra := ""
		if strings.Contains(cfg, `"gp":`) {
			eps := make([]float64, 16)
			for i := range eps {
				eps[i] = draw.Float64()
			}
			os.WriteFile(filepath.Join(job, "eps.npy"), npyFloat64(eps, 16, 1), 0o644)
			extra += `, "eps": torch.from_numpy(np.load("eps.npy")).view(-1)`
		}
		if strings.Contains(cfg, `"diff_augment":true`) {
			extra += `, "augs": list(torch.from_numpy(np.load("aug.npy")).view(3, 16, 7))`
			os.WriteFile(filepath.Join(job, "aug.npy"), npyFloat64(diffAugmentDraws(m, 3, 16), 3*16, 7), 0o644)
		}
		if extra != "" {
			noise = `{"z": ` + noise + extra + "}"
		}
		want, err = tr.TrainStep(batch(3), rng)
	}
	if err != nil {
		t.Fatal(err)
	}
	real := make([]float32, 16*n)
	for i, p := range batch(3) {
		real[i] = float32(p)/127.5 - 1
		if family == "vae" {
			real[i] = float32(p) / 255
		}
	}
	os.WriteFile(filepath.Join(job, "real.npy"), npyFloat32(real, 16, n), 0o644)
	os.WriteFile(filepath.Join(job, "z16.npy"), npyFloat32(z16, 16, dim), 0o644)
	out = pyJob(t, job, trainer+`
losses, lr = tr.step(torch.from_numpy(np.load("real.npy")), `+noise+`, 3, 0)
print(json.dumps(losses))
`)
	var gotL []float64
	if err := json.Unmarshal([]byte(out), &gotL); err != nil || len(gotL) != len(want) {
		t.Fatalf("train.py's step printed %q", out)
	}
	for i, name := range m.LossNames() {
		if math.Abs(gotL[i]-want[i]) > 1e-3*max(1, math.Abs(want[i])) {
			t.Errorf("%s: train.py %.6f, Gen Studio %.6f", name, gotL[i], want[i])
		}
	}
	t.Logf("next step: Gen Studio %v, train.py %v", want, gotL)
}

// diffAugmentDraws replays the DiffAugment parameters a GAN's TrainStep
// draws at optimizer step (0-based) for its three augmentations of b
// images (D's real batch, D's fakes, G's fakes): the stream the model
// reseeds each step (models/ganloss.go, augmenters.next), in order.
func diffAugmentDraws(m models.Model, step, b int) []float64 {
	var c struct{ Seed uint64 }
	cb, _ := json.Marshal(m.Config())
	json.Unmarshal(cb, &c)
	rng := rand.New(rand.NewPCG(c.Seed, 0xd1ffa06^(uint64(step)*0x9e3779b97f4a7c15)))
	sh := m.Shape()
	var out []float64
	for range 3 {
		for _, d := range nn.NewAugment(b, sh.Channels, sh.Height, sh.Width, rng).Draws() {
			out = append(out, d.Bright, d.Sat, d.Con, float64(d.DX), float64(d.DY), float64(d.CX), float64(d.CY))
		}
	}
	return out
}

// torchJobDenoiser checks the exported noise predictor and the ancestral
// sampler: ε_θ of the live weights at two timesteps, with and without a
// label, and a 5-step ancestral chain given the same per-step noise.
func torchJobDenoiser(t *testing.T, job, trainer string, d *models.DDPM, z []float32) {
	n := d.NoiseDim()
	c := d.Config().(models.DDPMConfig)
	for _, ts := range []int{0, c.T - 1} {
		want, err := d.PredictNoise(z, ts)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(job, "want.npy"), npyFloat32(want, 8, n), 0o644)
		out := pyJob(t, job, trainer+`
x = torch.from_numpy(np.load("z.npy"))
ts = torch.full((8,), `+itoa(ts)+`, dtype=torch.int64)
e = train.eps_net(tr.model, x, tr.embedding(ts, torch.full_like(ts, -1)), job["shape"])
print(float(np.abs(e.detach().numpy() - np.load("want.npy")).max()))
`)
		if v, err := parseFloat(out); err != nil || v > 1e-4 {
			t.Errorf("t = %d: train.py's ε differs from Gen Studio's by %s", ts, out)
		}
		t.Logf("ε at t = %d: largest difference %s", ts, strings.TrimSpace(out))
	}
	// The ancestral sampler, 5 respaced steps, with the noise Gen Studio
	// draws (4 steps draw 8 images' worth each).
	opts := d.DefaultSampleOptions()
	opts.Sampler, opts.Steps = models.SamplerDDPM, 5
	want, err := d.SampleWith(z, opts, rand.New(rand.NewPCG(3, 3)), nil)
	if err != nil {
		t.Fatal(err)
	}
	draw := rand.New(rand.NewPCG(3, 3))
	noises := make([]float32, 4*len(z))
	models.FillNormal(noises, draw)
	os.WriteFile(filepath.Join(job, "noises.npy"), npyFloat32(noises, 4*8, n), 0o644)
	os.WriteFile(filepath.Join(job, "want.npy"), npyFloat32(want, 8, n), 0o644)
	out := pyJob(t, job, trainer+`
tr.cfg["sampler"], tr.cfg["sample_steps"] = "ddpm", 5
x = tr.sample(torch.from_numpy(np.load("z.npy")), list(torch.from_numpy(np.load("noises.npy")).view(4, 8, -1)))
print(float(np.abs(x * 2 - 1 - np.load("want.npy")).max()))
`)
	if v, err := parseFloat(out); err != nil || v > 1e-3 {
		t.Errorf("the ancestral sampler: train.py's samples differ from Gen Studio's by %s", out)
	}
	t.Logf("ancestral sampler: largest difference %s", strings.TrimSpace(out))
}

func parseFloat(s string) (float64, error) {
	var f float64
	err := json.Unmarshal([]byte(strings.TrimSpace(s)), &f)
	return f, err
}
