package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// cmdExport is `genstudio export torch --project DIR --out JOBDIR`: the
// project's model, data and recipe as a PyTorch DistributedDataParallel job
// (training.ExportTorchJob).
func cmdExport(args []string) error {
	if len(args) == 0 || args[0] != "torch" {
		return &exitError{code: 2, msg: "usage: genstudio export torch --project DIR --out JOBDIR [--steps N]"}
	}
	fs := flag.NewFlagSet("export torch", flag.ContinueOnError)
	projDir := fs.String("project", "", "the project folder to export (its model, data set and training settings)")
	out := fs.String("out", "", "the job folder to write (created; default PROJECT/exports/torch-job)")
	steps := fs.Int("steps", 0, "the job's default run length (0: the project's)")
	flip := fs.Bool("flip", false, "mirror images at random, as the form's flip augmentation")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *projDir == "" {
		return errors.New("export torch: --project DIR is needed")
	}
	p, err := project.Open(*projDir)
	if err != nil {
		return err
	}
	family, config := p.Model.Family, p.Model.Config
	if family == "" {
		// No model saved in project.json (a project trained headless): the
		// model of its newest checkpoint.
		ck, _, err := resolveResume(p, "latest")
		if err != nil {
			return fmt.Errorf("export torch: project %s has no model: save one from the window or train it once (%v)", p.Name, err)
		}
		info, err := training.ReadCheckpointInfo(ck)
		if err != nil {
			return fmt.Errorf("export torch: %w", err)
		}
		family, config = info.Family, info.Config
	}
	m, err := models.New(family, config)
	if err != nil {
		return fmt.Errorf("export torch: %w", err)
	}
	defer m.Close()
	sh := m.Shape()
	pre := p.Dataset.Preprocess
	pre.Size, pre.Channels = sh.Width, sh.Channels
	ds, err := loadData(p.DataSource(), pre)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(p.Dir(), project.ExportsFolder, "torch-job")
	}
	opts := training.TorchJobOptions{Steps: p.Training.Steps, Seed: p.Training.Seed, PreviewEvery: p.Training.PreviewEvery,
		Flip: *flip, Name: p.Name}
	if *steps > 0 {
		opts.Steps = *steps
	}
	if opts.Steps == 0 {
		opts.Steps = 3000
	}
	if err := training.ExportTorchJob(*out, m, ds, opts); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "wrote %s: %s on %d images; run it with\n  cd %s && torchrun --standalone --nproc_per_node 2 train.py\n",
		*out, training.ModelName(m), ds.Len(), *out)
	return nil
}
