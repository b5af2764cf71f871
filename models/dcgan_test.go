package models_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
)

// tinyDCGANConfig is a fast DCGAN: 4 feature maps, batch 4.
func tinyDCGANConfig(side, channels int) models.DCGANConfig {
	c := models.DefaultDCGANConfig()
	c.Width, c.Height, c.Channels = side, side, channels
	c.GFeatures, c.DFeatures, c.Batch, c.Latent = 4, 4, 4, 16
	return c
}

func newDCGAN(t testing.TB, cfg models.DCGANConfig) *models.DCGAN {
	t.Helper()
	g, err := models.NewDCGAN(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// trainDCGAN runs steps on random images, each step with its own rng
// stream, as the training worker does.
func trainDCGAN(t testing.TB, g *models.DCGAN, steps int) [][]float64 {
	t.Helper()
	cfg := g.Config().(models.DCGANConfig)
	data := rand.New(rand.NewPCG(1, 2))
	var losses [][]float64
	for s := 0; s < steps; s++ {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(s)))
		l, err := g.TrainStep(randomBatch(data, cfg.Batch*g.Shape().Size()), rng)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, l)
	}
	return losses
}

func TestDCGANRegistry(t *testing.T) {
	if !slices.Contains(models.Architectures["gan"], "conv") {
		t.Fatalf("gan architectures %v lack conv", models.Architectures["gan"])
	}
	m, err := models.New("gan", []byte(`{"arch":"conv"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d, ok := m.(*models.DCGAN)
	if !ok {
		t.Fatalf("models.New built a %T", m)
	}
	if d.Config() != any(models.DefaultDCGANConfig()) {
		t.Fatalf("config %+v, want the defaults", d.Config())
	}
	if d.Family() != "gan" || d.NoiseDim() != 100 || d.Shape() != (models.ImageShape{Width: 28, Height: 28, Channels: 1}) {
		t.Fatalf("family %s, noise %d, shape %+v", d.Family(), d.NoiseDim(), d.Shape())
	}
	if n := d.ParamCount(); n >= 2_000_000 {
		t.Fatalf("%d parameters at the defaults", n)
	}
	m2, err := models.New("gan", []byte(`{"arch":"conv","width":32,"height":32,"channels":3,"g_features":8,"d_features":8,"batch":4}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if s := m2.Shape(); s != (models.ImageShape{Width: 32, Height: 32, Channels: 3}) {
		t.Fatalf("shape %+v", s)
	}
	// The MLP GAN is still the default architecture.
	m3, err := models.New("gan", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if _, ok := m3.(*models.GAN); !ok {
		t.Fatalf("a config without arch built a %T", m3)
	}
}

func TestDCGANConfigValidation(t *testing.T) {
	for name, mut := range map[string]func(*models.DCGANConfig){
		"arch":       func(c *models.DCGANConfig) { c.Arch = "mlp" },
		"latent":     func(c *models.DCGANConfig) { c.Latent = 0 },
		"side":       func(c *models.DCGANConfig) { c.Width, c.Height = 30, 30 },
		"small side": func(c *models.DCGANConfig) { c.Width, c.Height = 8, 8 },
		"not square": func(c *models.DCGANConfig) { c.Height = 32 },
		"channels":   func(c *models.DCGANConfig) { c.Channels = 2 },
		"g features": func(c *models.DCGANConfig) { c.GFeatures = 0 },
		"d features": func(c *models.DCGANConfig) { c.DFeatures = 1000 },
		"lr":         func(c *models.DCGANConfig) { c.LR = 0 },
		"beta":       func(c *models.DCGANConfig) { c.Beta1 = 1 },
		"batch":      func(c *models.DCGANConfig) { c.Batch = 0 },
		"slope":      func(c *models.DCGANConfig) { c.Slope = 1 },
		"memory":     func(c *models.DCGANConfig) { c.Batch, c.GFeatures = 4096, 512 },
	} {
		t.Run(name, func(t *testing.T) {
			c := models.DefaultDCGANConfig()
			mut(&c)
			if c.Validate() == nil {
				t.Fatal("Validate accepted it")
			}
			if _, err := models.NewDCGAN(c); err == nil {
				t.Fatal("bad config accepted")
			}
		})
	}
	for _, c := range []models.DCGANConfig{models.DefaultDCGANConfig(), tinyDCGANConfig(32, 3)} {
		if err := c.Validate(); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
	}
}

func TestDCGANSameSeedSameWeights(t *testing.T) {
	cfg := tinyDCGANConfig(28, 1)
	a, b := newDCGAN(t, cfg), newDCGAN(t, cfg)
	other := cfg
	other.Seed = 99
	c := newDCGAN(t, other)
	la, lb := trainDCGAN(t, a, 3), trainDCGAN(t, b, 3)
	trainDCGAN(t, c, 3)
	for i := range la {
		if !slices.Equal(la[i], lb[i]) {
			t.Fatalf("step %d: losses %v and %v with the same seed", i, la[i], lb[i])
		}
	}
	sa, sb, sc := a.State(), b.State(), c.State()
	differs := false
	for i := range sa {
		x, y, z := vals(sa[i]), vals(sb[i]), vals(sc[i])
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
}

func TestDCGANSampleShapeAndRange(t *testing.T) {
	for _, sh := range []struct{ side, channels int }{{28, 1}, {32, 3}} {
		t.Run(fmt.Sprintf("%dx%dx%d", sh.side, sh.side, sh.channels), func(t *testing.T) {
			g := newDCGAN(t, tinyDCGANConfig(sh.side, sh.channels))
			trainDCGAN(t, g, 2)
			size := sh.side * sh.side * sh.channels
			if g.Shape().Size() != size {
				t.Fatalf("shape %+v", g.Shape())
			}
			var first []float32
			for _, n := range []int{1, 64, 70} {
				out, err := g.Sample(models.NoiseFromSeed(n, g.NoiseDim(), 3))
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != n*size {
					t.Fatalf("n=%d: got %d values, want %d", n, len(out), n*size)
				}
				lo, hi := float32(1), float32(0)
				for _, v := range out {
					if !(v >= 0 && v <= 1) {
						t.Fatalf("sample value %v outside [0, 1]", v)
					}
					lo, hi = min(lo, v), max(hi, v)
				}
				if hi-lo < 1e-3 {
					t.Fatalf("n=%d: samples are constant (%v..%v)", n, lo, hi)
				}
				// Evaluation-mode batch norm: a sample does not depend on its
				// batch mates, so every n gives the same first image.
				if first == nil {
					first = out[:size]
				} else if !slices.Equal(first, out[:size]) {
					t.Fatalf("n=%d: the first sample changed with the number of samples", n)
				}
			}
			if _, err := g.Sample(make([]float32, g.NoiseDim()+1)); err == nil {
				t.Fatal("noise of the wrong length was accepted")
			}
		})
	}
}

func TestDCGANStateNames(t *testing.T) {
	g := newDCGAN(t, tinyDCGANConfig(28, 1))
	type entry struct {
		name       string
		shape      []int // as stored: fc weights in×out, written out×in
		transposed bool
	}
	params := []entry{
		{"generator.fc.weight", []int{16, 8 * 7 * 7}, true},
		{"generator.bn0.weight", []int{8}, false},
		{"generator.bn0.bias", []int{8}, false},
		{"generator.conv1.weight", []int{4, 8, 3, 3}, false},
		{"generator.bn1.weight", []int{4}, false},
		{"generator.bn1.bias", []int{4}, false},
		{"generator.conv2.weight", []int{1, 4, 3, 3}, false},
		{"generator.conv2.bias", []int{1}, false},
		{"discriminator.conv1.weight", []int{4, 1, 4, 4}, false},
		{"discriminator.conv1.bias", []int{4}, false},
		{"discriminator.conv2.weight", []int{8, 4, 4, 4}, false},
		{"discriminator.conv2.bias", []int{8}, false},
		{"discriminator.fc.weight", []int{8 * 7 * 7, 1}, true},
		{"discriminator.fc.bias", []int{1}, false},
	}
	buffers := []entry{
		{"generator.bn0.running_mean", []int{8}, false},
		{"generator.bn0.running_var", []int{8}, false},
		{"generator.bn1.running_mean", []int{4}, false},
		{"generator.bn1.running_var", []int{4}, false},
		{"generator.bn0.num_batches_tracked", []int{}, false},
		{"generator.bn1.num_batches_tracked", []int{}, false},
	}
	want := map[string]entry{}
	for _, e := range append(slices.Clone(params), buffers...) {
		want[e.name] = e
	}
	for _, e := range params {
		opt := "optim_d."
		if e.name[:10] == "generator." {
			opt = "optim_g."
		}
		for _, m := range []string{".exp_avg", ".exp_avg_sq"} {
			me := e
			me.name = opt + e.name + m
			want[me.name] = me
		}
	}
	state := g.State()
	names := make([]string, len(state))
	for i, s := range state {
		names[i] = s.Name
	}
	if len(state) != len(want) {
		t.Fatalf("%d state tensors %v, want %d", len(state), names, len(want))
	}
	seen := map[string]bool{}
	for _, s := range state {
		e, ok := want[s.Name]
		if !ok {
			t.Fatalf("unexpected state tensor %s", s.Name)
		}
		if seen[s.Name] {
			t.Fatalf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if !slices.Equal([]int(s.T.Shape()), e.shape) || s.Transposed != e.transposed {
			t.Fatalf("%s: shape %v transposed %t, want %v %t", s.Name, s.T.Shape(), s.Transposed, e.shape, e.transposed)
		}
	}
	// PyTorch's defaults: γ = 1, β = 0, running mean 0, running var 1.
	for _, s := range state {
		var want float32 = -1
		switch s.Name {
		case "generator.bn0.weight", "generator.bn1.weight", "generator.bn0.running_var", "generator.bn1.running_var":
			want = 1
		case "generator.bn0.bias", "generator.bn1.bias", "generator.bn0.running_mean", "generator.bn1.running_mean":
			want = 0
		}
		if want >= 0 {
			for _, v := range vals(s) {
				if v != want {
					t.Fatalf("%s starts at %v, want %v", s.Name, v, want)
				}
			}
		}
	}
	// Convolutions start uniform in ±1/sqrt(in·k·k), like nn.Conv2d.
	for _, s := range state {
		if s.T.Shape().Dims() != 4 || s.Name[:5] == "optim" {
			continue
		}
		sh := s.T.Shape()
		bound := 1 / math.Sqrt(float64(sh[1]*sh[2]*sh[3]))
		lo, hi := 0.0, 0.0
		for _, v := range vals(s) {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		if lo < -bound || hi > bound || hi-lo < bound/2 {
			t.Fatalf("%s spans %g..%g, want within ±%g", s.Name, lo, hi, bound)
		}
	}
}

// TestDCGANStateRestores copies one model's State into a fresh one (what a
// checkpoint does) and checks that both then sample and train identically:
// the state holds everything, running statistics and Adam moments included.
func TestDCGANStateRestores(t *testing.T) {
	cfg := tinyDCGANConfig(28, 1)
	a := newDCGAN(t, cfg)
	trainDCGAN(t, a, 3)
	b := newDCGAN(t, cfg)
	sa, sb := a.State(), b.State()
	for i := range sa {
		copyState(sb[i], sa[i])
	}
	b.SetOptimizerStep(a.OptimizerStep())
	z := models.NoiseFromSeed(5, cfg.Latent, 9)
	xa, _ := a.Sample(z)
	xb, _ := b.Sample(z)
	if !slices.Equal(xa, xb) {
		t.Fatal("restored model samples differently")
	}
	batch := randomBatch(rand.New(rand.NewPCG(4, 4)), cfg.Batch*784)
	la, err := a.TrainStep(batch, rand.New(rand.NewPCG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.TrainStep(batch, rand.New(rand.NewPCG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(la, lb) {
		t.Fatalf("next step losses %v vs %v", la, lb)
	}
	for i := range sa {
		if !slices.Equal(vals(sa[i]), vals(sb[i])) {
			t.Fatalf("%s differs after the next step", sa[i].Name)
		}
	}
}

// TestDCGANNonFiniteLoss: a diverged generator makes the D loss NaN; the
// step reports it and changes neither D nor the running statistics.
func TestDCGANNonFiniteLoss(t *testing.T) {
	cfg := tinyDCGANConfig(28, 1)
	g := newDCGAN(t, cfg)
	state := g.State()
	before := map[string][]float32{}
	for _, s := range state {
		before[s.Name] = slices.Clone(vals(s))
	}
	fc := state[0].T.Data().([]float32)
	fc[0] = float32(math.Inf(1))
	_, err := g.TrainStep(randomBatch(rand.New(rand.NewPCG(1, 1)), cfg.Batch*784), rand.New(rand.NewPCG(2, 2)))
	var nf *models.NonFiniteLossError
	if !errors.As(err, &nf) || nf.Name != "D loss" {
		t.Fatalf("err = %v, want a non-finite D loss", err)
	}
	for _, s := range state[1:] {
		if !slices.Equal(before[s.Name], vals(s)) {
			t.Fatalf("%s changed in the failed step", s.Name)
		}
	}
}

// TestDCGANLearnsMNIST trains a small DCGAN on real digits: the
// discriminator must soon beat chance (2·ln 2, its loss when it cannot tell
// real from fake) on average.
func TestDCGANLearnsMNIST(t *testing.T) {
	ds, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	ds = ds.Subset(480)
	cfg := models.DefaultDCGANConfig()
	cfg.GFeatures, cfg.DFeatures, cfg.Batch, cfg.Latent = 8, 8, 16, 32
	g := newDCGAN(t, cfg)
	const steps = 30
	var first, last float64
	var gl []float64
	batch := make([]uint8, 0, cfg.Batch*784)
	for s := 0; s < steps; s++ {
		batch = batch[:0]
		for i := 0; i < cfg.Batch; i++ {
			batch = append(batch, ds.Image((s*cfg.Batch+i)%ds.Len())...)
		}
		l, err := g.TrainStep(batch, rand.New(rand.NewPCG(cfg.Seed, uint64(s))))
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = l[0]
		}
		if s >= steps-10 {
			last += l[0] / 10
		}
		gl = append(gl, l[1])
	}
	t.Logf("D loss: first %.3f, mean of the last 10 %.3f (2 ln 2 = %.3f); G loss last %.3f", first, last, 2*math.Ln2, gl[len(gl)-1])
	if math.Abs(first-2*math.Ln2) > 0.3 {
		t.Fatalf("first D loss %.3f is far from 2 ln 2", first)
	}
	if last >= 2*math.Ln2-0.03 {
		t.Fatalf("D loss did not fall below 2 ln 2: mean of the last 10 steps %.3f", last)
	}
}

// BenchmarkDCGANStep measures one DCGAN training step at the defaults
// (batch 64, 28×28×1, 64 feature maps).
func BenchmarkDCGANStep(b *testing.B) {
	g := newDCGAN(b, models.DefaultDCGANConfig())
	data := rand.New(rand.NewPCG(1, 2))
	batch := randomBatch(data, 64*784)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3; i++ {
		if _, err := g.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}

// vals returns a state tensor's values as float32 (an int64 counter such
// as num_batches_tracked as one value).
func vals(nt models.NamedTensor) []float32 {
	switch d := nt.T.Data().(type) {
	case []float32:
		return d
	case int64:
		return []float32{float32(d)}
	}
	return nil
}

// copyState copies src's values into dst, as a checkpoint restore does.
func copyState(dst, src models.NamedTensor) {
	if d, ok := src.T.Data().(int64); ok {
		dst.T.Memset(d)
		return
	}
	copy(dst.T.Data().([]float32), src.T.Data().([]float32))
}
