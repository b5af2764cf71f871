package training_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// trainedSmall builds a small model of the variant from the JSON settings
// over its defaults and trains it two steps on noise.
func trainedSmall(t *testing.T, family, arch string, set map[string]any) models.Model {
	t.Helper()
	def, err := models.DefaultConfig(family, arch)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(def, &cfg)
	cfg["batch"] = 4
	for k, v := range set {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	m, err := models.New(family, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	rng := rand.New(rand.NewPCG(3, 4))
	batch := make([]uint8, 4*m.Shape().Size())
	for s := 0; s < 2; s++ {
		for i := range batch {
			batch[i] = uint8(rng.IntN(256))
		}
		if _, err := m.TrainStep(batch, rng); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestGalleryRedrawsFromProvenance exports a gallery of each family and
// redraws a sample and the grid from nothing but their PNG chunks.
func TestGalleryRedrawsFromProvenance(t *testing.T) {
	for _, c := range []struct {
		family, arch string
		set          map[string]any
	}{
		{"gan", "conv", map[string]any{"g_features": 4, "d_features": 4, "ema": 0.9, "truncation": 0.8}},
		{"vae", "mlp", map[string]any{"hidden": 16, "temperature": 0.7}},
		{"ddpm", "mlp", map[string]any{"hidden": 16, "t": 20, "sample_steps": 5, "sampler": "ddpm"}},
		{"ddpm", "mlp", map[string]any{"hidden": 16, "t": 20, "sample_steps": 5, "classes": 10, "guidance": 3}},
	} {
		t.Run(c.family+"/"+c.arch+fmt.Sprint(len(c.set)), func(t *testing.T) {
			m := trainedSmall(t, c.family, c.arch, c.set)
			dir := t.TempDir()
			g, err := training.ExportModelGallery(context.Background(), dir, m, training.CheckpointInfo{Step: 2, Seed: 1}, 99, 6, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{g.Images[3], g.Grid} {
				p, err := training.ReadProvenance(path)
				if err != nil {
					t.Fatal(err)
				}
				if p.Seed != 99 || p.N != 6 || p.Step != 2 || p.Checkpoint != g.Checkpoint || p.Family != c.family {
					t.Fatalf("provenance %+v", p)
				}
				ck, err := training.OpenProvenanceCheckpoint(p, "")
				if err != nil {
					t.Fatal(err)
				}
				defer ck.Model.Close()
				opts, err := p.Sampler.Apply(ck.Model)
				if err != nil {
					t.Fatal(err)
				}
				img, err := p.Draw(ck.Model, opts)
				if err != nil {
					t.Fatal(err)
				}
				if d := training.PixelDiff(readPNG(t, path), img); d != 0 {
					t.Errorf("%s: %d pixels differ", filepath.Base(path), d)
				}
				// A sampler setting changed: other pixels.
				if c.family == "gan" {
					ck.Model.(models.Truncater).SetTruncation(1)
					img2, _ := p.Draw(ck.Model, opts)
					if training.PixelDiff(readPNG(t, path), img2) == 0 {
						t.Error("truncation 1 drew the same pixels as 0.8")
					}
				}
				if c.set["classes"] != nil {
					if p.Sampler.Guidance == nil || *p.Sampler.Guidance != 3 {
						t.Errorf("guidance not recorded: %+v", p.Sampler)
					}
					one := 1.0
					o2, err := training.SamplerSettings{Guidance: &one}.Apply(ck.Model)
					if err != nil {
						t.Fatal(err)
					}
					img2, _ := p.Draw(ck.Model, o2)
					if training.PixelDiff(readPNG(t, path), img2) == 0 {
						t.Error("guidance 1 drew the same pixels as 3")
					}
				}
			}
		})
	}
}

func TestProvenanceCheckpointChecks(t *testing.T) {
	m := trainedSmall(t, "gan", "mlp", map[string]any{"g_hidden": []int{8}, "d_hidden": []int{8}})
	dir := t.TempDir()
	g, err := training.ExportModelGallery(context.Background(), dir, m, training.CheckpointInfo{Step: 2}, 1, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := training.ReadProvenance(g.Grid)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.safetensors")
	m.TrainStep(make([]uint8, 4*m.Shape().Size()), rand.New(rand.NewPCG(1, 1)))
	if err := training.SaveCheckpoint(other, m, training.CheckpointInfo{Step: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := training.OpenProvenanceCheckpoint(p, other); err == nil || !strings.Contains(err.Error(), "other weights") {
		t.Errorf("another checkpoint: %v", err)
	}
	os.Remove(g.Checkpoint)
	if _, err := training.OpenProvenanceCheckpoint(p, ""); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing checkpoint: %v", err)
	}
	if _, err := training.ReadProvenance(other); err == nil {
		t.Error("a safetensors file read as a PNG")
	}
}

// TestPNGChunks checks the three text chunks and that the image itself is
// untouched by them.
func TestPNGChunks(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(17 * i)
	}
	p := &training.Provenance{App: training.AppName, Version: training.AppVersion, Kind: training.KindGrid, Family: "gan", Arch: "conv",
		Checkpoint: "/tmp/ü/model.safetensors", CheckpointSHA256: strings.Repeat("ab", 32), Step: 500, Width: 28, Height: 28, Seed: 42, N: 1}
	var buf bytes.Buffer
	if err := training.EncodePNG(&buf, img, p); err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if training.PixelDiff(img, back) != 0 {
		t.Error("pixels changed")
	}
	text, err := training.PNGText(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var q training.Provenance
	if err := json.Unmarshal([]byte(text[training.ChunkProvenance]), &q); err != nil || q.Checkpoint != p.Checkpoint || q.Seed != 42 {
		t.Errorf("genstudio chunk %q: %v", text[training.ChunkProvenance], err)
	}
	if ok, _ := regexp.MatchString(`^Steps: 1, Sampler: gan, Seed: 42, Size: 28x28, Model: gan/conv, Model hash: ababababab, `, text[training.ChunkParameters]); !ok {
		t.Errorf("parameters %q", text[training.ChunkParameters])
	}
	x := text[training.ChunkXMP]
	if !strings.Contains(x, `Iptc4xmpExt:DigitalSourceType="`+training.DigitalSourceType+`"`) || !strings.HasPrefix(x, "<?xpacket begin=") {
		t.Errorf("XMP %q", x)
	}
	// The chunks must be valid PNG chunks: a second, strict decoder pass
	// (png.Decode checks every CRC) already passed above.
}

func TestSlerpAndVariations(t *testing.T) {
	a := training.Latent{Seed: 1}.Z(64)
	b := training.Latent{Seed: 2, Index: 3}.Z(64)
	if got := models.NoiseFromSeed(4, 64, 2)[3*64:]; !equal(got, b) {
		t.Fatal("a latent is not its sample of the seed's grid")
	}
	path := training.Slerp(a, b, 5)
	if !equal(path[:64], a) || !near(path[4*64:], b) {
		t.Error("the path does not start at a and end at b")
	}
	na, nb := norm(a), norm(b)
	mid := norm(path[2*64 : 3*64])
	if mid < 0.9*math.Min(na, nb) {
		t.Errorf("the path's middle has norm %g, the ends %g and %g: not spherical", mid, na, nb)
	}
	v := training.Variations(a, 5, 3, 0)
	for k := 0; k < 4; k++ {
		if !near(v[k*64:(k+1)*64], a) {
			t.Error("variations at distance 0 are not copies")
		}
	}
	if v := training.Variations(a, 5, 1, 1); !near(v[64:], models.NoiseFromSeed(1, 64, 5)) {
		t.Error("variations at distance 1 are not fresh noise")
	}
}

func TestWalkGIFComment(t *testing.T) {
	s := models.ImageShape{Width: 4, Height: 4, Channels: 1}
	frames := make([]float32, 3*16)
	for i := range frames {
		frames[i] = float32(i%16) / 15
	}
	g := training.WalkGIF(frames, 3, s, 2, 10)
	if len(g.Image) != 4 || g.Image[0].Bounds().Dx() != 8 {
		t.Fatalf("%d frames of %v", len(g.Image), g.Image[0].Bounds())
	}
	var buf bytes.Buffer
	p := &training.Provenance{Kind: training.KindWalk, Seed: 3}
	if err := training.EncodeGIF(&buf, g, p); err != nil {
		t.Fatal(err)
	}
	c, err := training.GIFComments(buf.Bytes())
	if err != nil || len(c) != 1 || !strings.Contains(c[0], `"kind":"walk"`) {
		t.Fatalf("comments %q, %v", c, err)
	}
}

func TestAppVersionIsFyneAppToml(t *testing.T) {
	b, err := os.ReadFile("../FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `Version = "`+training.AppVersion+`"`) {
		t.Errorf("FyneApp.toml's version is not %s", training.AppVersion)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func near(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}

func norm(a []float32) float64 {
	var s float64
	for _, v := range a {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// TestExportGalleryProgressAndCancel follows a diffusion model's export:
// progress climbs to the whole chain, and a cancel stops the chain and
// leaves the folder as it was.
func TestExportGalleryProgressAndCancel(t *testing.T) {
	m := trainedSmall(t, "ddpm", "mlp", map[string]any{"hidden": 16, "t": 40, "sample_steps": 40, "sampler": "ddpm"})
	dir := t.TempDir()
	var last, total, calls int
	if _, err := training.ExportModelGallery(context.Background(), dir, m, training.CheckpointInfo{Step: 2}, 1, 4,
		func(d, n int) { last, total, calls = d, n, calls+1 }); err != nil {
		t.Fatal(err)
	}
	if calls < 3 || total < 30 || last != total {
		t.Errorf("progress: %d calls, last %d of %d", calls, last, total)
	}

	dir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	_, err := training.ExportModelGallery(ctx, dir, m, training.CheckpointInfo{Step: 2}, 1, 4, func(d, n int) {
		calls++
		cancel() // the user presses Cancel as the chain starts
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled export returned %v", err)
	}
	if calls != 1 {
		t.Errorf("the chain went on for %d reports after the cancel", calls-1)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("a cancelled export left %d files, e.g. %s", len(left), left[0].Name())
	}
}
