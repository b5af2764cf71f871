package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
)

// fieldKind is how a setting is typed in.
type fieldKind int

const (
	kindInt fieldKind = iota
	kindFloat
	kindSizes  // a list of layer sizes
	kindChoice // one of choices
)

// field is one model setting: its key in the model's JSON config, how it
// is shown and what values it accepts.
type field struct {
	key, label, hint string
	kind             fieldKind
	lo, hi           float64 // accepted range (ints and floats)
	openLo, openHi   bool    // whether lo / hi themselves are refused
	choices          []string
}

// variant is one model the form offers: a family and an architecture.
type variant struct {
	label, family, arch string
	fields              []field
}

var (
	fLatent   = field{key: "latent", label: "Latent size", kind: kindInt, lo: 1, hi: 4096}
	fBeta     = field{key: "kl_beta", label: "KL weight β", hint: "1 = VAE, above 1 = β-VAE", kind: kindFloat, lo: 0, hi: 1000}
	fWarmup   = field{key: "kl_warmup_steps", label: "KL warm-up", hint: "steps for β to rise from 0", kind: kindInt, lo: 0, hi: 1e7}
	fTemp     = field{key: "temperature", label: "Temperature", hint: "scale of z when sampling", kind: kindFloat, lo: 0, hi: 100, openLo: true}
	fHidden   = field{key: "hidden", label: "Hidden size", kind: kindInt, lo: 1, hi: 16384}
	fFeatures = field{key: "features", label: "Base features", hint: "feature maps of the first layer", kind: kindInt, lo: 1, hi: 512}
	fT        = field{key: "t", label: "Diffusion steps T", kind: kindInt, lo: 2, hi: 10000}
	fSchedule = field{key: "schedule", label: "Noise schedule", kind: kindChoice, choices: []string{models.ScheduleLinear, models.ScheduleCosine}}
	fSampler  = field{key: "sampler", label: "Sampler", kind: kindChoice, choices: []string{models.SamplerDDPM, models.SamplerDDIM}}
	fKSteps   = field{key: "sample_steps", label: "Sampling steps", hint: "network evaluations per sample", kind: kindInt, lo: 1, hi: 10000}
	fEta      = field{key: "eta", label: "DDIM η", hint: "0 = deterministic, 1 = ancestral-like", kind: kindFloat, lo: 0, hi: 1}
)

// variants are the models the form offers, in menu order.
var variants = []variant{
	{"GAN (MLP)", "gan", "mlp", []field{fLatent,
		{key: "g_hidden", label: "Generator layers", kind: kindSizes},
		{key: "d_hidden", label: "Discriminator layers", hint: "hidden sizes, input to output", kind: kindSizes}}},
	{"GAN (conv, DCGAN)", "gan", "conv", []field{fLatent,
		{key: "g_features", label: "Generator features", kind: kindInt, lo: 1, hi: 512},
		{key: "d_features", label: "Discriminator features", kind: kindInt, lo: 1, hi: 512}}},
	{"VAE (MLP)", "vae", "mlp", []field{fLatent, fHidden, fBeta, fWarmup, fTemp}},
	{"VAE (conv)", "vae", "conv", []field{fLatent, fFeatures, fBeta, fWarmup, fTemp}},
	{"Diffusion (DDPM, MLP)", "ddpm", "mlp", []field{fT, fSchedule, fHidden, fSampler, fKSteps, fEta}},
	{"Diffusion (DDPM, U-Net)", "ddpm", "unet", []field{fT, fSchedule, {key: "features", label: "Base features", hint: "channels of the first level", kind: kindInt, lo: 1, hi: 128}, fSampler, fKSteps, fEta}},
}

// variantLabels are the menu entries.
func variantLabels() []string {
	out := make([]string, len(variants))
	for i, v := range variants {
		out[i] = v.label
	}
	return out
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

// input is the widget of one field.
type input struct {
	field
	entry  *widget.Entry  // kindInt, kindFloat, kindSizes
	choice *widget.Select // kindChoice
}

func (in *input) widget() fyne.CanvasObject {
	if in.choice != nil {
		return in.choice
	}
	return in.entry
}

func (in *input) text() string {
	if in.choice != nil {
		return in.choice.Selected
	}
	return strings.TrimSpace(in.entry.Text)
}

// validate checks the text and returns its value for the JSON config.
func (f field) parse(s string) (any, error) {
	inRange := func(v float64) error {
		if v < f.lo || v > f.hi || (f.openLo && v == f.lo) || (f.openHi && v == f.hi) {
			lo, hi := "[", "]"
			if f.openLo {
				lo = "("
			}
			if f.openHi {
				hi = ")"
			}
			return fmt.Errorf("%s must be in %s%g, %g%s", f.label, lo, f.lo, f.hi, hi)
		}
		return nil
	}
	switch f.kind {
	case kindInt:
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s must be a whole number", f.label)
		}
		return n, inRange(float64(n))
	case kindFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s must be a number", f.label)
		}
		return v, inRange(v)
	case kindSizes:
		sizes, err := models.ParseSizes(s)
		if err != nil {
			return nil, err
		}
		if len(sizes) == 0 {
			return nil, fmt.Errorf("%s: give at least one layer size, like 256, 512", f.label)
		}
		for _, n := range sizes {
			if n < 1 || n > 16384 {
				return nil, fmt.Errorf("%s: layer sizes must be 1..16384", f.label)
			}
		}
		return sizes, nil
	}
	for _, c := range f.choices {
		if s == c {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s: choose one of %s", f.label, strings.Join(f.choices, ", "))
}

// format writes a config value into a field's text.
func (f field) format(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

func newInput(f field) *input {
	in := &input{field: f}
	if f.kind == kindChoice {
		in.choice = widget.NewSelect(f.choices, nil)
		return in
	}
	in.entry = widget.NewEntry()
	in.entry.Validator = func(s string) error { _, err := f.parse(strings.TrimSpace(s)); return err }
	return in
}

func (in *input) set(v any) {
	if in.choice != nil {
		in.choice.SetSelected(in.format(v))
	} else {
		in.entry.SetText(in.format(v))
	}
}

// modelForm is the model settings form: the model choice, that model's own
// fields, and the shared training fields. Each entry has a validator whose
// message Fyne shows under the field.
type modelForm struct {
	family *widget.Select // the variant menu
	inputs [][]*input     // per variant
	forms  []*widget.Form // per variant

	image, resize                          *widget.Select
	flip                                   *widget.Check
	lr, beta1, batch, steps, preview, seed *input

	common  *widget.Form
	content fyne.CanvasObject

	onChange func() // called after any setting changes (nil: nothing)
}

func (f *modelForm) changed() {
	if f.onChange != nil {
		f.onChange()
	}
}

var (
	fLR      = field{key: "lr", label: "Learning rate", kind: kindFloat, lo: 0, hi: 1, openLo: true, openHi: true}
	fBeta1   = field{key: "beta1", label: "Adam beta1", kind: kindFloat, lo: 0, hi: 1, openHi: true}
	fBatch   = field{key: "batch", label: "Batch size", kind: kindInt, lo: 1, hi: 4096}
	fSteps   = field{label: "Steps", kind: kindInt, lo: 1, hi: 1e7}
	fPreview = field{label: "Preview every", hint: "steps (and at least every 2 s)", kind: kindInt, lo: 1, hi: 1e6}
	fSeed    = field{key: "seed", label: "Seed", kind: kindInt, lo: 0, hi: 1<<31 - 1}
)

func formItem(in *input) *widget.FormItem {
	return &widget.FormItem{Text: in.label, Widget: in.widget(), HintText: in.hint}
}

func newModelForm() *modelForm {
	f := &modelForm{}
	stack := container.NewVBox()
	for _, v := range variants {
		var ins []*input
		form := widget.NewForm()
		for _, fd := range v.fields {
			in := newInput(fd)
			ins = append(ins, in)
			form.AppendItem(formItem(in))
		}
		f.inputs = append(f.inputs, ins)
		f.forms = append(f.forms, form)
		stack.Add(form)
	}
	f.image = widget.NewSelect(imageLabels, nil)
	f.image.SetSelected(imageLabels[0])
	f.lr, f.beta1, f.batch = newInput(fLR), newInput(fBeta1), newInput(fBatch)
	f.steps, f.preview, f.seed = newInput(fSteps), newInput(fPreview), newInput(fSeed)
	f.steps.entry.SetText("3000")
	f.preview.entry.SetText("100")
	f.seed.entry.SetText("1")
	f.resize = widget.NewSelect([]string{"centre crop", "pad"}, nil)
	f.resize.SetSelected("centre crop")
	f.flip = widget.NewCheck("mirror images at random", nil)
	f.common = widget.NewForm(&widget.FormItem{Text: "Images", Widget: f.image, HintText: "the data set is resized to this"},
		&widget.FormItem{Text: "Make square by", Widget: f.resize},
		&widget.FormItem{Text: "Flip augmentation", Widget: f.flip})
	for _, in := range []*input{f.lr, f.beta1, f.batch, f.steps, f.preview, f.seed} {
		f.common.AppendItem(formItem(in))
	}
	f.family = widget.NewSelect(variantLabels(), func(string) { f.showVariant(f.currentIndex(), true); f.changed() })
	for _, ins := range append(f.inputs, []*input{f.lr, f.beta1, f.batch, f.steps, f.preview, f.seed}) {
		for _, in := range ins {
			if in.entry != nil {
				in.entry.OnChanged = func(string) { f.changed() }
			} else {
				in.choice.OnChanged = func(string) { f.changed() }
			}
		}
	}
	f.content = container.NewVBox(widget.NewForm(widget.NewFormItem("Model", f.family)), stack, widget.NewSeparator(), f.common)
	f.family.SetSelected(variants[0].label)
	return f
}

func (f *modelForm) currentIndex() int {
	for i, v := range variants {
		if v.label == f.family.Selected {
			return i
		}
	}
	return 0
}

// current is the chosen model's family name.
func (f *modelForm) current() string { return variants[f.currentIndex()].family }

// preprocess is the chosen data set preprocessing.
func (f *modelForm) preprocess() project.Preprocess {
	size, ch := f.imageShape()
	pre := project.Preprocess{Size: size, Channels: ch, Resize: project.ResizeCrop, Flip: f.flip.Checked}
	if f.resize.Selected == "pad" {
		pre.Resize = project.ResizePad
	}
	return pre
}

// showPreprocess shows a stored preprocessing in the form.
func (f *modelForm) showPreprocess(pre project.Preprocess) {
	if pre.Size > 0 {
		f.image.SetSelected(imageLabel(pre.Size, max(pre.Channels, 1)))
	}
	if pre.Resize == project.ResizePad {
		f.resize.SetSelected("pad")
	} else {
		f.resize.SetSelected("centre crop")
	}
	f.flip.SetChecked(pre.Flip)
}

// imageShape is the chosen image size and channel count.
func (f *modelForm) imageShape() (size, channels int) {
	size, channels = 28, 1
	if n, err := strconv.Atoi(strings.SplitN(f.image.Selected, "×", 2)[0]); err == nil {
		size = n
	}
	if strings.HasSuffix(f.image.Selected, "RGB") {
		channels = 3
	}
	return size, channels
}

// defaults is a variant's default configuration as a JSON object.
func defaults(v variant) map[string]any {
	cfg := map[string]any{}
	if b, err := models.DefaultConfig(v.family, v.arch); err == nil {
		json.Unmarshal(b, &cfg)
	}
	cfg["arch"] = v.arch
	return cfg
}

// showVariant shows variant i's fields; with reset it also fills them and
// the shared optimizer fields with that model's defaults.
func (f *modelForm) showVariant(i int, reset bool) {
	for k, form := range f.forms {
		if k == i {
			form.Show()
		} else {
			form.Hide()
		}
	}
	if reset {
		f.fill(i, defaults(variants[i]))
	}
}

// fill writes a configuration into variant i's fields and the shared ones.
func (f *modelForm) fill(i int, cfg map[string]any) {
	for _, in := range append(f.inputs[i], f.lr, f.beta1, f.batch) {
		if v, ok := cfg[in.key]; ok {
			in.set(v)
		}
	}
}

// runSettings is what the form describes.
type runSettings struct {
	family       string
	config       []byte // the model's JSON configuration
	steps        int
	previewEvery int
	seed         uint64
}

func (s runSettings) build() (models.Model, error) { return models.New(s.family, s.config) }

// read validates the chosen model's fields and the shared ones, and returns
// the settings or every message at once.
func (f *modelForm) read() (runSettings, error) {
	i := f.currentIndex()
	v := variants[i]
	cfg := defaults(v)
	var errs []error
	values := map[*input]any{}
	for _, in := range append(append([]*input{}, f.inputs[i]...), f.lr, f.beta1, f.batch, f.steps, f.preview, f.seed) {
		val, err := in.parse(in.text())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		values[in] = val
		if in.key != "" {
			cfg[in.key] = val
		}
	}
	if len(errs) > 0 {
		return runSettings{}, errors.Join(errs...)
	}
	size, ch := f.imageShape()
	cfg["width"], cfg["height"], cfg["channels"] = size, size, ch
	b, err := json.Marshal(cfg)
	if err != nil {
		return runSettings{}, err
	}
	return runSettings{family: v.family, config: b, steps: values[f.steps].(int),
		previewEvery: values[f.preview].(int), seed: uint64(values[f.seed].(int))}, nil
}

// show fills the form from a loaded model's configuration.
func (f *modelForm) show(m models.Model, seed uint64) {
	b, err := json.Marshal(m.Config())
	if err != nil {
		return
	}
	arch := models.ArchOf(b)
	for i, v := range variants {
		if v.family == m.Family() && v.arch == arch {
			f.family.SetSelected(v.label)
			var cfg map[string]any
			if json.Unmarshal(b, &cfg) == nil {
				f.fill(i, cfg)
			}
		}
	}
	f.seed.entry.SetText(strconv.FormatUint(seed, 10))
	sh := m.Shape()
	f.image.SetSelected(imageLabel(sh.Width, sh.Channels))
}

// setEnabled locks the model's settings while a model exists: they are
// baked into it. Steps and preview interval stay editable between runs.
func (f *modelForm) setEnabled(on bool) {
	set := func(w fyne.Disableable) {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
	for _, ins := range f.inputs {
		for _, in := range ins {
			set(in.widget().(fyne.Disableable))
		}
	}
	for _, in := range []*input{f.lr, f.beta1, f.batch, f.seed} {
		set(in.entry)
	}
	set(f.family)
	set(f.image)
	set(f.resize)
}

// input returns the chosen model's input for a config key (or a shared
// one), nil if there is none.
func (f *modelForm) input(key string) *input {
	for _, in := range append(append([]*input{}, f.inputs[f.currentIndex()]...), f.lr, f.beta1, f.batch, f.seed) {
		if in.key == key {
			return in
		}
	}
	return nil
}
