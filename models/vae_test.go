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

var _ models.Model = (*models.VAE)(nil)

func smallVAEConfig() models.VAEConfig {
	c := models.DefaultVAEConfig()
	c.Hidden, c.Latent, c.Batch = 48, 8, 16
	return c
}

func trainVAE(t *testing.T, cfg models.VAEConfig, steps int) *models.VAE {
	t.Helper()
	v, err := models.NewVAE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := rand.New(rand.NewPCG(1, 2))
	for s := 0; s < steps; s++ {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(s)))
		if _, err := v.TrainStep(randomBatch(data, cfg.Batch*cfg.Width*cfg.Height), rng); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func TestVAEStateNames(t *testing.T) {
	v, err := models.NewVAE(models.DefaultVAEConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var names []string
	shapes := map[string][]int{}
	for _, p := range v.State() {
		names = append(names, p.Name)
		shapes[p.Name] = p.T.Shape()
		if p.Transposed != (len(p.T.Shape()) == 2) {
			t.Errorf("%s: Transposed %v for shape %v", p.Name, p.Transposed, p.T.Shape())
		}
	}
	params := []string{"fc1.weight", "fc1.bias", "fc21.weight", "fc21.bias", "fc22.weight", "fc22.bias",
		"fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias"}
	want := append([]string(nil), params...)
	for _, p := range params {
		want = append(want, "optim."+p+".exp_avg", "optim."+p+".exp_avg_sq")
	}
	if !slices.Equal(names, want) {
		t.Fatalf("state names %v\nwant %v", names, want)
	}
	// Stored in×out; checkpoints write PyTorch's out×in.
	for name, s := range map[string][]int{"fc1.weight": {784, 400}, "fc21.weight": {400, 20}, "fc4.weight": {400, 784}, "fc4.bias": {784}} {
		if !slices.Equal(shapes[name], s) {
			t.Errorf("%s has shape %v, want %v", name, shapes[name], s)
		}
	}
	total := 0
	for _, p := range v.State()[:len(params)] {
		total += p.T.Shape().TotalSize()
	}
	if total != 652824 {
		t.Fatalf("%d parameters, the reference has 652,824", total)
	}
	if v.Family() != "vae" || v.NoiseDim() != 20 || !slices.Equal(v.LossNames(), []string{"loss", "recon", "KL"}) {
		t.Fatalf("family %q, noise dim %d, losses %v", v.Family(), v.NoiseDim(), v.LossNames())
	}
	if _, ok := v.Config().(models.VAEConfig); !ok {
		t.Fatalf("Config() is %T", v.Config())
	}
}

func TestVAESameSeedSameWeights(t *testing.T) {
	a := trainVAE(t, smallVAEConfig(), 5)
	defer a.Close()
	b := trainVAE(t, smallVAEConfig(), 5)
	defer b.Close()
	other := smallVAEConfig()
	other.Seed = 99
	c := trainVAE(t, other, 5)
	defer c.Close()
	if a.OptimizerStep() != 5 {
		t.Fatalf("optimizer step %d after 5 steps", a.OptimizerStep())
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

func TestVAEKLWarmup(t *testing.T) {
	cfg := smallVAEConfig()
	cfg.WarmupSteps, cfg.Beta = 10, 2
	v, err := models.NewVAE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	data := rand.New(rand.NewPCG(1, 2))
	rng := rand.New(rand.NewPCG(3, 4))
	for s := 0; s < 13; s++ {
		w := v.KLWeight()
		if want := cfg.Beta * math.Min(1, float64(s)/10); math.Abs(w-want) > 1e-12 {
			t.Fatalf("after %d steps the KL weight is %g, want %g", s, w, want)
		}
		l, err := v.TrainStep(randomBatch(data, cfg.Batch*784), rng)
		if err != nil {
			t.Fatal(err)
		}
		// The weight is a graph input: the loss the graph optimised must be
		// recon + w*KL with this step's w.
		if s == 0 && l[0] != l[1] {
			t.Fatalf("first step: loss %g, recon %g: the KL weight is not 0", l[0], l[1])
		}
		if want := l[1] + w*l[2]; math.Abs(l[0]-want) > 1e-5*want {
			t.Fatalf("step %d: loss %g, want recon + %g*KL = %g", s, l[0], w, want)
		}
	}
	if v.KLWeight() != cfg.Beta {
		t.Fatalf("KL weight %g after warm-up, want %g", v.KLWeight(), cfg.Beta)
	}
	v.SetOptimizerStep(5)
	if v.KLWeight() != 1 {
		t.Fatalf("KL weight %g at restored step 5, want 1", v.KLWeight())
	}
	cfg.WarmupSteps = 0
	u, err := models.NewVAE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.KLWeight() != 2 {
		t.Fatalf("KL weight %g without warm-up, want Beta", u.KLWeight())
	}
}

func TestVAESampleAndReconstruct(t *testing.T) {
	v := trainVAE(t, smallVAEConfig(), 2)
	defer v.Close()
	for _, n := range []int{1, 64, 70} {
		out, err := v.Sample(models.NoiseFromSeed(n, v.NoiseDim(), 3))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != n*784 {
			t.Fatalf("sample n=%d: got %d values", n, len(out))
		}
		for _, x := range out {
			if !(x >= 0 && x <= 1) {
				t.Fatalf("sample value %v outside [0, 1]", x)
			}
		}
		rec, err := v.Reconstruct(randomBatch(rand.New(rand.NewPCG(5, 6)), n*784))
		if err != nil {
			t.Fatal(err)
		}
		if len(rec) != n*784 {
			t.Fatalf("reconstruct n=%d: got %d values", n, len(rec))
		}
		for _, x := range rec {
			if !(x >= 0 && x <= 1) {
				t.Fatalf("reconstruction value %v outside [0, 1]", x)
			}
		}
	}
	// Deterministic, and independent of the chunk an image falls in.
	z := models.NoiseFromSeed(70, v.NoiseDim(), 3)
	a, _ := v.Sample(z)
	b, _ := v.Sample(z[66*v.NoiseDim() : 68*v.NoiseDim()])
	if !slices.Equal(a[66*784:68*784], b) {
		t.Fatal("the same noise gave different samples")
	}
	imgs := randomBatch(rand.New(rand.NewPCG(5, 6)), 3*784)
	ra, _ := v.Reconstruct(imgs)
	rb, _ := v.Reconstruct(imgs[784:])
	if !slices.Equal(ra[784:], rb) {
		t.Fatal("reconstruction is not deterministic")
	}
	if _, err := v.Sample(make([]float32, 7)); err == nil {
		t.Fatal("noise of the wrong length was accepted")
	}
	if _, err := v.Reconstruct(make([]uint8, 100)); err == nil {
		t.Fatal("a partial image was accepted")
	}
}

func TestVAETemperature(t *testing.T) {
	cfg := smallVAEConfig()
	v := trainVAE(t, cfg, 2)
	defer v.Close()
	cfg.Temperature = 0.5
	u := trainVAE(t, cfg, 2)
	defer u.Close()
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

func TestVAENonFiniteLoss(t *testing.T) {
	v := trainVAE(t, smallVAEConfig(), 1)
	defer v.Close()
	st := v.State()
	st[0].T.Data().([]float32)[0] = float32(math.NaN())
	before := make([][]float32, len(st))
	for i, p := range st {
		before[i] = append([]float32(nil), p.T.Data().([]float32)...)
	}
	batch := randomBatch(rand.New(rand.NewPCG(1, 1)), 16*784)
	for i := range batch {
		batch[i] |= 1 // every pixel non-zero: the NaN weight reaches every row
	}
	_, err := v.TrainStep(batch, rand.New(rand.NewPCG(2, 2)))
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

func TestVAEConfigValidation(t *testing.T) {
	for name, mut := range map[string]func(*models.VAEConfig){
		"zero latent": func(c *models.VAEConfig) { c.Latent = 0 },
		"hidden":      func(c *models.VAEConfig) { c.Hidden = 0 },
		"shape":       func(c *models.VAEConfig) { c.Width = 0 },
		"lr":          func(c *models.VAEConfig) { c.LR = 0 },
		"adam beta":   func(c *models.VAEConfig) { c.Beta2 = 1 },
		"batch":       func(c *models.VAEConfig) { c.Batch = 0 },
		"kl beta":     func(c *models.VAEConfig) { c.Beta = -1 },
		"kl beta nan": func(c *models.VAEConfig) { c.Beta = math.NaN() },
		"warmup":      func(c *models.VAEConfig) { c.WarmupSteps = -1 },
		"temperature": func(c *models.VAEConfig) { c.Temperature = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := models.DefaultVAEConfig()
			mut(&c)
			if _, err := models.NewVAE(c); err == nil {
				t.Fatal("bad config accepted")
			}
		})
	}
	if err := models.DefaultVAEConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestVAEConfigJSONRoundTrip(t *testing.T) {
	c := models.DefaultVAEConfig()
	c.Beta, c.WarmupSteps, c.Temperature, c.Seed = 2.5, 100, 0.8, 42
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.New("vae", b)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Config(); got != c {
		t.Fatalf("config %+v came back as %+v (JSON %s)", c, got, b)
	}
}

// TestVAELearnsMNIST trains the reference model for 150 steps of 64 on the
// first 4096 MNIST digits: the per-image loss starts near 784*ln 2 ≈ 543
// and must fall well below it.
func TestVAELearnsMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 150 steps")
	}
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	d = d.Subset(4096)
	v, err := models.NewVAE(models.DefaultVAEConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const steps, batch = 150, 64
	var perm []int
	buf := make([]uint8, 0, batch*784)
	var first, last float64
	for s := 0; s < steps; s++ {
		if len(perm) < batch {
			perm = rng.Perm(d.Len())
		}
		buf = buf[:0]
		for _, i := range perm[:batch] {
			buf = append(buf, d.Image(i)...)
		}
		perm = perm[batch:]
		l, err := v.TrainStep(buf, rng)
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = l[0]
		}
		if s >= steps-20 {
			last += l[0] / 20
		}
	}
	t.Logf("per-image loss: first step %.1f, mean of the last 20 steps %.1f", first, last)
	if math.Abs(first-543) > 40 {
		t.Errorf("first step's loss %.1f, want about 784*ln 2 = 543", first)
	}
	if last > 200 {
		t.Errorf("loss after %d steps is %.1f, want < 200", steps, last)
	}
}

// BenchmarkVAEStep measures one training step of the reference VAE
// (784-400-20, batch 64): compare with ../shared/bench/torch_vae_mnist.py.
func BenchmarkVAEStep(b *testing.B) {
	v, err := models.NewVAE(models.DefaultVAEConfig())
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
