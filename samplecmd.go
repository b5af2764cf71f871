package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// samplerFlags are the sampling flags of sample, interpolate and eval.
type samplerFlags struct {
	sampler     *string
	steps       *int
	eta         *float64
	truncation  *float64
	temperature *float64
	guidance    *float64
	class       *int
}

func addSamplerFlags(fs *flag.FlagSet) samplerFlags {
	return samplerFlags{
		sampler:     fs.String("sampler", "", "diffusion sampler: ddpm (ancestral) or ddim (default: the checkpoint's)"),
		steps:       fs.Int("steps", 0, "diffusion sampling steps K (default: the checkpoint's)"),
		eta:         fs.Float64("eta", -1, "DDIM η in [0, 1] (default: the checkpoint's)"),
		truncation:  fs.Float64("truncation", 0, "GAN truncation ψ in (0, 1]: samples use ψ·z (default: the checkpoint's)"),
		temperature: fs.Float64("temperature", 0, "VAE or diffusion temperature: the noise's scale (default: the checkpoint's)"),
		guidance:    fs.Float64("guidance", -1, "a conditional diffusion model's guidance scale: 1 plain, 0 unconditional (default: the checkpoint's)"),
		class:       fs.Int("class", -1, "a conditional model's class for every sample (default: sample i is of class i mod the classes)"),
	}
}

// settings are the flags that were set, as sampler settings.
func (f samplerFlags) settings() training.SamplerSettings {
	s := training.SamplerSettings{Sampler: *f.sampler, Steps: *f.steps, Truncation: *f.truncation, Temperature: *f.temperature}
	if *f.eta >= 0 {
		eta := *f.eta
		s.Eta = &eta
	}
	if *f.guidance >= 0 {
		g := *f.guidance
		s.Guidance = &g
	}
	if *f.class >= 0 {
		c := *f.class
		s.Class = &c
	}
	return s
}

// options applies the flags that were set to m and returns its sample
// options (nil for a model that does not diffuse).
func (f samplerFlags) options(m models.Model) (*models.SampleOptions, error) {
	o, err := f.settings().Apply(m)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	return o, nil
}

func cmdSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	ckpt := fs.String("checkpoint", "", "checkpoint file (.safetensors); with --from, one to use instead of the image's")
	from := fs.String("from", "", "redraw this PNG from the provenance Gen Studio wrote into it")
	n := fs.Int("n", 64, "number of samples")
	seed := fs.Uint64("seed", 1, "noise seed")
	out := fs.String("out", "", "grid PNG to write (default grid.png; with --from, NAME-redrawn.png)")
	gallery := fs.String("gallery", "", "also write grid.png and one PNG per sample into this folder")
	sf := addSamplerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from != "" {
		return redraw(*from, *ckpt, *out)
	}
	if *ckpt == "" {
		return errors.New("--checkpoint is required")
	}
	if *n < 1 || *n > 10000 {
		return fmt.Errorf("--n must be 1..10000, got %d", *n)
	}
	if *out == "" {
		*out = "grid.png"
	}
	ck, opts, p, err := openForSampling(*ckpt, sf, training.KindGrid)
	if err != nil {
		return err
	}
	defer ck.Model.Close()
	m := ck.Model
	p.Seed, p.N, p.Cols = *seed, *n, training.GridCols(*n)
	samples, err := p.Samples(m, opts, nil)
	if err != nil {
		return err
	}
	if err := training.WritePNGWith(*out, training.GridImage(samples, *n, p.Cols, m.Shape()), p); err != nil {
		return err
	}
	fmt.Printf("wrote %d samples of %s at step %d to %s\n", *n, m.Family(), ck.Info.Step, *out)
	if *gallery != "" {
		g, err := training.ExportGallery(*gallery, samples, *n, m.Shape(), p)
		if err != nil {
			return err
		}
		fmt.Printf("gallery: %s and %d images\n", g.Grid, len(g.Images))
	}
	return nil
}

// openForSampling loads the checkpoint, applies the sampling flags and
// starts the provenance of images of kind drawn from it.
func openForSampling(path string, sf samplerFlags, kind string) (*training.Checkpoint, *models.SampleOptions, *training.Provenance, error) {
	ck, err := training.LoadCheckpoint(path)
	if err != nil {
		return nil, nil, nil, err
	}
	opts, err := sf.options(ck.Model)
	if err == nil {
		var p *training.Provenance
		if p, err = training.NewProvenance(kind, ck.Model, path, ck.Info.Step, opts); err == nil {
			return ck, opts, p, nil
		}
	}
	ck.Model.Close()
	return nil, nil, nil, err
}

// redraw regenerates the PNG src from its provenance into out and checks
// that every pixel matches.
func redraw(src, ckpt, out string) error {
	p, err := training.ReadProvenance(src)
	if err != nil {
		return err
	}
	if out == "" {
		out = strings.TrimSuffix(src, filepath.Ext(src)) + "-redrawn.png"
	}
	ck, err := training.OpenProvenanceCheckpoint(p, ckpt)
	if err != nil {
		return err
	}
	defer ck.Model.Close()
	opts, err := p.Sampler.Apply(ck.Model)
	if err != nil {
		return fmt.Errorf("the image's sampler settings: %w", err)
	}
	img, err := p.Draw(ck.Model, opts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := training.EncodePNG(&buf, img, p); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	orig, err := training.ReadPNG(src)
	if err != nil {
		return err
	}
	redrawn, _ := png.Decode(bytes.NewReader(buf.Bytes()))
	if d := training.PixelDiff(orig, redrawn); d != 0 {
		return fmt.Errorf("redrew %s into %s, but %d pixels differ", src, out, d)
	}
	fmt.Printf("redrew %s (%s of %s/%s at step %d, seed %d) into %s: every pixel identical\n",
		src, p.Kind, p.Family, p.Arch, p.Step, p.Seed, out)
	return nil
}

// cmdInfo prints the provenance of images Gen Studio wrote.
func cmdInfo(args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: genstudio info IMAGE.png [...]")
	}
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		text, err := training.PNGText(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		p, err := training.ReadProvenance(path)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n  %s %s: %s of %s/%s, step %d\n", path, p.App, p.Version, p.Kind, p.Family, p.Arch, p.Step)
		if p.Checkpoint != "" {
			fmt.Printf("  checkpoint %s\n  sha256 %s\n", p.Checkpoint, p.CheckpointSHA256)
		}
		fmt.Printf("  parameters: %s\n", text[training.ChunkParameters])
		ai := "no"
		if strings.Contains(text[training.ChunkXMP], training.DigitalSourceType) {
			ai = "yes (IPTC trainedAlgorithmicMedia)"
		}
		fmt.Printf("  marked as AI-generated: %s\n  provenance: %s\n", ai, text[training.ChunkProvenance])
	}
	return nil
}

// cmdInterpolate draws the spherical path between the latents of two
// seeds as a strip, and optionally as a GIF.
func cmdInterpolate(args []string) error {
	fs := flag.NewFlagSet("interpolate", flag.ContinueOnError)
	ckpt := fs.String("checkpoint", "", "checkpoint file (.safetensors)")
	a := fs.Uint64("from-seed", 1, "seed of the first latent")
	b := fs.Uint64("to-seed", 2, "seed of the last latent")
	frames := fs.Int("frames", 8, "frames of the path, both ends included (2–1000)")
	out := fs.String("out", "strip.png", "strip PNG to write")
	gifOut := fs.String("gif", "", "also write the walk as an animated GIF")
	sf := addSamplerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ckpt == "" {
		return errors.New("--checkpoint is required")
	}
	if *frames < 2 || *frames > 1000 {
		return fmt.Errorf("--frames must be 2..1000, got %d", *frames)
	}
	ck, opts, p, err := openForSampling(*ckpt, sf, training.KindStrip)
	if err != nil {
		return err
	}
	defer ck.Model.Close()
	m := ck.Model
	p.From, p.To, p.Frames, p.Seed = &training.Latent{Seed: *a}, &training.Latent{Seed: *b}, *frames, *a
	path, err := p.Samples(m, opts, nil)
	if err != nil {
		return err
	}
	if err := training.WritePNGWith(*out, training.GridImage(path, *frames, *frames, m.Shape()), p); err != nil {
		return err
	}
	fmt.Printf("wrote %d frames from seed %d to seed %d to %s\n", *frames, *a, *b, *out)
	if *gifOut != "" {
		w := *p
		w.Kind = training.KindWalk
		if err := training.WriteGIF(*gifOut, training.WalkGIF(path, *frames, m.Shape(), 4, 10), &w); err != nil {
			return err
		}
		fmt.Printf("wrote the walk to %s\n", *gifOut)
	}
	return nil
}
