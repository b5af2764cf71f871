package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
)

// variants are the models the form offers, in menu order: models.Specs,
// whose fields (labels, hints, ranges) the form shows.
var variants = models.Specs()

// variantIndex is the menu index of family/arch (arch may be an alias such
// as "unet"), or -1.
func variantIndex(family, arch string) int {
	s, err := models.SpecOf(family, arch)
	if err != nil {
		return -1
	}
	for i, v := range variants {
		if v.Name() == s.Name() {
			return i
		}
	}
	return -1
}

// variantLabels are the menu entries.
func variantLabels() []string {
	out := make([]string, len(variants))
	for i, v := range variants {
		out[i] = v.Label
	}
	return out
}

// The image shapes a model can be trained at.
var imageLabels = []string{"28×28 grayscale", "32×32 grayscale", "28×28 RGB", "32×32 RGB"}

// imageText is imageLabel in the window's language.
func imageText(size, channels int) string {
	if channels == 3 {
		return fmt.Sprintf("%d×%d RGB", size, size)
	}
	return fmt.Sprintf(lang.L("%d×%d grayscale"), size, size)
}

func imageLabel(size, channels int) string {
	kind := "grayscale"
	if channels == 3 {
		kind = "RGB"
	}
	return fmt.Sprintf("%d×%d %s", size, size, kind)
}

// input is the widget of one field.
type input struct {
	models.Field
	entry  *widget.Entry  // KindInt, KindFloat, KindSizes
	choice *widget.Select // KindChoice
	check  *widget.Check  // KindBool
}

func (in *input) widget() fyne.CanvasObject {
	if in.choice != nil {
		return in.choice
	}
	if in.check != nil {
		return in.check
	}
	return in.entry
}

func (in *input) text() string {
	if in.choice != nil {
		return in.choice.Selected
	}
	if in.check != nil {
		return strconv.FormatBool(in.check.Checked)
	}
	return strings.TrimSpace(in.entry.Text)
}

// format writes a config value into a field's text.
func format(v any) string {
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

func newInput(f models.Field) *input {
	in := &input{Field: f}
	if f.Kind == models.KindChoice {
		in.choice = widget.NewSelect(f.Choices, nil)
		return in
	}
	if f.Kind == models.KindBool {
		in.check = widget.NewCheck("", nil)
		return in
	}
	in.entry = widget.NewEntry()
	in.entry.Validator = func(s string) error { _, err := f.Parse(s); return err }
	return in
}

func (in *input) set(v any) {
	if in.choice != nil {
		in.choice.SetSelected(format(v))
	} else if in.check != nil {
		b, _ := v.(bool)
		in.check.SetChecked(b)
	} else {
		in.entry.SetText(format(v))
	}
}

// modelForm is the model settings form: the model choice, that model's own
// fields, and the shared training fields. Each entry has a validator whose
// message Fyne shows under the field.
type modelForm struct {
	family *widget.Select // the variant menu
	inputs [][]*input     // per variant
	forms  []*widget.Form // per variant

	image, resize        *widget.Select
	flip                 *widget.Check
	shared               []*input // models.CommonFields: in every model's config
	lr, beta1, batch     *input   // three of shared, by key
	steps, preview, seed *input
	evalEvery            *input

	common  *widget.Form
	content fyne.CanvasObject

	// preset is the recipe menu (models.Presets); extra holds the chosen
	// preset's settings that no field shows (such as Adam's beta2), laid
	// into the config until the model is changed by hand.
	preset     *widget.Select
	presetNote *widget.Label
	extra      map[string]any
	applying   bool

	onChange func() // called after any setting changes (nil: nothing)
}

func (f *modelForm) changed() {
	if f.onChange != nil {
		f.onChange()
	}
}

// The run's settings beside the model's (Key "" for those that are not
// in the model's config).
var (
	fSteps   = models.Field{Label: "Steps", Kind: models.KindInt, Lo: 1, Hi: 1e7}
	fPreview = models.Field{Label: "Preview every", Help: "steps (and at least every 2 s)", Kind: models.KindInt, Lo: 1, Hi: 1e6}
	fSeed    = models.Field{Key: "seed", Label: "Seed", Kind: models.KindInt, Lo: 0, Hi: 1<<31 - 1}
	fEval    = models.Field{Label: "Evaluate every", Help: "steps, 0 = never: FID, IS, … of 1,000 samples (MNIST)", Kind: models.KindInt, Lo: 0, Hi: 1e7}
)

// run is the shared section's inputs: the common model settings, then
// steps, preview interval and seed.
func (f *modelForm) run() []*input {
	return append(append([]*input{}, f.shared...), f.steps, f.preview, f.evalEvery, f.seed)
}

// formItem is the input's row of a form. A long help text wraps under the
// widget instead of widening the form (a form's own hint is one line);
// the hint line stays for validation messages.
func formItem(in *input) *widget.FormItem {
	label, hint := tr(in.Label), tr(in.Help)
	if len([]rune(hint)) <= 36 {
		return &widget.FormItem{Text: label, Widget: in.widget(), HintText: hint}
	}
	help := widget.NewRichText(&widget.TextSegment{Text: hint, Style: widget.RichTextStyle{
		ColorName: theme.ColorNamePlaceHolder, SizeName: theme.SizeNameCaptionText, Inline: true}})
	help.Wrapping = fyne.TextWrapWord
	return &widget.FormItem{Text: label, Widget: container.NewVBox(in.widget(), help), HintText: " "}
}

func newModelForm() *modelForm {
	f := &modelForm{}
	stack := container.NewVBox()
	for _, v := range variants {
		var ins []*input
		form := widget.NewForm()
		for _, fd := range v.Fields {
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
	for _, cf := range models.CommonFields() {
		in := newInput(cf)
		f.shared = append(f.shared, in)
		switch cf.Key {
		case "lr":
			f.lr = in
		case "beta1":
			f.beta1 = in
		case "batch":
			f.batch = in
		}
	}
	f.steps, f.preview, f.seed, f.evalEvery = newInput(fSteps), newInput(fPreview), newInput(fSeed), newInput(fEval)
	f.evalEvery.entry.SetText("0")
	f.steps.entry.SetText("3000")
	f.preview.entry.SetText("100")
	f.seed.entry.SetText("1")
	f.resize = widget.NewSelect([]string{"centre crop", "pad"}, nil)
	f.resize.SetSelected("centre crop")
	f.flip = widget.NewCheck(lang.L("mirror images at random"), nil)
	f.common = widget.NewForm(&widget.FormItem{Text: lang.L("Images"), Widget: f.image, HintText: lang.L("the data set is resized to this")},
		&widget.FormItem{Text: lang.L("Make square by"), Widget: f.resize},
		&widget.FormItem{Text: lang.L("Flip augmentation"), Widget: f.flip})
	for _, in := range f.run() {
		f.common.AppendItem(formItem(in))
	}
	f.family = widget.NewSelect(variantLabels(), func(string) {
		if !f.applying {
			f.extra = nil
			if f.preset != nil {
				f.preset.ClearSelected()
				f.presetNote.SetText("")
			}
		}
		f.showVariant(f.currentIndex(), true)
		f.changed()
	})
	var names []string
	for _, p := range models.Presets() {
		names = append(names, p.Name)
	}
	f.presetNote = widget.NewLabel("")
	f.presetNote.Wrapping = fyne.TextWrapWord
	f.preset = widget.NewSelect(names, func(name string) {
		for _, p := range models.Presets() {
			if p.Name == name {
				f.applyPreset(p)
			}
		}
	})
	f.preset.PlaceHolder = "(choose a recipe)"
	for _, ins := range append(f.inputs, f.run()) {
		for _, in := range ins {
			switch {
			case in.entry != nil:
				in.entry.OnChanged = func(string) { f.changed() }
			case in.check != nil:
				in.check.OnChanged = func(bool) { f.changed() }
			default:
				in.choice.OnChanged = func(string) { f.changed() }
			}
		}
	}
	f.content = container.NewVBox(widget.NewForm(widget.NewFormItem(lang.L("Preset"), f.preset), widget.NewFormItem(lang.L("Model"), f.family)),
		f.presetNote, stack, widget.NewSeparator(), f.common)
	f.family.SetSelected(variants[0].Label)
	def := models.DefaultPreset()
	f.preset.SetSelected(def.Name) // fills the form with the studio's default recipe
	return f
}

// applyPreset selects the preset's variant and fills its fields with the
// variant's defaults and the preset's techniques.
func (f *modelForm) applyPreset(p models.Preset) {
	i := variantIndex(p.Family, p.Arch)
	if i < 0 {
		return
	}
	cfg, err := models.PresetConfig(p, defaults(variants[i]))
	if err != nil {
		f.presetNote.SetText(err.Error())
		return
	}
	f.applying = true
	f.family.SetSelected(variants[i].Label)
	f.showVariant(i, true)
	f.fill(i, cfg)
	f.applying = false
	shown := map[string]bool{}
	for _, in := range append(append([]*input{}, f.inputs[i]...), f.shared...) {
		shown[in.Key] = true
	}
	f.extra = map[string]any{}
	for k := range p.Config {
		if !shown[k] {
			f.extra[k] = cfg[k]
		}
	}
	for _, t := range strings.Split(p.Techniques, "+") {
		for k := range models.Techniques[t] {
			if !shown[k] {
				f.extra[k] = cfg[k]
			}
		}
	}
	if p.Steps > 0 {
		f.steps.entry.SetText(strconv.Itoa(p.Steps))
	}
	f.presetNote.SetText(tr(p.Note))
	f.changed()
}

func (f *modelForm) currentIndex() int {
	for i, v := range variants {
		if v.Label == f.family.Selected {
			return i
		}
	}
	return 0
}

// current is the chosen model's family name.
func (f *modelForm) current() string { return variants[f.currentIndex()].Family }

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
func defaults(v models.Spec) map[string]any {
	cfg := map[string]any{}
	if b, err := models.DefaultConfig(v.Family, v.Arch); err == nil {
		json.Unmarshal(b, &cfg)
	}
	cfg["arch"] = v.Arch
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
	for _, in := range append(append([]*input{}, f.inputs[i]...), f.shared...) {
		if v, ok := cfg[in.Key]; ok {
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
	evalEvery    int
	seed         uint64
}

func (s runSettings) build() (models.Model, error) { return models.New(s.family, s.config) }

// read validates the chosen model's fields and the shared ones, and returns
// the settings or every message at once.
func (f *modelForm) read() (runSettings, error) {
	i := f.currentIndex()
	v := variants[i]
	cfg := defaults(v)
	for k, val := range f.extra {
		cfg[k] = val
	}
	var errs []error
	values := map[*input]any{}
	for _, in := range append(append([]*input{}, f.inputs[i]...), f.run()...) {
		val, err := in.Parse(in.text())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		values[in] = val
		if in.Key != "" {
			cfg[in.Key] = val
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
	return runSettings{family: v.Family, config: b, steps: values[f.steps].(int),
		previewEvery: values[f.preview].(int), evalEvery: values[f.evalEvery].(int), seed: uint64(values[f.seed].(int))}, nil
}

// show fills the form from a loaded model's configuration.
func (f *modelForm) show(m models.Model, seed uint64) {
	b, err := json.Marshal(m.Config())
	if err != nil {
		return
	}
	if i := variantIndex(m.Family(), models.ArchOf(b)); i >= 0 {
		f.family.SetSelected(variants[i].Label)
		var cfg map[string]any
		if json.Unmarshal(b, &cfg) == nil {
			f.fill(i, cfg)
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
	for _, in := range append(append([]*input{}, f.shared...), f.seed) {
		set(in.widget().(fyne.Disableable))
	}
	set(f.family)
	set(f.image)
	set(f.resize)
}

// input returns the chosen model's input for a config key (or a shared
// one), nil if there is none.
func (f *modelForm) input(key string) *input {
	for _, in := range append(append(append([]*input{}, f.inputs[f.currentIndex()]...), f.shared...), f.seed) {
		if in.Key == key {
			return in
		}
	}
	return nil
}
