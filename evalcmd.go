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
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// cmdEvaluator is `genstudio evaluator train|info`: it makes and describes
// the classifier the metrics are computed with.
func cmdEvaluator(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: genstudio evaluator train --out FILE [--epochs N] [--seed S] | evaluator info [FILE]")
	}
	switch args[0] {
	case "train":
		return evaluatorTrain(args[1:])
	case "info":
		return evaluatorInfo(args[1:])
	}
	return fmt.Errorf("unknown evaluator command %q (train or info)", args[0])
}

func evaluatorTrain(args []string) error {
	def := training.DefaultEvaluatorTraining()
	fs := flag.NewFlagSet("evaluator train", flag.ContinueOnError)
	out := fs.String("out", "", "evaluator file to write (.safetensors)")
	epochs := fs.Int("epochs", def.Epochs, "passes over the training set")
	seed := fs.Uint64("seed", def.Seed, "seed of the weights, the shuffling and the shifts")
	batch := fs.Int("batch", def.Batch, "images a step")
	data := fs.String("data", "mnist", "images to train on: mnist, or a folder (one sub-folder per class makes a classifier, none an autoencoder)")
	size := fs.Int("size", 28, "image size the data set is resized to (a multiple of 4)")
	channels := fs.Int("channels", 1, "1 (grayscale) or 3 (RGB)")
	name := fs.String("name", "", "the evaluator's name in every number (default mnist-lenet, or the folder's name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	var train, test *project.Dataset
	var err error
	if *data == "mnist" {
		if train, err = project.LoadMNIST(); err == nil {
			test, err = project.LoadMNISTTest()
		}
	} else {
		// a folder: a tenth of each class is held out for the accuracy
		var all *project.Dataset
		if all, err = loadData(*data, project.Preprocess{Size: *size, Channels: *channels}); err == nil {
			train, test = training.HoldOut(all, 10)
			def.Name = filepath.Base(filepath.Clean(*data))
		}
	}
	if err != nil {
		return err
	}
	if *name != "" {
		def.Name = *name
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tr := def
	tr.Epochs, tr.Seed, tr.Batch = *epochs, *seed, *batch
	start := time.Now()
	tr.Progress = func(step, steps int, loss float64) {
		fmt.Printf("step %d/%d  loss %.4f  %.0fs\n", step, steps, loss, time.Since(start).Seconds())
	}
	e, err := training.TrainEvaluator(ctx, train, test, tr)
	if err != nil {
		return err
	}
	if err := e.Save(*out); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s): test accuracy %.2f%% (reconstruction MSE %.4f for an autoencoder) on %d images, %d steps in %.0f s\n",
		*out, e.ID(), 100*e.Info.Accuracy, e.Info.TestMSE, e.Info.TestN, e.Info.Steps, e.Info.Seconds)
	return nil
}

func evaluatorInfo(args []string) error {
	var e *training.Evaluator
	var err error
	if len(args) > 0 {
		e, err = training.LoadEvaluator(args[0])
	} else {
		e, err = training.MNISTEvaluator()
	}
	if err != nil {
		return err
	}
	i := e.Info
	quality := fmt.Sprintf("%d classes; test accuracy %.2f%%", len(i.Classes), 100*i.Accuracy)
	if e.Classes() == 0 {
		quality = fmt.Sprintf("an autoencoder; test reconstruction MSE %.4f", i.TestMSE)
	}
	fmt.Printf("%s: %dx%dx%d images; seed %d, %d epochs of batch %d (%d steps) in %.0f s; %s on %d images\n",
		e.ID(), i.Width, i.Height, i.Channels, i.Seed, i.Epochs, i.Batch, i.Steps, i.Seconds, quality, i.TestN)
	return nil
}

// cmdEval is `genstudio eval`: it scores a checkpoint's samples or a set of
// images with every metric, against the training set.
func cmdEval(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	ckpt := fs.String("checkpoint", "", "checkpoint file (.safetensors) whose samples are scored")
	images := fs.String("images", "", "images to score instead: a folder, a zip, an IDX file, or mnist-test (the real test set)")
	against := fs.String("against", "mnist", "the real data: mnist (built in) or a data set path")
	n := fs.Int("n", training.DefaultEvalN, "number of samples scored (and of real images compared)")
	seed := fs.Uint64("seed", 1, "noise seed of the samples and of the metrics' random choices")
	evFile := fs.String("evaluator", "", "evaluator file (default: the built-in MNIST evaluator)")
	ref := fs.Bool("reference", false, "also score the real test set the same way (mnist only): what a perfect model gives")
	asJSON := fs.Bool("json", false, "print one JSON object on one line")
	sf := addSamplerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*ckpt == "") == (*images == "") {
		return errors.New("give --checkpoint FILE or --images PATH")
	}
	ev, err := loadEvaluator(*evFile)
	if err != nil {
		return err
	}
	defer ev.Close()
	i := ev.Info
	pre := project.Preprocess{Size: i.Width, Channels: i.Channels}
	if i.Width != i.Height {
		return fmt.Errorf("evaluator %s takes %dx%d images; only square images are loaded", ev.ID(), i.Width, i.Height)
	}
	train, err := loadData(*against, pre)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := training.EvalOptions{N: *n, Seed: *seed, Evaluator: ev, Train: train}
	if !*asJSON {
		opts.Progress = textProgress()
	}
	var r *training.Report
	if *ckpt != "" {
		ck, err := training.LoadCheckpoint(*ckpt)
		if err != nil {
			return err
		}
		defer ck.Model.Close()
		so, err := sf.options(ck.Model)
		if err != nil {
			return err
		}
		if r, err = training.EvaluateModel(ctx, ck.Model, so, opts); err != nil {
			return err
		}
		r.Source, r.Step = fmt.Sprintf("checkpoint %s (%s, step %d)", *ckpt, ck.Model.Family(), ck.Info.Step), ck.Info.Step
	} else {
		if r, err = evalImages(ctx, *images, pre, opts); err != nil {
			return err
		}
	}
	var real *training.Report
	if *ref {
		if real, err = evalImages(ctx, project.MNISTTestSource, pre, opts); err != nil {
			return fmt.Errorf("reference row: %w", err)
		}
	}
	if *asJSON {
		return printJSON(r, real)
	}
	fmt.Print(training.FormatReports(r, real))
	return nil
}

// loadEvaluator reads an evaluator file, or the built-in one for "".
func loadEvaluator(path string) (*training.Evaluator, error) {
	if path == "" {
		return training.MNISTEvaluator()
	}
	return training.LoadEvaluator(path)
}

// evalImages loads a data set of images and scores its first opts.N
// (clipped to the set's size when it is smaller).
func evalImages(ctx context.Context, path string, pre project.Preprocess, opts training.EvalOptions) (*training.Report, error) {
	d, err := loadData(path, pre)
	if err != nil {
		return nil, err
	}
	if d.Len() < opts.N {
		if d.Len() < training.MinEvalN {
			return nil, fmt.Errorf("%s holds %d images; the metrics need at least %d", path, d.Len(), training.MinEvalN)
		}
		opts.N = d.Len()
	}
	shape := models.ImageShape{Width: d.Width, Height: d.Height, Channels: d.C()}
	r, err := training.EvaluateImages(ctx, training.Pixels01(d.Pixels[:opts.N*d.ImageSize()]), shape, opts)
	if err != nil {
		return nil, err
	}
	r.Source = "images " + path
	return r, nil
}

// textProgress prints each stage's progress on one line of stderr.
func textProgress() func(stage string, done, total int) {
	last := ""
	return func(stage string, done, total int) {
		if stage != last && last != "" {
			fmt.Fprintln(os.Stderr)
		}
		last = stage
		fmt.Fprintf(os.Stderr, "\r%-9s %d/%d", stage, done, total)
		if stage == "metrics" && done == total {
			fmt.Fprintln(os.Stderr)
			last = ""
		}
	}
}

// printJSON prints r as one line, with the reference row under "real".
func printJSON(r, real *training.Report) error {
	type withReal struct {
		*training.Report
		Real *training.Report `json:"real,omitempty"`
	}
	b, err := json.Marshal(withReal{r, real})
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
