package training

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/genstudio/genstudio/models"
)

// AppName and AppVersion name the program in every image it writes; the
// version is FyneApp.toml's (a test keeps them equal).
const (
	AppName    = "Gen Studio"
	AppVersion = "0.1.0"
)

// The kinds of image a Provenance describes.
const (
	KindGrid       = "grid"       // N samples from a seed in a grid of Cols columns
	KindSample     = "sample"     // sample Index of the N drawn from a seed
	KindStrip      = "strip"      // an interpolation between two latents, frames side by side
	KindWalk       = "walk"       // the same interpolation as an animated GIF
	KindVariations = "variations" // a latent and its neighbours, side by side
	KindPreview    = "preview"    // a training preview (no checkpoint of its own)
)

// Latent names one noise vector: sample Index of the N(0, 1) stream of
// Seed (models.NoiseFromSeed), so that the samples of a grid from Seed are
// the latents (Seed, 0), (Seed, 1), ...
type Latent struct {
	Seed  uint64 `json:"seed"`
	Index int    `json:"index"`
}

// Z is the latent's noise vector of dim values.
func (l Latent) Z(dim int) []float32 {
	return models.NoiseFromSeed(l.Index+1, dim, l.Seed)[l.Index*dim:]
}

// SamplerSettings are the settings a sample was drawn with, as far as the
// model has them: a GAN's truncation ψ, a VAE's temperature, a diffusion
// model's sampler, steps, η and temperature.
type SamplerSettings struct {
	Truncation  float64  `json:"truncation,omitempty"`
	Temperature float64  `json:"temperature,omitempty"`
	Sampler     string   `json:"sampler,omitempty"`
	Steps       int      `json:"steps,omitempty"`
	Eta         *float64 `json:"eta,omitempty"`
	// Guidance and Class: a conditional diffusion model's guidance scale
	// and the class drawn (nil: sample i of a grid is of class i mod the
	// classes; a path or variations keep the class of their first latent).
	Guidance *float64 `json:"guidance,omitempty"`
	Class    *int     `json:"class,omitempty"`
}

// CurrentSettings are the settings m samples with now; opts are a
// diffusion model's sampler options (nil: its defaults).
func CurrentSettings(m models.Model, opts *models.SampleOptions) SamplerSettings {
	var s SamplerSettings
	if t, ok := m.(models.Truncater); ok {
		s.Truncation = t.Truncation()
	}
	if t, ok := m.(models.Tempered); ok {
		s.Temperature = t.Temperature()
	}
	if d, ok := m.(models.Diffuser); ok {
		o := d.DefaultSampleOptions()
		if opts != nil {
			o = *opts
		}
		eta := o.Eta
		s.Sampler, s.Steps, s.Eta, s.Temperature = o.Sampler, o.Steps, &eta, o.Temperature
		if s.Temperature == 0 {
			s.Temperature = 1
		}
		if lt, ok := m.(models.LabelledTrainer); ok && lt.Classes() > 0 {
			g := o.Guidance
			s.Guidance, s.Class = &g, o.Class
		}
	}
	return s
}

// Apply sets s on m and returns the sample options to draw with (nil for
// a model that does not diffuse). A setting the model does not have is an
// error, so that a wrong flag is not silently ignored.
func (s SamplerSettings) Apply(m models.Model) (*models.SampleOptions, error) {
	d, diffuses := m.(models.Diffuser)
	if s.Truncation != 0 {
		t, ok := m.(models.Truncater)
		if !ok {
			return nil, fmt.Errorf("truncation applies to GANs; this model is a %s", m.Family())
		}
		if err := t.SetTruncation(s.Truncation); err != nil {
			return nil, fmt.Errorf("truncation: %w", err)
		}
	}
	if s.Temperature != 0 && !diffuses {
		t, ok := m.(models.Tempered)
		if !ok {
			return nil, fmt.Errorf("temperature applies to VAEs and diffusion models; this model is a %s", m.Family())
		}
		if err := t.SetTemperature(s.Temperature); err != nil {
			return nil, fmt.Errorf("temperature: %w", err)
		}
	}
	if !diffuses {
		if s.Sampler != "" || s.Steps != 0 || s.Eta != nil {
			return nil, fmt.Errorf("sampler, steps and η apply to diffusion models; this model is a %s", m.Family())
		}
		if s.Guidance != nil || s.Class != nil {
			return nil, fmt.Errorf("guidance and class apply to conditional diffusion models; this model is a %s", m.Family())
		}
		return nil, nil
	}
	if s.Guidance != nil || s.Class != nil {
		lt, ok := m.(models.LabelledTrainer)
		if !ok || lt.Classes() == 0 {
			return nil, errors.New("guidance and class apply to conditional models (Classes > 0); this one is unconditional")
		}
		if s.Class != nil && (*s.Class < 0 || *s.Class >= lt.Classes()) {
			return nil, fmt.Errorf("class %d: the model has classes 0..%d", *s.Class, lt.Classes()-1)
		}
	}
	o := d.DefaultSampleOptions()
	if s.Sampler != "" {
		o.Sampler = s.Sampler
	}
	if s.Steps != 0 {
		o.Steps = s.Steps
	}
	if s.Eta != nil {
		o.Eta = *s.Eta
	}
	if s.Temperature != 0 {
		o.Temperature = s.Temperature
	}
	if s.Guidance != nil {
		o.Guidance = *s.Guidance
	}
	if s.Class != nil {
		c := *s.Class
		o.Class = &c
	}
	return &o, nil
}

// Provenance is where an image Gen Studio wrote came from: the program,
// the model and its checkpoint, and every setting needed to draw the same
// pixels again (Redraw). It travels inside the PNG (WritePNGWith).
type Provenance struct {
	App     string `json:"app"`
	Version string `json:"version"`
	Kind    string `json:"kind"` // KindGrid, KindSample, ...
	Family  string `json:"family"`
	Arch    string `json:"arch"`
	// ConfigSHA256 is the hash of the model's JSON config.
	ConfigSHA256 string `json:"config_sha256"`
	// Checkpoint is the checkpoint file the image was drawn from ("" for a
	// training preview) and CheckpointSHA256 the hash of its bytes.
	Checkpoint       string `json:"checkpoint,omitempty"`
	CheckpointSHA256 string `json:"checkpoint_sha256,omitempty"`
	Step             int    `json:"step"` // training steps of the model
	Width            int    `json:"width"`
	Height           int    `json:"height"`
	Channels         int    `json:"channels"`
	// Seed and N: the image's samples are the first N latents of Seed
	// (grid, sample, preview); Cols is the grid's columns, Index the
	// sample's place among the N.
	Seed  uint64 `json:"seed"`
	N     int    `json:"n"`
	Cols  int    `json:"cols,omitempty"`
	Index *int   `json:"index,omitempty"`
	// From, To and Frames describe an interpolation (strip, walk): the
	// spherical path from one latent to the other in Frames steps.
	From   *Latent `json:"from,omitempty"`
	To     *Latent `json:"to,omitempty"`
	Frames int     `json:"frames,omitempty"`
	// Distance is the variations' step from the latent From: N
	// neighbours √(1−d²)·z + d·ε, ε from the latents of Seed.
	Distance float64         `json:"distance,omitempty"`
	Sampler  SamplerSettings `json:"sampler"`
}

// NewProvenance describes images of kind drawn from m, which was loaded
// from (or saved to) the checkpoint file ckpt at step; the caller fills in
// the samples' fields (Seed, N, ...). ckpt may be "" for a preview.
func NewProvenance(kind string, m models.Model, ckpt string, step int, opts *models.SampleOptions) (*Provenance, error) {
	cfg, err := json.Marshal(m.Config())
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	sum := sha256.Sum256(cfg)
	sh := m.Shape()
	p := &Provenance{App: AppName, Version: AppVersion, Kind: kind, Family: m.Family(), Arch: models.ArchOf(cfg),
		ConfigSHA256: hex.EncodeToString(sum[:]), Step: step, Width: sh.Width, Height: sh.Height, Channels: sh.Channels,
		Sampler: CurrentSettings(m, opts)}
	if ckpt != "" {
		if abs, err := filepath.Abs(ckpt); err == nil {
			ckpt = abs
		}
		h, err := FileSHA256(ckpt)
		if err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		p.Checkpoint, p.CheckpointSHA256 = ckpt, h
	}
	return p, nil
}

// FileSHA256 is the hex SHA-256 of the file's bytes.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Parameters is the provenance in the one-line style other image
// generators write into a "parameters" text chunk.
func (p *Provenance) Parameters() string {
	sampler, steps := p.Family, 1
	if p.Sampler.Sampler != "" {
		sampler, steps = p.Sampler.Sampler, p.Sampler.Steps
	}
	parts := []string{
		fmt.Sprintf("Steps: %d", steps),
		"Sampler: " + sampler,
		fmt.Sprintf("Seed: %d", p.Seed),
		fmt.Sprintf("Size: %dx%d", p.Width, p.Height),
		"Model: " + p.Family + "/" + p.Arch,
		"Model hash: " + short(p.CheckpointSHA256),
		fmt.Sprintf("Training steps: %d", p.Step),
	}
	if p.Sampler.Truncation != 0 {
		parts = append(parts, fmt.Sprintf("Truncation: %g", p.Sampler.Truncation))
	}
	if p.Sampler.Temperature != 0 {
		parts = append(parts, fmt.Sprintf("Temperature: %g", p.Sampler.Temperature))
	}
	if p.Sampler.Eta != nil {
		parts = append(parts, fmt.Sprintf("Eta: %g", *p.Sampler.Eta))
	}
	if p.Sampler.Guidance != nil {
		parts = append(parts, fmt.Sprintf("CFG scale: %g", *p.Sampler.Guidance))
	}
	if p.Sampler.Class != nil {
		parts = append(parts, fmt.Sprintf("Class: %d", *p.Sampler.Class))
	}
	parts = append(parts, "Version: "+p.App+" "+p.Version)
	return strings.Join(parts, ", ")
}

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	if h == "" {
		return "none"
	}
	return h
}

// Draw draws the image p describes from m, which must be the model p
// names with its settings applied: the one function every writer and
// Redraw use, so that the same provenance always gives the same pixels.
func (p *Provenance) Draw(m models.Model, opts *models.SampleOptions) (image.Image, error) {
	frames, err := p.Samples(m, opts, nil)
	if err != nil {
		return nil, err
	}
	s := m.Shape()
	switch p.Kind {
	case KindGrid, KindPreview:
		return GridImage(frames, p.N, max(1, p.Cols), s), nil
	case KindSample:
		if p.Index == nil || *p.Index < 0 || *p.Index >= p.N {
			return nil, errors.New("provenance: a sample without a valid index")
		}
		return SampleImage(frames, *p.Index, s), nil
	case KindStrip:
		return GridImage(frames, p.Frames, p.Frames, s), nil
	case KindVariations:
		return GridImage(frames, p.N+1, p.N+1, s), nil
	}
	return nil, fmt.Errorf("provenance: %q images are not drawn as one picture", p.Kind)
}

// Samples draws the samples p describes (images in [0, 1], one after the
// other): the N of its seed, the interpolation's frames, or the latent and
// its N variations. progress watches a diffusion model's chain (and can
// stop it).
func (p *Provenance) Samples(m models.Model, opts *models.SampleOptions, progress models.Progress) ([]float32, error) {
	dim := m.NoiseDim()
	var z []float32
	switch p.Kind {
	case KindGrid, KindSample, KindPreview:
		if p.N < 1 || p.N > 10000 {
			return nil, fmt.Errorf("provenance: %d samples", p.N)
		}
		z = models.NoiseFromSeed(p.N, dim, p.Seed)
	case KindStrip, KindWalk:
		if p.From == nil || p.To == nil || p.Frames < 2 || p.Frames > 1000 {
			return nil, errors.New("provenance: an interpolation needs two latents and 2–1000 frames")
		}
		z = Slerp(p.From.Z(dim), p.To.Z(dim), p.Frames)
		opts = keepClass(m, opts, p.From)
	case KindVariations:
		if p.From == nil || p.N < 1 || p.N > 1000 {
			return nil, errors.New("provenance: variations need a latent and 1–1000 neighbours")
		}
		z = Variations(p.From.Z(dim), p.Seed, p.N, p.Distance)
		opts = keepClass(m, opts, p.From)
	default:
		return nil, fmt.Errorf("provenance: unknown kind %q", p.Kind)
	}
	return models.SampleImages(m, z, opts, progress)
}

// keepClass gives every sample of a path the class of its first latent
// in a grid (its index mod the classes), unless opts name a class.
func keepClass(m models.Model, opts *models.SampleOptions, from *Latent) *models.SampleOptions {
	lt, ok := m.(models.LabelledTrainer)
	if !ok || lt.Classes() == 0 || opts == nil || opts.Class != nil {
		return opts
	}
	o := *opts
	c := from.Index % lt.Classes()
	o.Class = &c
	return &o
}

// Slerp is the spherical path from a to b in frames points, a and b
// included (linear where they are parallel).
func Slerp(a, b []float32, frames int) []float32 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	omega := 0.0
	if na > 0 && nb > 0 {
		omega = math.Acos(max(-1, min(1, dot/math.Sqrt(na*nb))))
	}
	out := make([]float32, 0, frames*len(a))
	for f := 0; f < frames; f++ {
		t := float64(f) / float64(frames-1)
		wa, wb := 1-t, t
		if so := math.Sin(omega); so > 1e-6 {
			wa, wb = math.Sin((1-t)*omega)/so, math.Sin(t*omega)/so
		}
		for i := range a {
			out = append(out, float32(wa*float64(a[i])+wb*float64(b[i])))
		}
	}
	return out
}

// Variations is z followed by n neighbours √(1−d²)·z + d·ε, each ε the
// next latent of seed: at distance d 0 copies of z, at 1 fresh samples.
func Variations(z []float32, seed uint64, n int, d float64) []float32 {
	d = max(0, min(1, d))
	keep := math.Sqrt(1 - d*d)
	eps := models.NoiseFromSeed(n, len(z), seed)
	out := append(make([]float32, 0, (n+1)*len(z)), z...)
	for k := 0; k < n; k++ {
		for i, v := range z {
			out = append(out, float32(keep*float64(v)+d*float64(eps[k*len(z)+i])))
		}
	}
	return out
}

// OpenProvenanceCheckpoint loads the checkpoint p names, or path instead
// when it is set, and checks that its bytes are the ones p was drawn from.
func OpenProvenanceCheckpoint(p *Provenance, path string) (*Checkpoint, error) {
	if path == "" {
		path = p.Checkpoint
	}
	if path == "" {
		return nil, errors.New("the image names no checkpoint (a training preview): pass --checkpoint FILE")
	}
	sum, err := FileSHA256(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the image's checkpoint %s is missing: pass --checkpoint FILE with a copy of it", path)
	}
	if err != nil {
		return nil, err
	}
	if p.CheckpointSHA256 != "" && sum != p.CheckpointSHA256 {
		return nil, fmt.Errorf("checkpoint %s has SHA-256 %s…, but the image was drawn from %s…: these are other weights",
			path, short(sum), short(p.CheckpointSHA256))
	}
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	cfg, _ := json.Marshal(ck.Model.Config())
	if ck.Model.Family() != p.Family || models.ArchOf(cfg) != p.Arch {
		ck.Model.Close()
		return nil, fmt.Errorf("checkpoint %s holds a %s/%s model; the image is from a %s/%s", path, ck.Model.Family(), models.ArchOf(cfg), p.Family, p.Arch)
	}
	return ck, nil
}

// PixelDiff counts the pixels where a and b differ (all of them when the
// sizes differ).
func PixelDiff(a, b image.Image) int {
	ra, rb := a.Bounds(), b.Bounds()
	if ra.Size() != rb.Size() {
		return max(ra.Dx()*ra.Dy(), rb.Dx()*rb.Dy())
	}
	n := 0
	for y := 0; y < ra.Dy(); y++ {
		for x := 0; x < ra.Dx(); x++ {
			r1, g1, b1, a1 := a.At(ra.Min.X+x, ra.Min.Y+y).RGBA()
			r2, g2, b2, a2 := b.At(rb.Min.X+x, rb.Min.Y+y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				n++
			}
		}
	}
	return n
}

// ForSample is p's description of sample i of its grid alone (nil for
// nil).
func (p *Provenance) ForSample(i int) *Provenance {
	if p == nil {
		return nil
	}
	q := *p
	q.Kind, q.Cols, q.Index = KindSample, 0, &i
	return &q
}
