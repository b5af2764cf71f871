package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// studyConfig is the JSON config of family/arch with the techniques'
// settings applied.
func studyConfig(family, arch, technique string, seed uint64) ([]byte, error) {
	base, err := models.DefaultConfig(family, arch)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(base, &cfg); err != nil {
		return nil, err
	}
	if err := models.ApplyTechniques(cfg, technique); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", family, arch, err)
	}
	cfg["seed"] = seed
	return json.Marshal(cfg)
}

// studyRow is one technique's result: each metric's mean and std over the
// seeds, and the per-seed reports.
type studyRow struct {
	Technique string               `json:"technique"`
	Model     string               `json:"model"`
	Steps     int                  `json:"steps"`
	N         int                  `json:"n"`
	Seeds     []uint64             `json:"seeds"`
	Mean      map[string]float64   `json:"mean"`
	Std       map[string]float64   `json:"std"`
	Reports   []*training.Report   `json:"reports"`
	Seconds   float64              `json:"train_seconds"`
	extra     map[string][]float64 // per-metric values (for mean/std)
}

// studyKeys are the metrics the study table shows.
var studyKeys = []string{"fid", "kid", "is", "recall", "coverage", "class_coverage", "ms_ssim", "precision", "confident"}

// cmdStudy is `genstudio study`: every technique trained with the same
// seeds and steps on MNIST and scored the same way.
func cmdStudy(args []string) error {
	fs := flag.NewFlagSet("study", flag.ContinueOnError)
	family := fs.String("family", "gan", "model family")
	arch := fs.String("arch", "mlp", "architecture: mlp or conv")
	techniques := fs.String("techniques", "plain", "comma-separated techniques: "+strings.Join(models.TechniqueNames(), ", ")+"; a+b combines")
	steps := fs.Int("steps", 3000, "training steps of each run")
	seeds := fs.Int("seeds", 3, "runs per technique, seeds 1..N (weights, batches, sample noise)")
	n := fs.Int("n", 2000, "samples each evaluation scores")
	asJSON := fs.Bool("json", false, "print one JSON line per technique")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *steps < 1 || *seeds < 1 {
		return errors.New("--steps and --seeds must be at least 1")
	}
	data, err := project.LoadMNIST()
	if err != nil {
		return err
	}
	ev, err := training.MNISTEvaluator()
	if err != nil {
		return err
	}
	defer ev.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var rows []*studyRow
	for _, tech := range strings.Split(*techniques, ",") {
		tech = strings.TrimSpace(tech)
		row := &studyRow{Technique: tech, Steps: *steps, N: *n, extra: map[string][]float64{}}
		for s := 1; s <= *seeds; s++ {
			seed := uint64(s)
			cfg, err := studyConfig(*family, *arch, tech, seed)
			if err != nil {
				return err
			}
			m, err := models.New(*family, cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", tech, err)
			}
			start := time.Now()
			if err := trainQuietly(ctx, m, data, *steps, seed); err != nil {
				m.Close()
				return fmt.Errorf("%s, seed %d: %w", tech, seed, err)
			}
			row.Seconds += time.Since(start).Seconds()
			r, err := training.EvaluateModel(ctx, m, nil, training.EvalOptions{N: *n, Seed: seed, Evaluator: ev, Train: data})
			m.Close()
			if err != nil {
				return fmt.Errorf("%s, seed %d: %w", tech, seed, err)
			}
			r.Source = fmt.Sprintf("study %s seed %d", tech, seed)
			row.Model, row.Reports, row.Seeds = r.Model, append(row.Reports, r), append(row.Seeds, seed)
			for _, k := range studyKeys {
				row.extra[k] = append(row.extra[k], metricValue(k, r))
			}
			fmt.Fprintf(os.Stderr, "%s seed %d: FID %.1f IS %.2f recall %.3f classes %d (%.0f s training)\n",
				tech, seed, r.FID, r.IS, r.Recall, r.ClassCoverage, time.Since(start).Seconds())
		}
		row.Mean, row.Std = map[string]float64{}, map[string]float64{}
		for _, k := range studyKeys {
			row.Mean[k], row.Std[k] = meanStd(row.extra[k])
		}
		rows = append(rows, row)
		if *asJSON {
			b, err := json.Marshal(row)
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		}
	}
	if !*asJSON {
		fmt.Print(studyTable(rows))
	}
	return nil
}

// trainQuietly trains m for steps steps with the worker, no files.
func trainQuietly(ctx context.Context, m models.Model, data *project.Dataset, steps int, seed uint64) error {
	w, err := training.NewWorker(m, data, training.Options{Steps: steps, Seed: seed, PreviewPeriod: time.Hour, ProgressPeriod: time.Hour})
	if err != nil {
		return err
	}
	w.Start(ctx)
	for range w.Events() {
	}
	return w.Wait()
}

func metricValue(key string, r *training.Report) float64 { return training.MetricByKey(key).Value(r) }

// meanStd is the mean and the sample standard deviation (0 for one value).
func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}

// studyTable is the Markdown table of the rows: mean ± std over the seeds.
func studyTable(rows []*studyRow) string {
	var b strings.Builder
	b.WriteString("| technique | model | steps | seeds | N |")
	for _, k := range studyKeys {
		b.WriteString(" " + k + " |")
	}
	b.WriteString("\n|---|---|---|---|---|" + strings.Repeat("---|", len(studyKeys)) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |", r.Technique, r.Model, r.Steps, len(r.Seeds), r.N)
		for _, k := range studyKeys {
			fmt.Fprintf(&b, " %s ± %s |", training.FormatNumber(r.Mean[k]), training.FormatNumber(r.Std[k]))
		}
		b.WriteString("\n")
	}
	return b.String()
}
