package app

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
	"github.com/genstudio/genstudio/models"
)

// modelForm is the GAN settings form: one entry per setting, each with a
// validator whose message Fyne shows under the field.
type modelForm struct {
	latent, gHidden, dHidden, lr, beta1, batch, steps, preview, seed *widget.Entry
	form                                                             *widget.Form
}

func intRange(name string, lo, hi int) fyne.StringValidator {
	return func(s string) error {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%s must be a whole number", name)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%s must be %d..%d", name, lo, hi)
		}
		return nil
	}
}

func floatRange(name string, lo, hi float64, openLo bool) fyne.StringValidator {
	return func(s string) error {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%s must be a number", name)
		}
		if v < lo || v >= hi || (openLo && v == lo) {
			return fmt.Errorf("%s must be in %s%g, %g)", name, map[bool]string{true: "(", false: "["}[openLo], lo, hi)
		}
		return nil
	}
}

func sizesValidator(name string) fyne.StringValidator {
	return func(s string) error {
		sizes, err := parseSizes(s)
		if err != nil {
			return err
		}
		if len(sizes) == 0 {
			return fmt.Errorf("%s: give at least one layer size, like 256, 512", name)
		}
		for _, n := range sizes {
			if n < 1 || n > 16384 {
				return fmt.Errorf("%s: layer sizes must be 1..16384", name)
			}
		}
		return nil
	}
}

func parseSizes(s string) ([]int, error) { return models.ParseSizes(s) }

func newEntry(text string, v fyne.StringValidator) *widget.Entry {
	e := widget.NewEntry()
	e.SetText(text)
	e.Validator = v
	return e
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func newModelForm() *modelForm {
	d := models.DefaultGANConfig()
	f := &modelForm{
		latent:  newEntry(strconv.Itoa(d.Latent), intRange("Latent size", 1, 4096)),
		gHidden: newEntry(joinInts(d.GHidden), sizesValidator("Generator layers")),
		dHidden: newEntry(joinInts(d.DHidden), sizesValidator("Discriminator layers")),
		lr:      newEntry("0.0002", floatRange("Learning rate", 0, 1, true)),
		beta1:   newEntry(strconv.FormatFloat(d.Beta1, 'g', -1, 64), floatRange("Beta1", 0, 1, false)),
		batch:   newEntry(strconv.Itoa(d.Batch), intRange("Batch size", 1, 4096)),
		steps:   newEntry("3000", intRange("Steps", 1, 10_000_000)),
		preview: newEntry("100", intRange("Preview interval", 1, 1_000_000)),
		seed:    newEntry("1", intRange("Seed", 0, 1<<31-1)),
	}
	f.form = widget.NewForm(
		widget.NewFormItem("Latent size", f.latent),
		widget.NewFormItem("Generator layers", f.gHidden),
		widget.NewFormItem("Discriminator layers", f.dHidden),
		widget.NewFormItem("Learning rate", f.lr),
		widget.NewFormItem("Adam beta1", f.beta1),
		widget.NewFormItem("Batch size", f.batch),
		widget.NewFormItem("Steps", f.steps),
		widget.NewFormItem("Preview every", f.preview),
		widget.NewFormItem("Seed", f.seed),
	)
	f.form.Items[2].HintText = "hidden sizes, input to output"
	f.form.Items[7].HintText = "steps (and at least every 2 s)"
	return f
}

func (f *modelForm) entries() []*widget.Entry {
	return []*widget.Entry{f.latent, f.gHidden, f.dHidden, f.lr, f.beta1, f.batch, f.steps, f.preview, f.seed}
}

// runSettings is what the form describes.
type runSettings struct {
	cfg          models.GANConfig
	steps        int
	previewEvery int
	seed         uint64
}

// read validates every field and returns the settings or all the messages.
func (f *modelForm) read() (runSettings, error) {
	var errs []error
	for i, e := range f.entries() {
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.form.Items[i].Text, err))
		}
	}
	if len(errs) > 0 {
		return runSettings{}, errors.Join(errs...)
	}
	atoi := func(e *widget.Entry) int { n, _ := strconv.Atoi(strings.TrimSpace(e.Text)); return n }
	atof := func(e *widget.Entry) float64 { v, _ := strconv.ParseFloat(strings.TrimSpace(e.Text), 64); return v }
	cfg := models.DefaultGANConfig()
	cfg.Latent = atoi(f.latent)
	cfg.GHidden, _ = parseSizes(f.gHidden.Text)
	cfg.DHidden, _ = parseSizes(f.dHidden.Text)
	cfg.LR, cfg.Beta1, cfg.Batch = atof(f.lr), atof(f.beta1), atoi(f.batch)
	s := runSettings{cfg: cfg, steps: atoi(f.steps), previewEvery: atoi(f.preview), seed: uint64(atoi(f.seed))}
	s.cfg.Seed = s.seed
	if err := cfg.Validate(); err != nil {
		return runSettings{}, err
	}
	return s, nil
}

// show fills the form from a loaded model's configuration.
func (f *modelForm) show(cfg models.GANConfig, seed uint64) {
	f.latent.SetText(strconv.Itoa(cfg.Latent))
	f.gHidden.SetText(joinInts(cfg.GHidden))
	f.dHidden.SetText(joinInts(cfg.DHidden))
	f.lr.SetText(strconv.FormatFloat(cfg.LR, 'g', -1, 64))
	f.beta1.SetText(strconv.FormatFloat(cfg.Beta1, 'g', -1, 64))
	f.batch.SetText(strconv.Itoa(cfg.Batch))
	f.seed.SetText(strconv.FormatUint(seed, 10))
}

// setEnabled locks the architecture while a model exists mid-run.
func (f *modelForm) setEnabled(on bool) {
	for _, e := range f.entries() {
		if on {
			e.Enable()
		} else {
			e.Disable()
		}
	}
}
