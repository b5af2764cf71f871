package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// loadData loads "mnist" (built in) or a folder of images.
func loadData(spec string) (*project.Dataset, error) {
	if spec == "" || strings.EqualFold(spec, "mnist") {
		return project.LoadMNIST()
	}
	d, err := project.LoadFolder(context.Background(), spec, 28, nil)
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

func cmdTrain(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	def := models.DefaultGANConfig()
	data := fs.String("data", "mnist", `data set: "mnist" or a folder of images`)
	steps := fs.Int("steps", 3000, "train until this many steps in total")
	seed := fs.Uint64("seed", 1, "seed of weights, batch order and noise")
	out := fs.String("out", "run", "output folder: checkpoints/, samples/, metrics.jsonl")
	resume := fs.String("resume", "", "continue from this checkpoint")
	batch := fs.Int("batch", def.Batch, "batch size")
	lr := fs.Float64("lr", def.LR, "Adam learning rate")
	beta1 := fs.Float64("beta1", def.Beta1, "Adam beta1")
	latent := fs.Int("latent", def.Latent, "latent size")
	gHidden := fs.String("g-hidden", "256,512,1024", "generator hidden sizes")
	dHidden := fs.String("d-hidden", "1024,512,256", "discriminator hidden sizes")
	previewEvery := fs.Int("preview-every", 500, "write a preview grid every N steps")
	ckEvery := fs.Duration("checkpoint-every", 5*time.Minute, "write a checkpoint this often")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ds, err := loadData(*data)
	if err != nil {
		return err
	}
	var m models.Model
	start := 0
	if *resume != "" {
		ck, err := training.LoadCheckpoint(*resume)
		if err != nil {
			return err
		}
		m, start, *seed = ck.Model, ck.Info.Step, ck.Info.Seed
	} else {
		cfg := def
		cfg.Batch, cfg.LR, cfg.Beta1, cfg.Latent, cfg.Seed = *batch, *lr, *beta1, *latent, *seed
		if cfg.GHidden, err = models.ParseSizes(*gHidden); err != nil {
			return err
		}
		if cfg.DHidden, err = models.ParseSizes(*dHidden); err != nil {
			return err
		}
		if m, err = models.NewGAN(cfg); err != nil {
			return err
		}
	}
	defer m.Close()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	w, err := training.NewWorker(m, ds, training.Options{
		Steps: *steps, Seed: *seed, StartStep: start, PreviewEvery: *previewEvery, PreviewPeriod: time.Hour,
		PreviewDir: filepath.Join(*out, "samples"), CheckpointDir: filepath.Join(*out, "checkpoints"),
		CheckpointEvery: *ckEvery, MetricsPath: filepath.Join(*out, "metrics.jsonl"), ProgressPeriod: 2 * time.Second,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("training %s on %s (%d images), steps %d..%d, seed %d, BLAS %s\n", m.Family(), ds.Name, ds.Len(), start, *steps, *seed, models.BLASName)
	w.Start(ctx)
	var done training.DoneEvent
	for ev := range w.Events() {
		switch e := ev.(type) {
		case training.ProgressEvent:
			if len(e.Points) == 0 {
				continue
			}
			last := e.Points[len(e.Points)-1]
			var parts []string
			for i, n := range e.LossNames {
				parts = append(parts, fmt.Sprintf("%s %.4f", n, last.Losses[i]))
			}
			fmt.Printf("step %d/%d  epoch %d  %s  %.1f steps/s  ETA %s\n", e.Step, e.Total, e.Epoch+1, strings.Join(parts, "  "), e.StepsPerSec, e.ETA.Round(time.Second))
		case training.CheckpointEvent:
			if e.Err != nil {
				fmt.Fprintln(os.Stderr, "checkpoint failed:", e.Err)
			} else {
				fmt.Println("checkpoint", e.Path)
			}
		case training.DoneEvent:
			done = e
		}
	}
	if done.Err != nil {
		return done.Err
	}
	fmt.Printf("done at step %d; samples in %s\n", done.Step, filepath.Join(*out, "samples"))
	return nil
}

func cmdSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	ckpt := fs.String("checkpoint", "", "checkpoint file (.safetensors)")
	n := fs.Int("n", 64, "number of samples")
	seed := fs.Uint64("seed", 1, "noise seed")
	out := fs.String("out", "grid.png", "grid PNG to write")
	gallery := fs.String("gallery", "", "also write grid.png and one PNG per sample into this folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ckpt == "" {
		return errors.New("--checkpoint is required")
	}
	if *n < 1 || *n > 10000 {
		return fmt.Errorf("--n must be 1..10000, got %d", *n)
	}
	ck, err := training.LoadCheckpoint(*ckpt)
	if err != nil {
		return err
	}
	defer ck.Model.Close()
	m := ck.Model
	samples, err := m.Sample(models.NoiseFromSeed(*n, m.NoiseDim(), *seed))
	if err != nil {
		return err
	}
	if err := training.WritePNG(*out, training.GridImage(samples, *n, training.GridCols(*n), m.Shape())); err != nil {
		return err
	}
	fmt.Printf("wrote %d samples of %s at step %d to %s\n", *n, m.Family(), ck.Info.Step, *out)
	if *gallery != "" {
		g, err := training.ExportGallery(*gallery, samples, *n, m.Shape())
		if err != nil {
			return err
		}
		fmt.Printf("gallery: %s and %d images\n", g.Grid, len(g.Images))
	}
	return nil
}
