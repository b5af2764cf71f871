package training_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// benchDir is ../shared/bench beside the repository (CI lays it there too).
func benchDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "shared", "bench"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "torch_gan_mnist.py")); err != nil {
		t.Skipf("PyTorch references not found at %s", dir)
	}
	return dir
}

// requireTorch skips where Debian's python3-torch is missing, except in CI,
// where make test installs it and its absence is a failure.
func requireTorch(t *testing.T) {
	t.Helper()
	if exec.Command("/usr/bin/python3", "-c", "import torch").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("/usr/bin/python3 cannot import torch (make test installs python3-torch)")
		}
		t.Skip("/usr/bin/python3 has no torch")
	}
}

func writeFloats(t *testing.T, path string, v []float32) {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeInts(t *testing.T, path string, v []int) {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(x)))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// crossCheck saves m, writes input and Gen Studio's output, and has the
// PyTorch reference module load the checkpoint and compare.
func crossCheck(t *testing.T, m models.Model, n int, input, got []float32, ts []int) {
	t.Helper()
	dir := t.TempDir()
	ck := filepath.Join(dir, "model.safetensors")
	if err := training.SaveCheckpoint(ck, m, training.CheckpointInfo{Step: 3}); err != nil {
		t.Fatal(err)
	}
	writeFloats(t, filepath.Join(dir, "in.f32"), input)
	writeFloats(t, filepath.Join(dir, "expect.f32"), got)
	arch := "mlp"
	if models.ArchOf(mustJSON(t, m.Config())) != "mlp" {
		arch = "conv"
	}
	args := []string{"testdata/torch_crosscheck.py", "--bench", benchDir(t), "--family", m.Family(), "--arch", arch, "--ckpt", ck,
		"--input", filepath.Join(dir, "in.f32"), "--n", strconv.Itoa(n), "--expect", filepath.Join(dir, "expect.f32")}
	if ts != nil {
		writeInts(t, filepath.Join(dir, "t.i32"), ts)
		args = append(args, "--t", filepath.Join(dir, "t.i32"))
	}
	out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("PyTorch disagrees with Gen Studio: %v", err)
	}
}

// trained returns m after a few steps on random pixels, so that the weights
// are no longer PyTorch's initial distribution.
func trained(t *testing.T, m models.Model, steps int) models.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]uint8, 64*m.Shape().Size())
	for s := 0; s < steps; s++ {
		for i := range batch {
			batch[i] = uint8(rng.IntN(256))
		}
		if _, err := m.TrainStep(batch, rng); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestPyTorchLoadsGANGenerator(t *testing.T) {
	requireTorch(t)
	m, err := models.NewGAN(models.DefaultGANConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	trained(t, m, 3)
	z := models.NoiseFromSeed(16, m.NoiseDim(), 4)
	got, err := m.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	crossCheck(t, m, 16, z, got, nil)
}

func TestPyTorchLoadsVAEDecoder(t *testing.T) {
	requireTorch(t)
	m, err := models.NewVAE(models.DefaultVAEConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	trained(t, m, 3)
	z := models.NoiseFromSeed(16, m.NoiseDim(), 5)
	got, err := m.Sample(z) // temperature 1: the decoder itself
	if err != nil {
		t.Fatal(err)
	}
	crossCheck(t, m, 16, z, got, nil)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newDefault builds family/arch at its default configuration.
func newDefault(t *testing.T, family, arch string) models.Model {
	t.Helper()
	cfg, err := models.DefaultConfig(family, arch)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.New(family, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestPyTorchLoadsConvModels: the DCGAN (generator and discriminator, batch
// norm buffers with num_batches_tracked), the conv VAE and the U-Net load
// strictly into the references of ../shared/bench after a few training
// steps, and their generator, decoder and noise predictor agree within 1e-4.
func TestPyTorchLoadsConvModels(t *testing.T) {
	requireTorch(t)
	for _, family := range []string{"gan", "vae"} {
		t.Run(family, func(t *testing.T) {
			m := trained(t, newDefault(t, family, "conv"), 2)
			z := models.NoiseFromSeed(8, m.NoiseDim(), 4)
			got, err := m.Sample(z)
			if err != nil {
				t.Fatal(err)
			}
			crossCheck(t, m, 8, z, got, nil)
		})
	}
	t.Run("ddpm", func(t *testing.T) {
		m := trained(t, newDefault(t, "ddpm", "unet"), 1)
		checkNoisePredictor(t, m.(*models.DDPM))
	})
}

func TestPyTorchLoadsDDPMNoisePredictor(t *testing.T) {
	requireTorch(t)
	m, err := models.NewDDPM(models.DefaultDDPMConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	trained(t, m, 3)
	checkNoisePredictor(t, m)
}

// checkNoisePredictor compares eps_theta(x, t) for a few x and t with PyTorch's.
func checkNoisePredictor(t *testing.T, m *models.DDPM) {
	t.Helper()
	// One timestep per call on the Go side; PyTorch takes a t per row.
	x := models.NoiseFromSeed(4, m.NoiseDim(), 6)
	ts := []int{0, 1, 500, 999}
	var got []float32
	var all []int
	for _, tt := range ts {
		eps, err := m.PredictNoise(x, tt)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, eps...)
		for range 4 {
			all = append(all, tt)
		}
	}
	var xs []float32
	for range ts {
		xs = append(xs, x...)
	}
	crossCheck(t, m, len(all), xs, got, all)
}
