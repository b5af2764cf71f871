package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/models/nn"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// loadData loads "mnist" (built in) or a folder of images, shaped as pre.
func loadData(spec string, pre project.Preprocess) (*project.Dataset, error) {
	if spec == "" || strings.EqualFold(spec, "mnist") {
		d, err := project.LoadMNIST()
		if err != nil {
			return nil, err
		}
		return d.Conform(pre.Size, pre.Channels)
	}
	d, err := project.LoadSource(context.Background(), spec, pre, nil)
	if d != nil && len(d.Skipped) > 0 {
		fmt.Fprintf(os.Stderr, "skipped %d files in %s:\n", len(d.Skipped), spec)
		for i, s := range d.Skipped {
			if i == 20 {
				fmt.Fprintf(os.Stderr, "  ... and %d more\n", len(d.Skipped)-20)
				break
			}
			fmt.Fprintf(os.Stderr, "  %s: %s\n", s.Path, s.Reason)
		}
	}
	return d, err
}

// imageFlags set the image shape every model has (the data set is resized
// to it), by JSON key; the models' Validate checks the values.
var imageFlags = []struct{ flag, key, usage string }{
	{"size", "width", "image size: 28 or 32 (the data set is resized)"},
	{"channels", "channels", "1 (grayscale) or 3 (RGB)"},
}

// modelFlag is a flag of train that sets a model setting: a field of one or
// more variants' specs.
type modelFlag struct {
	name, usage string
	bool        bool // an on/off setting: --name alone means on
}

// boolText is an on/off flag kept as the text it was given ("true" when
// given alone), for the field's own parser.
type boolText struct{ s string }

func (b *boolText) String() string     { return b.s }
func (b *boolText) Set(s string) error { b.s = s; return nil }
func (b *boolText) IsBoolFlag() bool   { return true }

// modelFlags are the flags of the spec fields of every variant (models.Specs),
// the common ones first, each once, with a usage naming the variants it
// applies to; a flag left unset keeps the variant's default.
func modelFlags() []modelFlag {
	var order []string
	uses := map[string][]string{}    // flag → usage parts, one per distinct field
	where := map[string][][]string{} // flag → the variants of each part
	bools := map[string]bool{}
	add := func(f models.Field, variant string) {
		if f.Kind == models.KindBool {
			bools[f.Flag] = true
		}
		u := flagLabel(f.Label) + " " + f.Range()
		if f.Help != "" {
			u += ": " + f.Help
		}
		parts, ok := uses[f.Flag]
		if !ok {
			order = append(order, f.Flag)
		}
		i := slices.Index(parts, u)
		if i < 0 {
			uses[f.Flag], where[f.Flag] = append(parts, u), append(where[f.Flag], nil)
			i = len(parts)
		}
		if variant != "" {
			where[f.Flag][i] = append(where[f.Flag][i], variant)
		}
	}
	for _, f := range models.CommonFields() {
		add(f, "")
	}
	for _, s := range models.Specs() {
		for _, f := range s.Fields {
			add(f, s.Name())
		}
	}
	out := make([]modelFlag, len(order))
	for i, name := range order {
		var parts []string
		for k, u := range uses[name] {
			if len(where[name][k]) > 0 {
				u += " (" + strings.Join(where[name][k], ", ") + ")"
			}
			parts = append(parts, u)
		}
		out[i] = modelFlag{name, strings.Join(parts, "; "), bools[name]}
	}
	return out
}

// flagLabel writes a field's label as flag usage starts: "latent size",
// but "KL weight β" and "U-Net features" as they are.
func flagLabel(label string) string {
	r := []rune(label)
	if len(r) > 1 && unicode.IsUpper(r[0]) && unicode.IsLower(r[1]) {
		r[0] = unicode.ToLower(r[0])
	}
	return string(r)
}

// flagged is a config built from flags: the config and the JSON keys the
// given flags set.
type flagged struct {
	config []byte
	keys   []string
}

// overlay applies the model flags that were given (in top, a config built
// from them) on top of a project's stored config.
func overlay(stored []byte, top flagged) ([]byte, error) {
	var base, cfg map[string]any
	if err := json.Unmarshal(stored, &base); err != nil {
		return nil, fmt.Errorf("project model config: %w", err)
	}
	if err := json.Unmarshal(top.config, &cfg); err != nil {
		return nil, err
	}
	for _, k := range top.keys {
		base[k] = cfg[k]
	}
	return json.Marshal(base)
}

// familyConfig returns the variant's default config with the set flags
// applied: each model flag parsed and range-checked by its spec field.
func familyConfig(spec models.Spec, seed uint64, set map[string]string) (flagged, error) {
	b, err := models.DefaultConfig(spec.Family, spec.Arch)
	if err != nil {
		return flagged{}, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return flagged{}, err
	}
	cfg["seed"], cfg["arch"] = seed, spec.Arch
	var keys []string
	for _, f := range imageFlags {
		v, ok := set[f.flag]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return flagged{}, fmt.Errorf("--%s: %q is not a whole number", f.flag, v)
		}
		cfg[f.key] = n
		keys = append(keys, f.key)
		if f.key == "width" {
			cfg["height"] = n // images are square
			keys = append(keys, "height")
		}
	}
	for _, mf := range modelFlags() {
		v, ok := set[mf.name]
		if !ok {
			continue
		}
		f, applies := spec.FieldByFlag(mf.name)
		if !applies {
			return flagged{}, fmt.Errorf("--%s does not apply to the %s model (%s)", mf.name, spec.Name(), spec.Label)
		}
		val, err := f.Parse(v)
		if err != nil {
			return flagged{}, fmt.Errorf("--%s: %w", mf.name, err)
		}
		cfg[f.Key] = val
		keys = append(keys, f.Key)
	}
	if b, err = json.Marshal(cfg); err != nil {
		return flagged{}, err
	}
	return flagged{b, keys}, nil
}

// anyModelFlag tells whether set (the flags given) holds a model setting.
func anyModelFlag(set map[string]string) bool {
	for _, f := range imageFlags {
		if _, ok := set[f.flag]; ok {
			return true
		}
	}
	for _, mf := range modelFlags() {
		if _, ok := set[mf.name]; ok {
			return true
		}
	}
	return false
}

// presetJSON lays preset p over cfg, a variant's JSON config.
func presetJSON(p models.Preset, cfg []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, err
	}
	m, err := models.PresetConfig(p, m)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func cmdTrain(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	def := models.DefaultPreset()
	family := fs.String("family", "", "model family: gan, vae or ddpm (with neither --family, --arch nor a model flag: the studio's default recipe, "+def.Name+")")
	arch := fs.String("arch", "", "architecture: mlp (the default with --family) or conv (unet is an alias for the DDPM's conv)")
	data := fs.String("data", "mnist", `data set: "mnist", a folder or zip of images, an MNIST idx file or a CIFAR-10 batch`)
	steps := fs.Int("steps", 3000, "train until this many steps in total")
	seed := fs.Uint64("seed", 1, "seed of weights, batch order and noise")
	out := fs.String("out", "run", "output folder: checkpoints/, samples/, metrics.jsonl")
	resume := fs.String("resume", "", "continue a run: a checkpoint FILE, or with --project latest (the newest run) or a run's id; its settings come with it")
	previewEvery := fs.Int("preview-every", 500, "write a preview grid every N steps")
	ckEvery := &checkpointEvery{d: 5 * time.Minute}
	fs.Var(ckEvery, "checkpoint-every", "write a checkpoint every N steps (500) or this often (5m)")
	keep := fs.Int("keep", 3, "newest checkpoints kept (pinned ones are kept too)")
	resize := fs.String("resize", "crop", "make images square by centre crop or pad")
	flip := fs.Bool("flip", false, "horizontal-flip augmentation")
	evalEvery := fs.Int("eval-every", 0, "score the model every N steps (FID, IS, …; MNIST only; 0 = never), written to metrics.jsonl")
	evalN := fs.Int("eval-n", 1000, "samples each periodic evaluation scores")
	projDir := fs.String("project", "", "project folder: its data set and settings are the defaults, and the run is recorded in it")
	for _, f := range imageFlags {
		fs.String(f.flag, "", f.usage)
	}
	for _, mf := range modelFlags() {
		if mf.bool {
			fs.Var(&boolText{}, mf.name, mf.usage)
		} else {
			fs.String(mf.name, "", mf.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
	var proj *project.Project
	var projCfg []byte
	if *projDir != "" {
		var err error
		if proj, err = openOrCreateProject(*projDir, set); err != nil {
			return err
		}
		if _, ok := set["data"]; !ok {
			*data = proj.DataSource()
		}
		if _, ok := set["family"]; !ok && proj.Model.Family != "" {
			*family, *arch, projCfg = proj.Model.Family, proj.Model.Arch, proj.Model.Config
			if *arch == "" {
				*arch = models.ArchOf(projCfg)
			}
		}
		if _, ok := set["steps"]; !ok && proj.Training.Steps > 0 {
			*steps = proj.Training.Steps
		}
		if _, ok := set["seed"]; !ok && proj.Model.Family != "" {
			*seed = proj.Training.Seed
		}
	}
	// --resume latest|RUN with a project names a run; the checkpoint is its newest.
	var resumeRun string
	if *resume != "" {
		ck, runDir, err := resolveResume(proj, *resume)
		if err != nil {
			return err
		}
		*resume, resumeRun = ck, runDir
	}
	// No model named at all: the default recipe, at its own length.
	var preset *models.Preset
	if *resume == "" && projCfg == nil && *family == "" && *arch == "" && !anyModelFlag(set) {
		preset = &def
		*family, *arch = def.Family, def.Arch
		if _, ok := set["steps"]; !ok && def.Steps > 0 && (proj == nil || proj.Training.Steps == 0) {
			*steps = def.Steps
		}
	}
	if *family == "" {
		*family = "gan"
	}
	if _, ok := set["out"]; !ok && resumeRun != "" {
		*out = resumeRun // the same run goes on, with its history
	} else if proj != nil {
		if _, ok := set["out"]; !ok {
			id := proj.NewRunID()
			*out = proj.RunDir(id)
			proj.Runs = append(proj.Runs, project.RunRef{ID: id, Created: time.Now().UTC(), Family: *family, Steps: *steps})
			if err := proj.Save(); err != nil {
				return err
			}
		}
	}
	var m models.Model
	start := 0
	var resumed *training.RunSettings
	if *resume != "" {
		ck, err := training.LoadCheckpoint(*resume)
		if err != nil {
			return err
		}
		m, start, *seed, resumed = ck.Model, ck.Info.Step, ck.Info.Seed, ck.Info.Run
		if _, ok := set["data"]; !ok && ck.Info.Dataset != "" && proj == nil {
			*data = ck.Info.Dataset
		}
	} else {
		spec, err := models.SpecOf(*family, *arch)
		if err != nil {
			return err
		}
		top, err := familyConfig(spec, *seed, set)
		if err != nil {
			return err
		}
		cfg := top.config
		if preset != nil {
			if cfg, err = presetJSON(*preset, cfg); err != nil {
				return err
			}
		}
		if projCfg != nil {
			// The project's model settings, with any model flags given on top.
			if cfg, err = overlay(projCfg, top); err != nil {
				return err
			}
		}
		if m, err = models.New(*family, cfg); err != nil {
			return err
		}
	}
	defer m.Close()
	sh := m.Shape()
	pre := project.Preprocess{Size: sh.Width, Channels: sh.Channels, Resize: *resize}
	if *resize != project.ResizeCrop && *resize != project.ResizePad {
		return fmt.Errorf("--resize must be crop or pad, got %q", *resize)
	}
	var ds *project.Dataset
	var err error
	if proj != nil && *data == proj.DataSource() && *data != project.MNISTSource {
		ds, _, err = project.CacheLoad(proj.CacheDir(), *data, pre, func() (*project.Dataset, error) {
			return project.LoadSource(context.Background(), *data, pre, nil)
		})
		if errors.Is(err, project.ErrCacheWrite) && ds != nil {
			fmt.Fprintln(os.Stderr, "warning:", err)
			err = nil
		}
	} else {
		ds, err = loadData(*data, pre)
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	opts := training.Options{
		Steps: *steps, Seed: *seed, StartStep: start, PreviewEvery: *previewEvery, PreviewPeriod: time.Hour,
		PreviewDir: filepath.Join(*out, training.SamplesFolder), CheckpointDir: filepath.Join(*out, training.CkptFolder),
		CheckpointEvery: ckEvery.d, CheckpointSteps: ckEvery.steps, Keep: *keep,
		MetricsPath: filepath.Join(*out, training.MetricsFile), RunDir: *out, ProgressPeriod: time.Second,
		Flip: *flip, EvalEvery: *evalEvery, EvalN: *evalN, OnWriteError: training.WriteFailContinue,
	}
	// A resumed run keeps its own settings; flags given now override them.
	if resumed != nil {
		kept := opts
		resumed.Apply(&opts)
		for name, v := range map[string]func(){
			"steps": func() { opts.Steps = kept.Steps }, "preview-every": func() { opts.PreviewEvery = kept.PreviewEvery },
			"checkpoint-every": func() { opts.CheckpointEvery, opts.CheckpointSteps = kept.CheckpointEvery, kept.CheckpointSteps },
			"keep":             func() { opts.Keep = kept.Keep }, "flip": func() { opts.Flip = kept.Flip },
			"eval-every": func() { opts.EvalEvery = kept.EvalEvery }, "eval-n": func() { opts.EvalN = kept.EvalN },
		} {
			if _, ok := set[name]; ok {
				v()
			}
		}
		*evalEvery = opts.EvalEvery
		if opts.Steps <= start {
			return fmt.Errorf("the checkpoint is at step %d and the run's target is %d steps: give --steps higher to train on", start, opts.Steps)
		}
	}
	if *evalEvery > 0 {
		if ds.Source != project.MNISTSource {
			return errors.New("--eval-every needs --data mnist: the built-in evaluator knows digits only")
		}
		if opts.Evaluator, err = training.MNISTEvaluator(); err != nil {
			return err
		}
		defer opts.Evaluator.Close()
	}
	w, err := training.NewWorker(m, ds, opts)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got os.Signal
	go func() {
		if s, ok := <-sigs; ok {
			got = s
			stop()
		}
	}()
	fmt.Printf("training %s on %s (%d images), steps %d..%d, seed %d, BLAS %s, run folder %s\n", m.Family(), ds.Name, ds.Len(), start, opts.Steps, *seed, nn.BLASName, *out)
	w.Start(ctx)
	done := reportTraining(w, newProgressLine(os.Stdout))
	signal.Stop(sigs)
	close(sigs)
	if done.Err != nil {
		if training.Diverged(done.Err) {
			cks, _ := training.ListCheckpoints(opts.CheckpointDir)
			if len(cks) > 0 {
				return fmt.Errorf("%w\nthe last good checkpoint is %s: resume from it with a lower --lr", done.Err, cks[len(cks)-1])
			}
		}
		return done.Err
	}
	if got != nil {
		code := 130
		if got == syscall.SIGTERM {
			code = 143
		}
		return &exitError{code: code, msg: fmt.Sprintf("stopped by %v at step %d; the checkpoint is written: continue with genstudio train --resume %s",
			got, done.Step, filepath.Join(opts.CheckpointDir, training.CheckpointName(done.Step)))}
	}
	fmt.Printf("done at step %d; samples in %s\n", done.Step, filepath.Join(*out, training.SamplesFolder))
	return nil
}
