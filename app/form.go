package app

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/genstudio/genstudio/models"
)

// The families the form offers, in order, with their Model.Family names.
var familyLabels = []string{"GAN (MLP)", "VAE (MLP)", "Diffusion (DDPM, MLP)"}
var familyNames = []string{"gan", "vae", "ddpm"}

// modelForm is the model settings form: a family choice, the fields of the
// chosen family only, and the training fields all families share. Each
// entry has a validator whose message Fyne shows under the field.
type modelForm struct {
	family *widget.Select

	// GAN
	latent, gHidden, dHidden *widget.Entry
	// VAE
	vaeLatent, vaeHidden, klBeta, warmup, temperature *widget.Entry
	// DDPM
	timesteps, ddpmHidden, sampleSteps, eta *widget.Entry
	schedule, sampler                       *widget.Select
	// shared
	lr, beta1, batch, steps, preview, seed *widget.Entry
	image                                  *widget.Select

	boxes   map[string]*widget.Form
	common  *widget.Form
	content fyne.CanvasObject
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

func floatRange(name string, lo, hi float64, openLo, closedHi bool) fyne.StringValidator {
	return func(s string) error {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%s must be a number", name)
		}
		if v < lo || v > hi || (openLo && v == lo) || (!closedHi && v == hi) {
			return fmt.Errorf("%s must be in %s%g, %g%s", name, map[bool]string{true: "(", false: "["}[openLo], lo, hi, map[bool]string{true: "]", false: ")"}[closedHi])
		}
		return nil
	}
}

func sizesValidator(name string) fyne.StringValidator {
	return func(s string) error {
		sizes, err := models.ParseSizes(s)
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

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func newModelForm() *modelForm {
	g, v, d := models.DefaultGANConfig(), models.DefaultVAEConfig(), models.DefaultDDPMConfig()
	f := &modelForm{
		latent:  newEntry(strconv.Itoa(g.Latent), intRange("Latent size", 1, 4096)),
		gHidden: newEntry(joinInts(g.GHidden), sizesValidator("Generator layers")),
		dHidden: newEntry(joinInts(g.DHidden), sizesValidator("Discriminator layers")),

		vaeLatent:   newEntry(strconv.Itoa(v.Latent), intRange("Latent size", 1, 4096)),
		vaeHidden:   newEntry(strconv.Itoa(v.Hidden), intRange("Hidden size", 1, 16384)),
		klBeta:      newEntry(ftoa(v.Beta), floatRange("KL weight β", 0, 1000, false, true)),
		warmup:      newEntry(strconv.Itoa(v.WarmupSteps), intRange("KL warm-up", 0, 10_000_000)),
		temperature: newEntry(ftoa(v.Temperature), floatRange("Temperature", 0, 10, true, true)),

		timesteps:   newEntry(strconv.Itoa(d.T), intRange("Diffusion steps T", 2, 10000)),
		ddpmHidden:  newEntry(strconv.Itoa(d.Hidden), intRange("Hidden size", 1, 16384)),
		schedule:    widget.NewSelect([]string{models.ScheduleLinear, models.ScheduleCosine}, nil),
		sampler:     widget.NewSelect([]string{models.SamplerDDPM, models.SamplerDDIM}, nil),
		sampleSteps: newEntry(strconv.Itoa(d.SampleSteps), intRange("Sampling steps", 1, 10000)),
		eta:         newEntry(ftoa(d.Eta), floatRange("DDIM η", 0, 1, false, true)),

		lr:      newEntry(ftoa(g.LR), floatRange("Learning rate", 0, 1, true, false)),
		beta1:   newEntry(ftoa(g.Beta1), floatRange("Adam beta1", 0, 1, false, false)),
		batch:   newEntry(strconv.Itoa(g.Batch), intRange("Batch size", 1, 4096)),
		steps:   newEntry("3000", intRange("Steps", 1, 10_000_000)),
		preview: newEntry("100", intRange("Preview interval", 1, 1_000_000)),
		seed:    newEntry("1", intRange("Seed", 0, 1<<31-1)),
	}
	f.image = widget.NewSelect(imageLabels, nil)
	f.image.SetSelected(imageLabels[0])
	f.schedule.SetSelected(d.Schedule)
	f.sampler.SetSelected(d.Sampler)
	f.boxes = map[string]*widget.Form{
		"gan": widget.NewForm(
			widget.NewFormItem("Latent size", f.latent),
			&widget.FormItem{Text: "Generator layers", Widget: f.gHidden},
			&widget.FormItem{Text: "Discriminator layers", Widget: f.dHidden, HintText: "hidden sizes, input to output"},
		),
		"vae": widget.NewForm(
			widget.NewFormItem("Latent size", f.vaeLatent),
			widget.NewFormItem("Hidden size", f.vaeHidden),
			&widget.FormItem{Text: "KL weight β", Widget: f.klBeta, HintText: "1 = VAE, above 1 = β-VAE"},
			&widget.FormItem{Text: "KL warm-up", Widget: f.warmup, HintText: "steps for β to rise from 0"},
			&widget.FormItem{Text: "Temperature", Widget: f.temperature, HintText: "scale of z when sampling"},
		),
		"ddpm": widget.NewForm(
			widget.NewFormItem("Diffusion steps T", f.timesteps),
			widget.NewFormItem("Noise schedule", f.schedule),
			widget.NewFormItem("Hidden size", f.ddpmHidden),
			widget.NewFormItem("Sampler", f.sampler),
			&widget.FormItem{Text: "Sampling steps", Widget: f.sampleSteps, HintText: "network evaluations per sample"},
			&widget.FormItem{Text: "DDIM η", Widget: f.eta, HintText: "0 = deterministic, 1 = ancestral-like"},
		),
	}
	f.common = widget.NewForm(
		&widget.FormItem{Text: "Images", Widget: f.image, HintText: "the data set is resized to this"},
		widget.NewFormItem("Learning rate", f.lr),
		widget.NewFormItem("Adam beta1", f.beta1),
		widget.NewFormItem("Batch size", f.batch),
		widget.NewFormItem("Steps", f.steps),
		&widget.FormItem{Text: "Preview every", Widget: f.preview, HintText: "steps (and at least every 2 s)"},
		widget.NewFormItem("Seed", f.seed),
	)
	f.family = widget.NewSelect(familyLabels, func(label string) { f.showFamily(familyOf(label), true) })
	stack := container.NewVBox(f.boxes["gan"], f.boxes["vae"], f.boxes["ddpm"])
	f.content = container.NewVBox(widget.NewForm(widget.NewFormItem("Family", f.family)), stack, widget.NewSeparator(), f.common)
	f.family.SetSelected(familyLabels[0])
	return f
}

// The image shapes a model can be trained at.
var imageLabels = []string{"28×28 grayscale", "32×32 grayscale", "28×28 RGB", "32×32 RGB"}

func imageLabel(size, channels int) string {
	kind := "grayscale"
	if channels == 3 {
		kind = "RGB"
	}
	return fmt.Sprintf("%d×%d %s", size, size, kind)
}

// imageShape is the chosen image size and channel count.
func (f *modelForm) imageShape() (size, channels int) {
	size, channels = 28, 1
	if strings.HasPrefix(f.image.Selected, "32") {
		size = 32
	}
	if strings.HasSuffix(f.image.Selected, "RGB") {
		channels = 3
	}
	return size, channels
}

func familyOf(label string) string {
	for i, l := range familyLabels {
		if l == label {
			return familyNames[i]
		}
	}
	return "gan"
}

// current is the chosen family's name.
func (f *modelForm) current() string { return familyOf(f.family.Selected) }

// showFamily shows that family's fields; with defaults it also resets the
// shared optimizer fields to the family's recipe.
func (f *modelForm) showFamily(name string, defaults bool) {
	for n, b := range f.boxes {
		if n == name {
			b.Show()
		} else {
			b.Hide()
		}
	}
	if defaults {
		f.setOptimizer(recipes[name])
	}
}

// recipe is a family's default optimizer settings.
type recipe struct {
	lr, beta1 float64
	batch     int
}

var recipes = func() map[string]recipe {
	g, v, d := models.DefaultGANConfig(), models.DefaultVAEConfig(), models.DefaultDDPMConfig()
	return map[string]recipe{"gan": {g.LR, g.Beta1, g.Batch}, "vae": {v.LR, v.Beta1, v.Batch}, "ddpm": {d.LR, d.Beta1, d.Batch}}
}()

func (f *modelForm) setOptimizer(r recipe) {
	f.lr.SetText(ftoa(r.lr))
	f.beta1.SetText(ftoa(r.beta1))
	f.batch.SetText(strconv.Itoa(r.batch))
}

func (f *modelForm) familyEntries(name string) []*widget.Entry {
	switch name {
	case "vae":
		return []*widget.Entry{f.vaeLatent, f.vaeHidden, f.klBeta, f.warmup, f.temperature}
	case "ddpm":
		return []*widget.Entry{f.timesteps, f.ddpmHidden, f.sampleSteps, f.eta}
	}
	return []*widget.Entry{f.latent, f.gHidden, f.dHidden}
}

func (f *modelForm) commonEntries() []*widget.Entry {
	return []*widget.Entry{f.lr, f.beta1, f.batch, f.steps, f.preview, f.seed}
}

// runSettings is what the form describes.
type runSettings struct {
	family       string
	build        func() (models.Model, error)
	steps        int
	previewEvery int
	seed         uint64
}

func entryLabel(form *widget.Form, e *widget.Entry) string {
	for _, it := range form.Items {
		if it.Widget == e {
			return it.Text
		}
	}
	return "Setting"
}

// read validates the chosen family's fields and the shared ones, and
// returns the settings or every message at once.
func (f *modelForm) read() (runSettings, error) {
	fam := f.current()
	var errs []error
	for _, e := range f.familyEntries(fam) {
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", entryLabel(f.boxes[fam], e), err))
		}
	}
	for _, e := range f.commonEntries() {
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", entryLabel(f.common, e), err))
		}
	}
	if len(errs) > 0 {
		return runSettings{}, errors.Join(errs...)
	}
	atoi := func(e *widget.Entry) int { n, _ := strconv.Atoi(strings.TrimSpace(e.Text)); return n }
	atof := func(e *widget.Entry) float64 { v, _ := strconv.ParseFloat(strings.TrimSpace(e.Text), 64); return v }
	s := runSettings{family: fam, steps: atoi(f.steps), previewEvery: atoi(f.preview), seed: uint64(atoi(f.seed))}
	lr, beta1, batch := atof(f.lr), atof(f.beta1), atoi(f.batch)
	size, ch := f.imageShape()
	var err error
	switch fam {
	case "gan":
		c := models.DefaultGANConfig()
		c.Width, c.Height, c.Channels = size, size, ch
		c.Latent, c.LR, c.Beta1, c.Batch, c.Seed = atoi(f.latent), lr, beta1, batch, s.seed
		c.GHidden, _ = models.ParseSizes(f.gHidden.Text)
		c.DHidden, _ = models.ParseSizes(f.dHidden.Text)
		err = c.Validate()
		s.build = func() (models.Model, error) { return models.NewGAN(c) }
	case "vae":
		c := models.DefaultVAEConfig()
		c.Width, c.Height, c.Channels = size, size, ch
		c.Latent, c.Hidden, c.LR, c.Beta1, c.Batch, c.Seed = atoi(f.vaeLatent), atoi(f.vaeHidden), lr, beta1, batch, s.seed
		c.Beta, c.WarmupSteps, c.Temperature = atof(f.klBeta), atoi(f.warmup), atof(f.temperature)
		err = c.Validate()
		s.build = func() (models.Model, error) { return models.NewVAE(c) }
	case "ddpm":
		c := models.DefaultDDPMConfig()
		c.Width, c.Height, c.Channels = size, size, ch
		c.T, c.Hidden, c.LR, c.Beta1, c.Batch, c.Seed = atoi(f.timesteps), atoi(f.ddpmHidden), lr, beta1, batch, s.seed
		c.Schedule, c.Sampler, c.SampleSteps, c.Eta = f.schedule.Selected, f.sampler.Selected, atoi(f.sampleSteps), atof(f.eta)
		err = c.Validate()
		s.build = func() (models.Model, error) { return models.NewDDPM(c) }
	}
	if err != nil {
		return runSettings{}, err
	}
	return s, nil
}

// show fills the form from a loaded model's configuration.
func (f *modelForm) show(m models.Model, seed uint64) {
	for i, n := range familyNames {
		if n == m.Family() {
			f.family.SetSelected(familyLabels[i])
		}
	}
	switch c := m.Config().(type) {
	case models.GANConfig:
		f.latent.SetText(strconv.Itoa(c.Latent))
		f.gHidden.SetText(joinInts(c.GHidden))
		f.dHidden.SetText(joinInts(c.DHidden))
		f.setOptimizer(recipe{c.LR, c.Beta1, c.Batch})
	case models.VAEConfig:
		f.vaeLatent.SetText(strconv.Itoa(c.Latent))
		f.vaeHidden.SetText(strconv.Itoa(c.Hidden))
		f.klBeta.SetText(ftoa(c.Beta))
		f.warmup.SetText(strconv.Itoa(c.WarmupSteps))
		f.temperature.SetText(ftoa(c.Temperature))
		f.setOptimizer(recipe{c.LR, c.Beta1, c.Batch})
	case models.DDPMConfig:
		f.timesteps.SetText(strconv.Itoa(c.T))
		f.ddpmHidden.SetText(strconv.Itoa(c.Hidden))
		f.schedule.SetSelected(c.Schedule)
		f.sampler.SetSelected(c.Sampler)
		f.sampleSteps.SetText(strconv.Itoa(c.SampleSteps))
		f.eta.SetText(ftoa(c.Eta))
		f.setOptimizer(recipe{c.LR, c.Beta1, c.Batch})
	}
	f.seed.SetText(strconv.FormatUint(seed, 10))
	sh := m.Shape()
	f.image.SetSelected(imageLabel(sh.Width, sh.Channels))
}

// setEnabled locks the model's settings while a model exists: they are
// baked into it. Steps and preview interval stay editable between runs.
func (f *modelForm) setEnabled(on bool) {
	all := append(append(append(f.familyEntries("gan"), f.familyEntries("vae")...), f.familyEntries("ddpm")...), f.lr, f.beta1, f.batch, f.seed)
	for _, e := range all {
		if on {
			e.Enable()
		} else {
			e.Disable()
		}
	}
	for _, s := range []*widget.Select{f.family, f.schedule, f.sampler, f.image} {
		if on {
			s.Enable()
		} else {
			s.Disable()
		}
	}
}
