package models_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
)

var _ models.Model = (*models.ConvVAE)(nil)

// smallConvVAEConfig is a fast conv VAE: 4 and 8 feature maps, latent 8,
// batch 4, at the given image shape.
func smallConvVAEConfig(size, channels int) models.ConvVAEConfig {
	c := models.DefaultConvVAEConfig()
	c.Width, c.Height, c.Channels = size, size, channels
	c.Features, c.Latent, c.Batch = 4, 8, 4
	return c
}

func newConvVAE(t *testing.T, cfg models.ConvVAEConfig) *models.ConvVAE {
	t.Helper()
	v, err := models.NewConvVAE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// trainConvVAE makes training steps from..to-1 on random images, step s
// drawing its images and noise from streams seeded by s alone.
func trainConvVAE(t *testing.T, v *models.ConvVAE, from, to int) {
	t.Helper()
	cfg := v.Config().(models.ConvVAEConfig)
	n := cfg.Batch * v.Shape().Size()
	for s := from; s < to; s++ {
		data := rand.New(rand.NewPCG(1, uint64(s)))
		rng := rand.New(rand.NewPCG(2, uint64(s)))
		if _, err := v.TrainStep(randomBatch(data, n), rng); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConvVAEStateNames(t *testing.T) {
	v := newConvVAE(t, models.DefaultConvVAEConfig())
	params := []string{
		"encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight", "encoder.conv2.bias",
		"fc_mu.weight", "fc_mu.bias", "fc_logvar.weight", "fc_logvar.bias",
		"decoder.fc.weight", "decoder.fc.bias",
		"decoder.conv1.weight", "decoder.conv1.bias", "decoder.conv2.weight", "decoder.conv2.bias",
	}
	want := append([]string(nil), params...)
	for _, p := range params {
		want = append(want, "optim."+p+".exp_avg", "optim."+p+".exp_avg_sq")
	}
	var names []string
	shapes := map[string][]int{}
	for _, p := range v.State() {
		names = append(names, p.Name)
		shapes[p.Name] = p.T.Shape()
		if p.Transposed != (len(p.T.Shape()) == 2) {
			t.Errorf("%s: Transposed %v for shape %v", p.Name, p.Transposed, p.T.Shape())
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("state names %v\nwant %v", names, want)
	}
	// Convolutions as PyTorch stores them ([out, in, kh, kw]); linear
	// weights stored in×out, written out×in.
	for name, s := range map[string][]int{
		"encoder.conv1.weight": {32, 1, 4, 4}, "encoder.conv2.weight": {64, 32, 4, 4}, "encoder.conv2.bias": {64},
		"fc_mu.weight": {3136, 20}, "fc_logvar.bias": {20}, "decoder.fc.weight": {20, 3136},
		"decoder.conv1.weight": {32, 64, 3, 3}, "decoder.conv2.weight": {1, 32, 3, 3}, "decoder.conv2.bias": {1},
		"optim.decoder.conv1.weight.exp_avg": {32, 64, 3, 3},
	} {
		if !slices.Equal(shapes[name], s) {
			t.Errorf("%s has shape %v, want %v", name, shapes[name], s)
		}
	}
	total := 0
	for _, p := range v.Params() {
		total += p.T.Shape().TotalSize()
	}
	if total != 243465 {
		t.Fatalf("%d parameters, want 243,465", total)
	}
	if v.Family() != "vae" || v.NoiseDim() != 20 || !slices.Equal(v.LossNames(), []string{"loss", "recon", "KL"}) {
		t.Fatalf("family %q, noise dim %d, losses %v", v.Family(), v.NoiseDim(), v.LossNames())
	}
	if v.Shape() != (models.ImageShape{Width: 28, Height: 28, Channels: 1}) {
		t.Fatalf("shape %+v", v.Shape())
	}
}

func TestConvVAESameSeedSameWeights(t *testing.T) {
	cfg := smallConvVAEConfig(28, 1)
	a, b := newConvVAE(t, cfg), newConvVAE(t, cfg)
	cfg.Seed = 99
	c := newConvVAE(t, cfg)
	for _, v := range []*models.ConvVAE{a, b, c} {
		trainConvVAE(t, v, 0, 3)
	}
	if a.OptimizerStep() != 3 {
		t.Fatalf("optimizer step %d after 3 steps", a.OptimizerStep())
	}
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
}

// TestConvVAEStateRestores copies a trained model's State (weights and
// Adam moments) and step count into a fresh model: both must then train on
// identically, as after loading a checkpoint.
func TestConvVAEStateRestores(t *testing.T) {
	cfg := smallConvVAEConfig(28, 1)
	a := newConvVAE(t, cfg)
	trainConvVAE(t, a, 0, 3)
	cfg.Seed = 5 // different initial weights, all overwritten below
	b := newConvVAE(t, cfg)
	sb := b.State()
	for i, p := range a.State() {
		copy(sb[i].T.Data().([]float32), p.T.Data().([]float32))
	}
	b.SetOptimizerStep(a.OptimizerStep())
	trainConvVAE(t, a, 3, 5)
	trainConvVAE(t, b, 3, 5)
	for i, p := range a.State() {
		if !slices.Equal(p.T.Data().([]float32), sb[i].T.Data().([]float32)) {
			t.Fatalf("%s differs after continuing from the copied state", p.Name)
		}
	}
}

func TestConvVAESampleAndReconstruct(t *testing.T) {
	for _, sh := range []struct{ size, channels int }{{28, 1}, {32, 3}} {
		cfg := smallConvVAEConfig(sh.size, sh.channels)
		v := newConvVAE(t, cfg)
		trainConvVAE(t, v, 0, 2)
		n := v.Shape().Size()
		if n != sh.size*sh.size*sh.channels {
			t.Fatalf("shape %+v", v.Shape())
		}
		for _, k := range []int{1, 70} {
			out, err := v.Sample(models.NoiseFromSeed(k, v.NoiseDim(), 3))
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != k*n {
				t.Fatalf("%dx%dx%d sample k=%d: got %d values", sh.size, sh.size, sh.channels, k, len(out))
			}
			for _, x := range out {
				if !(x >= 0 && x <= 1) {
					t.Fatalf("sample value %v outside [0, 1]", x)
				}
			}
			rec, err := v.Reconstruct(randomBatch(rand.New(rand.NewPCG(5, 6)), k*n))
			if err != nil {
				t.Fatal(err)
			}
			if len(rec) != k*n {
				t.Fatalf("reconstruct k=%d: got %d values", k, len(rec))
			}
			for _, x := range rec {
				if !(x >= 0 && x <= 1) {
					t.Fatalf("reconstruction value %v outside [0, 1]", x)
				}
			}
		}
		// Deterministic, and independent of the chunk an image falls in up
		// to float32 rounding: the BLAS may round an element's last bit
		// differently at another row or column of a product.
		z := models.NoiseFromSeed(70, v.NoiseDim(), 3)
		a, _ := v.Sample(z)
		if again, _ := v.Sample(z); !slices.Equal(a, again) {
			t.Fatal("the same noise gave different samples")
		}
		b, _ := v.Sample(z[66*v.NoiseDim() : 68*v.NoiseDim()])
		for i, x := range b {
			if d := math.Abs(float64(x - a[66*n+i])); d > 1e-5 {
				t.Fatalf("value %d: %g in a chunk of 70, %g alone", i, a[66*n+i], x)
			}
		}
		imgs := randomBatch(rand.New(rand.NewPCG(5, 6)), 3*n)
		ra, _ := v.Reconstruct(imgs)
		if again, _ := v.Reconstruct(imgs); !slices.Equal(ra, again) {
			t.Fatal("reconstruction is not deterministic")
		}
		rb, _ := v.Reconstruct(imgs[n:])
		for i, x := range rb {
			if d := math.Abs(float64(x - ra[n+i])); d > 1e-5 {
				t.Fatalf("reconstruction value %d: %g, %g one image later", i, ra[n+i], x)
			}
		}
		if _, err := v.Sample(make([]float32, 7)); err == nil {
			t.Fatal("noise of the wrong length was accepted")
		}
		if _, err := v.Reconstruct(make([]uint8, 100)); err == nil {
			t.Fatal("a partial image was accepted")
		}
		if _, err := v.TrainStep(make([]uint8, 100), rand.New(rand.NewPCG(1, 1))); err == nil {
			t.Fatal("a batch of the wrong size was accepted")
		}
	}
}

func TestConvVAETemperature(t *testing.T) {
	cfg := smallConvVAEConfig(28, 1)
	v := newConvVAE(t, cfg)
	cfg.Temperature = 0.5
	u := newConvVAE(t, cfg)
	z := models.NoiseFromSeed(4, cfg.Latent, 8)
	half := make([]float32, len(z))
	for i := range z {
		half[i] = z[i] * 0.5
	}
	a, _ := v.Sample(half)
	b, _ := u.Sample(z)
	if !slices.Equal(a, b) {
		t.Fatal("temperature 0.5 on z differs from decoding z/2")
	}
}

func TestConvVAEKLWarmup(t *testing.T) {
	cfg := smallConvVAEConfig(28, 1)
	cfg.WarmupSteps, cfg.Beta = 4, 2
	v := newConvVAE(t, cfg)
	data := rand.New(rand.NewPCG(1, 2))
	rng := rand.New(rand.NewPCG(3, 4))
	for s := 0; s < 6; s++ {
		w := v.KLWeight()
		if want := cfg.Beta * math.Min(1, float64(s)/4); math.Abs(w-want) > 1e-12 {
			t.Fatalf("after %d steps the KL weight is %g, want %g", s, w, want)
		}
		l, err := v.TrainStep(randomBatch(data, cfg.Batch*784), rng)
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 && l[0] != l[1] {
			t.Fatalf("first step: loss %g, recon %g: the KL weight is not 0", l[0], l[1])
		}
		if want := l[1] + w*l[2]; math.Abs(l[0]-want) > 1e-5*want {
			t.Fatalf("step %d: loss %g, want recon + %g*KL = %g", s, l[0], w, want)
		}
	}
	v.SetOptimizerStep(1)
	if v.KLWeight() != 0.5 {
		t.Fatalf("KL weight %g at restored step 1, want 0.5", v.KLWeight())
	}
}

func TestConvVAENonFiniteLoss(t *testing.T) {
	v := newConvVAE(t, smallConvVAEConfig(28, 1))
	trainConvVAE(t, v, 0, 1)
	st := v.State()
	st[1].T.Data().([]float32)[0] = float32(math.NaN()) // encoder.conv1.bias
	before := make([][]float32, len(st))
	for i, p := range st {
		before[i] = append([]float32(nil), p.T.Data().([]float32)...)
	}
	_, err := v.TrainStep(randomBatch(rand.New(rand.NewPCG(1, 1)), 4*784), rand.New(rand.NewPCG(2, 2)))
	var nf *models.NonFiniteLossError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want a NonFiniteLossError", err)
	}
	for i, p := range st {
		for j, x := range p.T.Data().([]float32) {
			y := before[i][j]
			if x != y && !(x != x && y != y) {
				t.Fatalf("%s changed after a non-finite loss", p.Name)
			}
		}
	}
	if v.OptimizerStep() != 1 {
		t.Fatalf("optimizer step %d, want 1", v.OptimizerStep())
	}
}

func TestConvVAEConfigValidation(t *testing.T) {
	for name, mut := range map[string]func(*models.ConvVAEConfig){
		"arch":        func(c *models.ConvVAEConfig) { c.Arch = "mlp" },
		"zero latent": func(c *models.ConvVAEConfig) { c.Latent = 0 },
		"features":    func(c *models.ConvVAEConfig) { c.Features = 0 },
		"width":       func(c *models.ConvVAEConfig) { c.Width = 24 },
		"not square":  func(c *models.ConvVAEConfig) { c.Width = 32 },
		"channels":    func(c *models.ConvVAEConfig) { c.Channels = 2 },
		"lr":          func(c *models.ConvVAEConfig) { c.LR = 0 },
		"adam beta":   func(c *models.ConvVAEConfig) { c.Beta2 = 1 },
		"batch":       func(c *models.ConvVAEConfig) { c.Batch = 0 },
		"kl beta":     func(c *models.ConvVAEConfig) { c.Beta = -1 },
		"kl beta nan": func(c *models.ConvVAEConfig) { c.Beta = math.NaN() },
		"warmup":      func(c *models.ConvVAEConfig) { c.WarmupSteps = -1 },
		"temperature": func(c *models.ConvVAEConfig) { c.Temperature = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := models.DefaultConvVAEConfig()
			mut(&c)
			if _, err := models.NewConvVAE(c); err == nil {
				t.Fatal("bad config accepted")
			}
		})
	}
	for _, c := range []models.ConvVAEConfig{models.DefaultConvVAEConfig(), smallConvVAEConfig(32, 3)} {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	// Built without "arch", the model still reports itself as "conv".
	c := smallConvVAEConfig(28, 1)
	c.Arch = ""
	if got := newConvVAE(t, c).Config().(models.ConvVAEConfig).Arch; got != "conv" {
		t.Fatalf("config arch %q, want conv", got)
	}
}

func TestConvVAERegistry(t *testing.T) {
	if !slices.Contains(models.Architectures["vae"], "conv") {
		t.Fatalf("vae architectures %v lack conv", models.Architectures["vae"])
	}
	m, err := models.New("vae", []byte(`{"arch":"conv","features":4}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, ok := m.(*models.ConvVAE)
	if !ok {
		t.Fatalf("New(vae, conv) built a %T", m)
	}
	want := models.DefaultConvVAEConfig()
	want.Features = 4
	if v.Config() != want {
		t.Fatalf("config %+v, want the defaults with 4 features", v.Config())
	}
	// A config round-trips through JSON, as checkpoints store it.
	c := smallConvVAEConfig(32, 3)
	c.Beta, c.WarmupSteps, c.Temperature, c.Seed = 2.5, 100, 0.8, 42
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if models.ArchOf(b) != "conv" {
		t.Fatalf("arch of %s is %q", b, models.ArchOf(b))
	}
	m2, err := models.New("vae", b)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := m2.Config(); got != c {
		t.Fatalf("config %+v came back as %+v (JSON %s)", c, got, b)
	}
	if _, err := models.New("vae", []byte(`{"arch":"conv","width":30,"height":30}`)); err == nil {
		t.Fatal("a 30x30 conv VAE was built")
	}
}

// TestConvVAELearnsMNIST trains a small conv VAE (8 and 16 feature maps)
// for 40 steps of 32 on the first 2048 MNIST digits: the per-image loss
// starts near 784*ln 2 ≈ 543 and must fall clearly below it.
func TestConvVAELearnsMNIST(t *testing.T) {
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	d = d.Subset(2048)
	cfg := models.DefaultConvVAEConfig()
	cfg.Features, cfg.Batch = 8, 32
	v := newConvVAE(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	const steps = 40
	var perm []int
	buf := make([]uint8, 0, cfg.Batch*784)
	var first, last float64
	for s := 0; s < steps; s++ {
		if len(perm) < cfg.Batch {
			perm = rng.Perm(d.Len())
		}
		buf = buf[:0]
		for _, i := range perm[:cfg.Batch] {
			buf = append(buf, d.Image(i)...)
		}
		perm = perm[cfg.Batch:]
		l, err := v.TrainStep(buf, rng)
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = l[0]
		}
		if s >= steps-10 {
			last += l[0] / 10
		}
	}
	t.Logf("per-image loss: first step %.1f, mean of the last 10 steps %.1f", first, last)
	if math.Abs(first-543) > 40 {
		t.Errorf("first step's loss %.1f, want about 784*ln 2 = 543", first)
	}
	if last > 0.6*first {
		t.Errorf("loss after %d steps is %.1f, want < 60%% of the first (%.1f)", steps, last, first)
	}
}

// BenchmarkConvVAEStep measures one training step of the default conv VAE
// (28×28×1, 32 and 64 feature maps, latent 20, batch 64).
func BenchmarkConvVAEStep(b *testing.B) {
	v, err := models.NewConvVAE(models.DefaultConvVAEConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	data := rand.New(rand.NewPCG(1, 2))
	batch := randomBatch(data, 64*784)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5; i++ {
		if _, err := v.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.TrainStep(batch, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}
