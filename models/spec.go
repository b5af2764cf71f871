package models

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// FieldKind is how a config field's value is written.
type FieldKind int

// The kinds of config fields.
const (
	KindInt    FieldKind = iota // a whole number in Lo..Hi
	KindFloat                   // a number in Lo..Hi (OpenLo, OpenHi leave out the ends)
	KindChoice                  // one of Choices
	KindSizes                   // a list of layer sizes, at least one, each in Lo..Hi
	KindBool                    // on or off
)

// Field is one setting of a model's JSON config: how the studio's form
// shows it, which flag `genstudio train` reads it from, and the values it
// accepts. A model's Validate checks the same ranges, so they are written
// once, here.
type Field struct {
	Key   string // the JSON key in the model's config
	Label string // the form's label; messages name the field by it
	Help  string // the form's hint and the flag's usage
	Flag  string // the flag of `genstudio train` ("" for none)
	Kind  FieldKind
	// Lo and Hi bound an int or float (each layer size of KindSizes);
	// OpenLo and OpenHi leave out the bounds themselves.
	Lo, Hi         float64
	OpenLo, OpenHi bool
	Choices        []string // the values a KindChoice field takes
}

// Spec is one model variant: a family's architecture, as the studio's form,
// the headless commands, the bench and the models' validation know it.
type Spec struct {
	Family string // "gan", "vae" or "ddpm"
	Arch   string // the canonical architecture name: "mlp" or "conv"
	Label  string // the studio's menu entry
	// Aliases are other names of Arch ("unet" for the DDPM's conv), which
	// configs and flags may use.
	Aliases []string
	// Default returns the default config (a value of the model's config
	// struct, such as GANConfig).
	Default func() any
	// Fields are the variant's own settings, in form order; the settings
	// every model has are CommonFields.
	Fields []Field
	// Build makes the model from a JSON config decoded over Default.
	Build func(config []byte) (Model, error)
}

// The fields several variants share.
var (
	fieldLatent = Field{Key: "latent", Label: "Latent size", Help: "dimensions of z",
		Flag: "latent", Kind: KindInt, Lo: 1, Hi: 4096}
	fieldKLBeta = Field{Key: "kl_beta", Label: "KL weight β", Help: "1 = VAE, above 1 = β-VAE",
		Flag: "kl-beta", Kind: KindFloat, Lo: 0, Hi: 1000}
	fieldKLWarmup = Field{Key: "kl_warmup_steps", Label: "KL warm-up", Help: "steps for β to rise from 0",
		Flag: "kl-warmup", Kind: KindInt, Lo: 0, Hi: 1e7}
	fieldFreeBits = Field{Key: "free_bits", Label: "Free bits", Help: "KL floor per latent dimension in nats (0 = off)",
		Flag: "free-bits", Kind: KindFloat, Lo: 0, Hi: 10}
	fieldDiffusionTemperature = Field{Key: "temperature", Label: "Temperature", Help: "scale of the starting noise and of each step's noise when sampling (1 = plain)",
		Flag: "temperature", Kind: KindFloat, Lo: 0, Hi: 10, OpenLo: true}
	fieldTemperature = Field{Key: "temperature", Label: "Temperature", Help: "scale of z when sampling",
		Flag: "temperature", Kind: KindFloat, Lo: 0, Hi: 100, OpenLo: true}
	fieldHidden = Field{Key: "hidden", Label: "Hidden size", Help: "width of the hidden layers",
		Flag: "hidden", Kind: KindInt, Lo: 1, Hi: 16384}
	fieldT = Field{Key: "t", Label: "Diffusion steps T", Help: "noise levels from data to pure noise",
		Flag: "timesteps", Kind: KindInt, Lo: 1, Hi: 10000}
	fieldSchedule = Field{Key: "schedule", Label: "Noise schedule", Flag: "schedule", Kind: KindChoice,
		Choices: []string{ScheduleLinear, ScheduleCosine}}
	fieldSampler = Field{Key: "sampler", Label: "Sampler", Help: "for previews and samples", Flag: "sampler",
		Kind: KindChoice, Choices: []string{SamplerDDPM, SamplerDDIM}}
	fieldSampleSteps = Field{Key: "sample_steps", Label: "Sampling steps", Help: "network evaluations per sample, at most T; 0 means T",
		Flag: "sample-steps", Kind: KindInt, Lo: 0, Hi: 10000}
	fieldEta = Field{Key: "eta", Label: "DDIM η", Help: "0 = deterministic, 1 = ancestral-like",
		Flag: "eta", Kind: KindFloat, Lo: 0, Hi: 1}
)

// The training settings every model's config has.
var (
	fieldLR = Field{Key: "lr", Label: "Learning rate", Help: "Adam's step size", Flag: "lr",
		Kind: KindFloat, Lo: 0, Hi: 1, OpenLo: true, OpenHi: true}
	fieldBeta1 = Field{Key: "beta1", Label: "Adam beta1", Help: "decay of Adam's gradient average", Flag: "beta1",
		Kind: KindFloat, Lo: 0, Hi: 1, OpenHi: true}
	fieldBatch = Field{Key: "batch", Label: "Batch size", Help: "images per training step", Flag: "batch",
		Kind: KindInt, Lo: 1, Hi: 4096}
	commonFields = []Field{fieldLR, fieldBeta1, fieldBatch, fieldLRSchedule, fieldLRWarmup, fieldClip}
)

// specs are the model variants in display order. They are set in init:
// their builders validate configs, which reads specs.
var specs []Spec

func init() {
	specs = []Spec{
		{Family: "gan", Arch: "mlp", Label: "GAN (MLP, seed)",
			Default: func() any { return DefaultGANConfig() },
			Build:   func(c []byte) (Model, error) { return build(c, DefaultGANConfig(), NewGAN) },
			Fields: []Field{fieldLatent,
				{Key: "g_hidden", Label: "Generator layers", Help: "hidden sizes, noise to image, like 256, 512, 1024",
					Flag: "g-hidden", Kind: KindSizes, Lo: 1, Hi: 16384},
				{Key: "d_hidden", Label: "Discriminator layers", Help: "hidden sizes, image to score, like 1024, 512, 256",
					Flag: "d-hidden", Kind: KindSizes, Lo: 1, Hi: 16384}, fieldGANLoss, fieldDLR, fieldPack, fieldSpectralNorm, fieldMinibatchStd, fieldModeSeeking, fieldDiffAugment, fieldR1, fieldGP, fieldEMA, fieldTruncation}},
		{Family: "gan", Arch: "conv", Label: "GAN (conv, DCGAN)",
			Default: func() any { return DefaultDCGANConfig() },
			Build:   func(c []byte) (Model, error) { return build(c, DefaultDCGANConfig(), NewDCGAN) },
			Fields: []Field{fieldLatent,
				{Key: "g_features", Label: "Generator features", Help: "feature maps F of the last conv layer, 2F before it",
					Flag: "g-features", Kind: KindInt, Lo: 1, Hi: 512},
				{Key: "d_features", Label: "Discriminator features", Help: "feature maps F of the first conv layer, 2F after it",
					Flag: "d-features", Kind: KindInt, Lo: 1, Hi: 512}, fieldGANLoss, fieldDLR, fieldPack, fieldSpectralNorm, fieldMinibatchStd, fieldModeSeeking, fieldDiffAugment, fieldR1, fieldGP, fieldEMA, fieldTruncation}},
		{Family: "vae", Arch: "mlp", Label: "VAE (MLP)",
			Default: func() any { return DefaultVAEConfig() },
			Build:   func(c []byte) (Model, error) { return build(c, DefaultVAEConfig(), NewVAE) },
			Fields:  []Field{fieldLatent, fieldHidden, fieldKLBeta, fieldKLWarmup, fieldFreeBits, fieldTemperature, fieldVAEEMA}},
		{Family: "vae", Arch: "conv", Label: "VAE (conv)",
			Default: func() any { return DefaultConvVAEConfig() },
			Build:   func(c []byte) (Model, error) { return build(c, DefaultConvVAEConfig(), NewConvVAE) },
			Fields: []Field{fieldLatent,
				{Key: "features", Label: "Base features", Help: "feature maps of the first layer; the second has twice as many",
					Flag: "features", Kind: KindInt, Lo: 1, Hi: 256},
				fieldKLBeta, fieldKLWarmup, fieldFreeBits, fieldTemperature, fieldVAEEMA}},
		{Family: "ddpm", Arch: "mlp", Label: "Diffusion (DDPM, MLP)",
			Default: func() any { return DefaultDDPMConfig() },
			Build:   func(c []byte) (Model, error) { return build(c, DefaultDDPMConfig(), NewDDPM) },
			Fields:  []Field{fieldT, fieldSchedule, fieldHidden, fieldSampler, fieldSampleSteps, fieldEta, fieldDiffusionTemperature, fieldClasses, fieldLabelDropout, fieldGuidance, fieldDenoiserEMA}},
		{Family: "ddpm", Arch: DDPMArchConv, Aliases: []string{DDPMArchUNet}, Label: "Diffusion (DDPM, U-Net)",
			Default: func() any { return DefaultUNetDDPMConfig() },
			Build:   func(c []byte) (Model, error) { return build(c, DefaultUNetDDPMConfig(), NewDDPM) },
			Fields: []Field{fieldT, fieldSchedule,
				{Key: "features", Label: "U-Net features", Help: "channels of the first level",
					Flag: "features", Kind: KindInt, Lo: 1, Hi: 128},
				fieldSampler, fieldSampleSteps, fieldEta, fieldDiffusionTemperature, fieldClasses, fieldLabelDropout, fieldGuidance, fieldDenoiserEMA}},
	}
	Families, Architectures = nil, map[string][]string{}
	for _, s := range specs {
		if _, ok := Architectures[s.Family]; !ok {
			Families = append(Families, s.Family)
		}
		Architectures[s.Family] = append(Architectures[s.Family], s.Arch)
	}
}

// Specs returns the model variants in display order: per family the MLP,
// then the convolutional model. The Fields slices are shared: do not
// modify them.
func Specs() []Spec { return slices.Clone(specs) }

// CommonFields returns the training settings every model's config has
// (learning rate, Adam beta1, batch size), which CheckFields checks too.
func CommonFields() []Field { return slices.Clone(commonFields) }

// SpecOf returns family's variant called arch, its canonical name or an
// alias ("" is "mlp").
func SpecOf(family, arch string) (Spec, error) {
	if arch == "" {
		arch = "mlp"
	}
	known := false
	for _, s := range specs {
		if s.Family != family {
			continue
		}
		known = true
		if s.Arch == arch || slices.Contains(s.Aliases, arch) {
			return s, nil
		}
	}
	if !known {
		return Spec{}, fmt.Errorf("unknown model family %q", family)
	}
	return Spec{}, fmt.Errorf("the %s family has no %q architecture (have %s)", family, arch, strings.Join(Architectures[family], ", "))
}

// Name is "family/arch".
func (s Spec) Name() string { return s.Family + "/" + s.Arch }

// AllFields returns the variant's own fields followed by CommonFields.
func (s Spec) AllFields() []Field { return append(slices.Clone(s.Fields), commonFields...) }

// FieldByFlag returns the field (own or common) that flag sets.
func (s Spec) FieldByFlag(flag string) (Field, bool) {
	for _, f := range s.AllFields() {
		if f.Flag == flag {
			return f, true
		}
	}
	return Field{}, false
}

// CheckFields decodes config over the variant's default, as Build does,
// and checks every field's value (the variant's own fields and the common
// ones), returning the first that is out of range, like "U-Net features
// must be 1..128, got 300". Settings that are not simple ranges (image
// shapes, multiples of 4, memory) are left to the model's Validate.
func (s Spec) CheckFields(config []byte) error {
	def := s.Default()
	p := reflect.New(reflect.TypeOf(def))
	p.Elem().Set(reflect.ValueOf(def))
	if len(config) > 0 {
		if err := json.Unmarshal(config, p.Interface()); err != nil {
			return fmt.Errorf("%s config: %w", s.Name(), err)
		}
	}
	return checkFields(s.AllFields(), p.Elem().Interface())
}

// checkSpec checks cfg, a value of family/arch's config struct, against
// the spec's fields: the range check every Validate starts with.
func checkSpec(family, arch string, cfg any) error {
	s, err := SpecOf(family, arch)
	if err != nil {
		return err
	}
	return checkFields(s.AllFields(), cfg)
}

// checkFields checks the fields of cfg, a config struct, by their JSON
// keys.
func checkFields(fields []Field, cfg any) error {
	values := configValues(cfg)
	for _, f := range fields {
		v, ok := values[f.Key]
		if !ok {
			return fmt.Errorf("%T has no %q setting", cfg, f.Key)
		}
		if err := f.Check(v); err != nil {
			return err
		}
	}
	return nil
}

// configValues maps the JSON keys of a config struct's fields to their values.
func configValues(cfg any) map[string]any {
	out := map[string]any{}
	v := reflect.Indirect(reflect.ValueOf(cfg))
	if v.Kind() != reflect.Struct {
		return out
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			maps.Copy(out, configValues(v.Field(i).Interface())) // embedded: flat keys, as JSON has them
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = sf.Name
		}
		out[name] = v.Field(i).Interface()
	}
	return out
}

// Parse reads a value of the field from text (a form entry or a flag) and
// checks it: an int, a float64, a string (KindChoice) or an []int
// (KindSizes).
func (f Field) Parse(text string) (any, error) {
	text = strings.TrimSpace(text)
	var v any
	switch f.Kind {
	case KindInt:
		n, err := strconv.Atoi(text)
		if err != nil {
			// Also take whole numbers written as floats, like 1e4.
			x, ferr := strconv.ParseFloat(text, 64)
			if ferr != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, fmt.Errorf("%s must be a whole number, got %q", f.Label, text)
			}
			n = int(x)
		}
		v = n
	case KindFloat:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("%s must be a number, got %q", f.Label, text)
		}
		v = x
	case KindSizes:
		sizes, err := ParseSizes(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Label, err)
		}
		v = sizes
	case KindBool:
		b, err := ParseBool(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Label, err)
		}
		v = b
	default:
		v = text
	}
	if err := f.Check(v); err != nil {
		return nil, err
	}
	return v, nil
}

// Check reports whether v, a Go value of the config struct or one decoded
// from JSON, is a value the field accepts.
func (f Field) Check(v any) error {
	switch f.Kind {
	case KindInt, KindFloat:
		x, ok := number(v)
		if f.Kind == KindInt && (!ok || x != math.Trunc(x)) {
			return fmt.Errorf("%s must be a whole number, got %v", f.Label, v)
		}
		if !ok {
			return fmt.Errorf("%s must be a number, got %v", f.Label, v)
		}
		return f.inRange(x)
	case KindSizes:
		sizes, ok := numbers(v)
		if !ok {
			return fmt.Errorf("%s must be a list of layer sizes, got %v", f.Label, v)
		}
		if len(sizes) == 0 {
			return fmt.Errorf("%s: give at least one layer size, like 256, 512", f.Label)
		}
		for _, n := range sizes {
			if n != math.Trunc(n) || !(n >= f.Lo && n <= f.Hi) {
				return fmt.Errorf("%s: layer sizes must be %s..%s, got %s", f.Label, num(f.Lo), num(f.Hi), num(n))
			}
		}
		return nil
	case KindBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s must be on or off, got %v", f.Label, v)
		}
		return nil
	}
	s, _ := v.(string)
	if !slices.Contains(f.Choices, s) {
		return fmt.Errorf("%s must be one of %s, got %q", f.Label, strings.Join(f.Choices, ", "), fmt.Sprint(v))
	}
	return nil
}

// inRange checks x against Lo..Hi (NaN is never in range).
func (f Field) inRange(x float64) error {
	lo := x > f.Lo || (!f.OpenLo && x == f.Lo)
	hi := x < f.Hi || (!f.OpenHi && x == f.Hi)
	if lo && hi {
		return nil
	}
	return fmt.Errorf("%s must be %s, got %s", f.Label, f.Range(), num(x))
}

// Range describes the accepted values: "1..4096" for ints, "each
// 1..16384" for layer sizes, "in (0, 1)" for floats, "linear or cosine"
// for choices.
func (f Field) Range() string {
	switch f.Kind {
	case KindInt:
		return num(f.Lo) + ".." + num(f.Hi)
	case KindSizes:
		return "each " + num(f.Lo) + ".." + num(f.Hi)
	case KindFloat:
		lo, hi := "[", "]"
		if f.OpenLo {
			lo = "("
		}
		if f.OpenHi {
			hi = ")"
		}
		return "in " + lo + num(f.Lo) + ", " + num(f.Hi) + hi
	}
	if f.Kind == KindBool {
		return "on or off"
	}
	return strings.Join(f.Choices, " or ")
}

// ParseBool reads on/off, true/false, yes/no or 1/0 (any case).
func ParseBool(text string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("want on or off, got %q", text)
}

// num writes x without an exponent for whole numbers (10000000, not 1e+07).
func num(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// number reads a numeric value of any Go type JSON or a config holds.
func number(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// numbers reads a list of numbers ([]int, or []any from JSON).
func numbers(v any) ([]float64, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]float64, rv.Len())
	for i := range out {
		x, ok := number(rv.Index(i).Interface())
		if !ok {
			return nil, false
		}
		out[i] = x
	}
	return out, true
}
