package models_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// smallUNetConfig is an 8×8 U-Net with F = 4 that trains in milliseconds.
func smallUNetConfig() models.DDPMConfig {
	c := models.DefaultUNetDDPMConfig()
	c.Width, c.Height = 8, 8
	c.Features, c.TEmb, c.Batch = 4, 16, 4
	c.SampleSteps = 5
	return c
}

func TestUNetRegistryAndState(t *testing.T) {
	m, err := models.New("ddpm", []byte(`{"arch":"conv"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d, ok := m.(*models.DDPM)
	if !ok {
		t.Fatalf("built a %T", m)
	}
	cfg := d.Config().(models.DDPMConfig)
	if cfg != models.DefaultUNetDDPMConfig() || cfg.Arch != "conv" || cfg.Features != 32 {
		t.Fatalf("config %+v", cfg)
	}
	if !slices.Contains(models.Architectures["ddpm"], "conv") {
		t.Fatalf("architectures %v", models.Architectures["ddpm"])
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if models.ArchOf(b) != "conv" {
		t.Fatalf("config JSON %s does not name its architecture", b)
	}
	var back models.DDPMConfig
	if err := json.Unmarshal(b, &back); err != nil || back != cfg {
		t.Fatalf("config JSON %s round-trips to %+v (%v)", b, back, err)
	}
	// The MLP's JSON does not change: no "arch" or "features" keys.
	mb, _ := json.Marshal(models.DefaultDDPMConfig())
	if strings.Contains(string(mb), "arch") || strings.Contains(string(mb), "features") {
		t.Fatalf("MLP config JSON %s", mb)
	}

	st := d.State()
	params, names := 0, map[string]bool{}
	shapes := map[string][]int{}
	nw := len(st) / 3
	for i, nt := range st {
		if names[nt.Name] {
			t.Fatalf("state name %s twice", nt.Name)
		}
		names[nt.Name] = true
		shapes[nt.Name] = []int(nt.T.Shape())
		if i < nw {
			params += nt.T.Shape().TotalSize()
			// Linear weights are stored in×out and written out×in;
			// conv weights are [out, in, kh, kw] as they are.
			if nt.Transposed != (nt.T.Dims() == 2) {
				t.Fatalf("%s %v transposed=%v", nt.Name, nt.T.Shape(), nt.Transposed)
			}
			for k, suffix := range []string{".exp_avg", ".exp_avg_sq"} {
				m := st[nw+2*i+k]
				if m.Name != "optim."+nt.Name+suffix || !m.T.Shape().Eq(nt.T.Shape()) || m.Transposed != nt.Transposed {
					t.Fatalf("moment %s %v, want optim.%s%s %v", m.Name, m.T.Shape(), nt.Name, suffix, nt.T.Shape())
				}
			}
		}
	}
	for name, shape := range map[string][]int{
		"temb.0.weight":          {128, 128},
		"temb.2.bias":            {128},
		"inc.weight":             {32, 1, 3, 3},
		"down1.conv1.weight":     {32, 32, 3, 3},
		"down1.temb.weight":      {128, 32},
		"pool1.weight":           {64, 32, 3, 3},
		"mid.conv2.weight":       {64, 64, 3, 3},
		"up2.1.weight":           {64, 64, 3, 3},
		"dec2.conv1.weight":      {64, 128, 3, 3},
		"dec2.skip.weight":       {64, 128, 1, 1},
		"up1.1.weight":           {32, 64, 3, 3},
		"dec1.skip.bias":         {32},
		"out.weight":             {1, 32, 3, 3},
		"optim.out.bias.exp_avg": {1},
	} {
		if !slices.Equal(shapes[name], shape) {
			t.Errorf("%s has shape %v, want %v", name, shapes[name], shape)
		}
	}
	if names["down1.skip.weight"] || names["mid.skip.weight"] {
		t.Error("a ResBlock with equal channel counts has a skip conv")
	}
	t.Logf("U-Net parameters: %d", params)
	if params > 2_000_000 || params != 492449 {
		t.Fatalf("%d parameters; want 492,449 (at most 2 M)", params)
	}
	if d.NoiseDim() != 784 || d.Family() != "ddpm" || !slices.Equal(d.LossNames(), []string{"MSE"}) {
		t.Fatal("wrong noise size, family or loss names")
	}
	// The MLP stays the default architecture.
	m2, err := models.New("ddpm", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.State()[0].Name != "temb.weight" {
		t.Fatalf("default ddpm starts with %s", m2.State()[0].Name)
	}
}

func TestUNetConfigValidation(t *testing.T) {
	for _, arch := range []string{"", "mlp"} {
		c := models.DefaultDDPMConfig()
		c.Arch = arch
		if err := c.Validate(); err != nil {
			t.Fatalf("arch %q: %v", arch, err)
		}
	}
	for _, shape := range [][3]int{{28, 28, 1}, {32, 32, 3}, {8, 12, 2}} {
		c := models.DefaultUNetDDPMConfig()
		c.Width, c.Height, c.Channels = shape[0], shape[1], shape[2]
		if err := c.Validate(); err != nil {
			t.Fatalf("%v: %v", shape, err)
		}
	}
	// The U-Net ignores the MLP's width.
	c := models.DefaultUNetDDPMConfig()
	c.Hidden = 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*models.DDPMConfig){
		"arch":        func(c *models.DDPMConfig) { c.Arch = "transformer" },
		"features 0":  func(c *models.DDPMConfig) { c.Features = 0 },
		"features":    func(c *models.DDPMConfig) { c.Features = 129 },
		"odd width":   func(c *models.DDPMConfig) { c.Width = 30 },
		"odd height":  func(c *models.DDPMConfig) { c.Height = 7 },
		"too large":   func(c *models.DDPMConfig) { c.Width, c.Height = 128, 128 },
		"temb":        func(c *models.DDPMConfig) { c.TEmb = 3 },
		"sampler":     func(c *models.DDPMConfig) { c.Sampler = "euler" },
		"mlp width 0": func(c *models.DDPMConfig) { c.Arch, c.Hidden = "mlp", 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := models.DefaultUNetDDPMConfig()
			mut(&c)
			if _, err := models.NewDDPM(c); err == nil {
				t.Fatal("bad config accepted")
			}
		})
	}
}

func TestUNetSameSeedSameWeights(t *testing.T) {
	a := trainDDPM(t, smallUNetConfig(), 3)
	b := trainDDPM(t, smallUNetConfig(), 3)
	other := smallUNetConfig()
	other.Seed = 99
	c := trainDDPM(t, other, 3)
	sa, sb, sc := a.State(), b.State(), c.State()
	differs := false
	for i := range sa {
		x, y, z := sa[i].T.Data().([]float32), sb[i].T.Data().([]float32), sc[i].T.Data().([]float32)
		if !slices.Equal(x, y) {
			t.Fatalf("%s differs between two runs with the same seed", sa[i].Name)
		}
		if !slices.Equal(x, z) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("a different seed gave identical weights")
	}
	if a.OptimizerStep() != 3 {
		t.Fatalf("optimizer step %d after 3 steps", a.OptimizerStep())
	}
	z := models.NoiseFromSeed(3, a.NoiseDim(), 4)
	sa1, err := a.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	sb1, err := b.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sa1, sb1) {
		t.Fatal("same seed, same noise, different samples")
	}
}

// TestUNetSampleShapeAndRange samples 28×28×1 and 32×32×3 images with a
// few steps of each sampler, more than one graph chunk of them.
func TestUNetSampleShapeAndRange(t *testing.T) {
	for _, shape := range [][3]int{{28, 28, 1}, {32, 32, 3}} {
		c := models.DefaultUNetDDPMConfig()
		c.Width, c.Height, c.Channels = shape[0], shape[1], shape[2]
		c.Features, c.Batch, c.SampleSteps = 4, 2, 3
		d := newDDPM(t, c)
		n := d.NoiseDim()
		if _, err := d.TrainStep(randomBatch(rand.New(rand.NewPCG(1, 2)), c.Batch*n), rand.New(rand.NewPCG(3, 4))); err != nil {
			t.Fatal(err)
		}
		if n != shape[0]*shape[1]*shape[2] {
			t.Fatalf("%v: noise size %d", shape, n)
		}
		for _, opts := range []models.SampleOptions{
			{Sampler: models.SamplerDDPM, Steps: 2},
			{Sampler: models.SamplerDDIM, Steps: 2, Eta: 0.5},
		} {
			count := 66
			var ts []int
			out, err := d.SampleWith(models.NoiseFromSeed(count, n, 3), opts, nil, func(t int, x []float32) error {
				ts = append(ts, t)
				if len(x) != count*n {
					return errors.New("progress got a partial batch")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != count*n {
				t.Fatalf("%v %+v: got %d values", shape, opts, len(out))
			}
			for _, v := range out {
				if !(v >= -1 && v <= 1) {
					t.Fatalf("%v %+v: x_0 value %v outside [-1, 1]", shape, opts, v)
				}
			}
			if ts[0] != c.T || ts[len(ts)-1] != 0 {
				t.Fatalf("%v %+v: progress at t = %v", shape, opts, ts)
			}
		}
		// Rows are independent of the batch they are sampled in.
		opts := models.SampleOptions{Sampler: models.SamplerDDIM, Steps: 2}
		z := models.NoiseFromSeed(66, n, 5)
		s2, err := d.SampleWith(z[:2*n], opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		s66, err := d.SampleWith(z, opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range s2 {
			if math.Abs(float64(s2[i]-s66[i])) > 1e-5 {
				t.Fatalf("%v: image rows depend on the batch: %g vs %g", shape, s2[i], s66[i])
			}
		}
		img, err := d.Sample(models.NoiseFromSeed(2, n, 3))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range img {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("sample value %v outside [0, 1]", v)
			}
		}
		eps, err := d.PredictNoise(z[:3*n], 500)
		if err != nil || len(eps) != 3*n {
			t.Fatalf("PredictNoise: %d values, %v", len(eps), err)
		}
	}
}

func TestUNetNonFiniteLossKeepsWeights(t *testing.T) {
	c := smallUNetConfig()
	d := trainDDPM(t, c, 1)
	st := d.State()
	for _, nt := range st {
		if nt.Name == "mid.conv1.weight" {
			nt.T.Data().([]float32)[0] = float32(math.NaN())
		}
	}
	before := make([][]float32, len(st))
	for i, nt := range st {
		before[i] = slices.Clone(nt.T.Data().([]float32))
	}
	losses, err := d.TrainStep(randomBatch(rand.New(rand.NewPCG(5, 5)), c.Batch*d.NoiseDim()), rand.New(rand.NewPCG(6, 6)))
	var nf *models.NonFiniteLossError
	if !errors.As(err, &nf) || len(losses) != 1 || !math.IsNaN(losses[0]) {
		t.Fatalf("TrainStep returned %v, %v; want a NaN loss and a NonFiniteLossError", losses, err)
	}
	for i, nt := range st {
		after := nt.T.Data().([]float32)
		for j := range after {
			if math.Float32bits(after[j]) != math.Float32bits(before[i][j]) {
				t.Fatalf("%s[%d] changed in a diverged step", nt.Name, j)
			}
		}
	}
}

// TestUNetLossFallsOnMNIST trains a U-Net with F = 8 for 40 steps of 16
// MNIST digits: the MSE starts near 1 and falls well below it (1.0 to
// 0.44 when written).
func TestUNetLossFallsOnMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	mnist, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	data := mnist.Subset(512)
	c := models.DefaultUNetDDPMConfig()
	// A higher learning rate than the default 2e-4, so that 40 steps show
	// it (the default takes a few hundred at F = 32, batch 64).
	c.Features, c.Batch, c.LR = 8, 16, 1e-3
	d := newDDPM(t, c)
	pick := rand.New(rand.NewPCG(1, 2))
	const steps = 40
	batch := make([]uint8, c.Batch*784)
	var losses []float64
	for s := 0; s < steps; s++ {
		for i := 0; i < c.Batch; i++ {
			copy(batch[i*784:], data.Image(pick.IntN(data.Len())))
		}
		l, err := d.TrainStep(batch, rand.New(rand.NewPCG(7, uint64(s))))
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, l[0])
	}
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	first, last := mean(losses[:5]), mean(losses[steps-10:])
	t.Logf("MSE: first 5 steps %.4f, last 10 steps %.4f", first, last)
	if first < 0.8 || first > 1.3 {
		t.Fatalf("initial MSE %.4f, want ≈ 1", first)
	}
	if last > 0.6*first {
		t.Fatalf("MSE fell from %.4f to only %.4f in %d steps", first, last, steps)
	}
}

// unTorchUNet is the U-Net as a PyTorch module (the one unNet's doc
// comment describes). It loads a Gen Studio checkpoint with strict
// state_dict names and shapes, predicts the noise for the images in x.f32
// at the timesteps in t.i32 and prints the largest difference from
// expect.f32 as JSON, for each folder named on its command line; it exits
// 1 above 1e-5.
const unTorchUNet = `
import json, math, struct, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)

class ResBlock(nn.Module):
    def __init__(s, cin, cout, td):
        super().__init__()
        s.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        s.temb = nn.Linear(td, cout)
        s.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        s.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
    def forward(s, x, e):
        h = s.conv1(F.silu(x)) + s.temb(e)[:, :, None, None]
        h = s.conv2(F.silu(h))
        return (x if s.skip is None else s.skip(x)) + h

class UNet(nn.Module):
    def __init__(s, C, f, temb):
        super().__init__()
        s.tdim = temb
        s.temb = nn.Sequential(nn.Linear(temb, 4*f), nn.SiLU(), nn.Linear(4*f, 4*f))
        s.inc = nn.Conv2d(C, f, 3, padding=1)
        s.down1 = ResBlock(f, f, 4*f)
        s.pool1 = nn.Conv2d(f, 2*f, 3, stride=2, padding=1)
        s.down2 = ResBlock(2*f, 2*f, 4*f)
        s.pool2 = nn.Conv2d(2*f, 2*f, 3, stride=2, padding=1)
        s.mid = ResBlock(2*f, 2*f, 4*f)
        s.up2 = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2*f, 2*f, 3, padding=1))
        s.dec2 = ResBlock(4*f, 2*f, 4*f)
        s.up1 = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2*f, f, 3, padding=1))
        s.dec1 = ResBlock(2*f, f, 4*f)
        s.out = nn.Conv2d(f, C, 3, padding=1)
    def forward(s, x, t):
        half = s.tdim // 2
        fr = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        a = t.float()[:, None] * fr[None]
        e = F.silu(s.temb(torch.cat([torch.sin(a), torch.cos(a)], 1)))
        h1 = s.down1(s.inc(x), e)
        h2 = s.down2(s.pool1(h1), e)
        h = s.mid(s.pool2(h2), e)
        h = s.dec2(torch.cat([s.up2(h), h2], 1), e)
        h = s.dec1(torch.cat([s.up1(h), h1], 1), e)
        return s.out(F.silu(h))

worst = 0.0
for d in sys.argv[1:]:
    with open(d + "/model.safetensors", "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
        data = fh.read()
    cfg = json.loads(header["__metadata__"]["genstudio"])["config"]
    sd = {}
    for k, v in header.items():
        if k == "__metadata__" or k.startswith("optim."):
            continue
        a, b = v["data_offsets"]
        sd[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy().reshape(v["shape"]))
    m = UNet(cfg["channels"], cfg["features"], cfg["temb"])
    m.load_state_dict(sd, strict=True)
    x = torch.from_numpy(np.fromfile(d + "/x.f32", dtype="<f4")).reshape(-1, cfg["channels"], cfg["height"], cfg["width"])
    t = torch.from_numpy(np.fromfile(d + "/t.i32", dtype="<i4").astype(np.int64))
    with torch.no_grad():
        out = m(x, t)
    expect = torch.from_numpy(np.fromfile(d + "/expect.f32", dtype="<f4")).reshape(out.shape)
    diff = (out - expect).abs().max().item()
    worst = max(worst, diff)
    print(json.dumps({"shape": list(x.shape), "max_abs_diff": diff, "max_abs_eps": out.abs().max().item(), "tensors": len(sd)}))
sys.exit(0 if worst <= 1e-5 else 1)
`

// TestUNetMatchesPyTorch saves a briefly trained U-Net checkpoint, loads
// it into the PyTorch module above (every state_dict name and shape must
// match) and compares the predicted noise at 28×28×1 and 32×32×3. It runs
// where Debian's python3-torch is installed.
func TestUNetMatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PyTorch")
	}
	if exec.Command("/usr/bin/python3", "-c", "import torch").Run() != nil {
		t.Skip("/usr/bin/python3 has no torch")
	}
	var dirs []string
	for _, shape := range [][3]int{{28, 28, 1}, {32, 32, 3}} {
		c := models.DefaultUNetDDPMConfig()
		c.Width, c.Height, c.Channels = shape[0], shape[1], shape[2]
		c.Features, c.Batch = 8, 4
		d := newDDPM(t, c)
		n := d.NoiseDim()
		rng := rand.New(rand.NewPCG(1, 1))
		for s := 0; s < 3; s++ {
			if _, err := d.TrainStep(randomBatch(rng, c.Batch*n), rng); err != nil {
				t.Fatal(err)
			}
		}
		dir := t.TempDir()
		if err := training.SaveCheckpoint(filepath.Join(dir, "model.safetensors"), d, training.CheckpointInfo{Step: 3}); err != nil {
			t.Fatal(err)
		}
		x := models.NoiseFromSeed(3, n, 9)
		var xs, want []float32
		var ts []int32
		for _, tt := range []int{0, 37, 999} {
			eps, err := d.PredictNoise(x, tt)
			if err != nil {
				t.Fatal(err)
			}
			xs, want = append(xs, x...), append(want, eps...)
			ts = append(ts, int32(tt), int32(tt), int32(tt))
		}
		write := func(name string, v any) {
			b, err := binary.Append(nil, binary.LittleEndian, v)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("x.f32", xs)
		write("expect.f32", want)
		write("t.i32", ts)
		dirs = append(dirs, dir)
	}
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c", unTorchUNet}, dirs...)...).CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("PyTorch disagrees with Gen Studio: %v", err)
	}
}

// BenchmarkUNetDDPMStep measures one U-Net DDPM training step at the
// defaults (batch 64, 28×28×1, F = 32).
func BenchmarkUNetDDPMStep(b *testing.B) {
	d := newDDPM(b, models.DefaultUNetDDPMConfig())
	batch := randomBatch(rand.New(rand.NewPCG(1, 2)), 64*784)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2; i++ {
		if _, err := d.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/step")
}

// BenchmarkUNetDDPMSampleStep measures one network evaluation of the
// sampler on 64 images (DDIM, 10 steps per op).
func BenchmarkUNetDDPMSampleStep(b *testing.B) {
	d := newDDPM(b, models.DefaultUNetDDPMConfig())
	z := models.NoiseFromSeed(64, d.NoiseDim(), 1)
	opts := models.SampleOptions{Sampler: models.SamplerDDIM, Steps: 10}
	if _, err := d.SampleWith(z, opts, nil, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.SampleWith(z, opts, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*opts.Steps), "ms/eval")
}
