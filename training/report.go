package training

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// MetricInfo describes one number of a Report for people: the Evaluate
// tab's cards, the CLI's table and the Compare view read it.
type MetricInfo struct {
	Key   string // the Report's JSON name
	Title string
	Help  string // one line: what it measures, which way is better
	// Value and Std read the number (Std nil: none).
	Value func(*Report) float64
	Std   func(*Report) float64
	// Lower is set when lower is better.
	Lower bool
}

// Metrics lists the Report's numbers in the order they are shown.
var Metrics = []MetricInfo{
	{Key: "fid", Title: "FID", Lower: true, Help: "Fréchet distance of evaluator features to the real images; lower is better",
		Value: func(r *Report) float64 { return r.FID }},
	{Key: "kid", Title: "KID", Lower: true, Help: "kernel (MMD²) distance of features, unbiased; lower is better, 0 = real",
		Value: func(r *Report) float64 { return r.KID }, Std: func(r *Report) float64 { return r.KIDStd }},
	{Key: "is", Title: "Inception Score", Help: "confident and varied class predictions; higher is better, at most the classes",
		Value: classed(func(r *Report) float64 { return r.IS }), Std: classed(func(r *Report) float64 { return r.ISStd })},
	{Key: "precision", Title: "Precision", Help: "share of samples that look like real images (k = 3); higher is better",
		Value: func(r *Report) float64 { return r.Precision }},
	{Key: "recall", Title: "Recall", Help: "share of real images the samples reach (k = 3); higher is more diverse",
		Value: func(r *Report) float64 { return r.Recall }},
	{Key: "density", Title: "Density", Help: "how many real neighbourhoods hold each sample (k = 5); about 1 for real data",
		Value: func(r *Report) float64 { return r.Density }},
	{Key: "coverage", Title: "Coverage", Help: "share of real images with a sample nearby (k = 5); higher is more diverse",
		Value: func(r *Report) float64 { return r.Coverage }},
	{Key: "ms_ssim", Title: "MS-SSIM", Lower: true, Help: "mean similarity of sample pairs; lower is more diverse, compare with real",
		Value: func(r *Report) float64 { return r.MSSSIM }},
	{Key: "class_coverage", Title: "Class coverage", Help: "classes with ≥ 0.5 % of the samples among confident ones; higher is better",
		Value: classed(func(r *Report) float64 { return float64(r.ClassCoverage) })},
	{Key: "confident", Title: "Confident", Help: "share of samples the evaluator classifies with p > 0.9; higher is clearer",
		Value: classed(func(r *Report) float64 { return r.Confident })},
	{Key: "class_kl", Title: "Class KL", Lower: true, Help: "KL of the predicted class histogram to the real one; lower is better",
		Value: classed(func(r *Report) float64 { return r.ClassKL })},
	{Key: "memorized", Title: "Memorized", Lower: true, Help: "share of samples that are near-copies of a training image (RMS < 0.05)",
		Value: func(r *Report) float64 { return r.Memorized }},
	{Key: "novelty_median_rms", Title: "Novelty", Help: "median RMS pixel distance of a sample to its nearest training image",
		Value: func(r *Report) float64 { return r.NoveltyMedian }},
}

// MetricByKey is the metric of a Report's JSON key; an unknown key reads
// as NaN ("—") under its key.
func MetricByKey(k string) MetricInfo {
	for _, m := range Metrics {
		if m.Key == k {
			return m
		}
	}
	return MetricInfo{Key: k, Title: k, Value: func(*Report) float64 { return math.NaN() }}
}

// classed reads a number that needs class probabilities: NaN ("—") for
// a report of an evaluator without classes (an autoencoder).
func classed(f func(*Report) float64) func(*Report) float64 {
	return func(r *Report) float64 {
		if r.Classes == 0 {
			return math.NaN()
		}
		return f(r)
	}
}

// reference is the real-data figure shown beside a sample's: MS-SSIM's own
// real pairs when there is no reference row.
func (m MetricInfo) reference(r, real *Report) float64 {
	switch {
	case real != nil:
		return m.Value(real)
	case m.Key == "ms_ssim":
		return r.MSSSIMReal
	}
	return math.NaN()
}

// FormatNumber prints a metric with 4 significant digits.
func FormatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 0):
		return "∞"
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// FormatReports is the CLI's table of r, with the real-data reference row
// real beside it when not nil.
func FormatReports(r, real *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nN = %d, seed %d, evaluator %s, against %s\n", r.Source, r.N, r.Seed, r.Evaluator, r.Reference)
	head := "real data"
	if real != nil {
		head = "real test set"
	}
	fmt.Fprintf(&b, "%-16s %-18s %-14s\n", "metric", "samples", head)
	for _, m := range Metrics {
		v := FormatNumber(m.Value(r))
		ref := FormatNumber(m.reference(r, real))
		if m.Std != nil {
			v += " ± " + FormatNumber(m.Std(r))
			if real != nil {
				ref += " ± " + FormatNumber(m.Std(real))
			}
		}
		fmt.Fprintf(&b, "%-16s %-18s %-14s\n", m.Title, v, ref)
	}
	fmt.Fprintf(&b, "class histogram  %s\n", formatShares(r.ClassHistogram))
	fmt.Fprintf(&b, "real histogram   %s\n", formatShares(r.RealHistogram))
	fmt.Fprintf(&b, "took %.1f s", r.Seconds)
	if real != nil {
		fmt.Fprintf(&b, " (reference row %.1f s)", real.Seconds)
	}
	b.WriteString("\n")
	return b.String()
}

func formatShares(h []float64) string {
	parts := make([]string, len(h))
	for i, v := range h {
		parts[i] = fmt.Sprintf("%d:%.1f%%", i, 100*v)
	}
	return strings.Join(parts, " ")
}

// EvalsFile is the name of a run folder's file of evaluations, one Report
// a line (the Compare view reads them back).
const EvalsFile = "evals.jsonl"

// AppendEval adds r as one JSON line to the evaluations file path.
func AppendEval(path string, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("recording the evaluation: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("recording the evaluation: %w", err)
	}
	return f.Close()
}

// ReadEvals reads an evaluations file; a line that is not a Report (a
// file cut short by a full disk) is skipped, a missing file is no error.
func ReadEvals(path string) ([]*Report, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Report
	for _, line := range strings.Split(string(b), "\n") {
		var r Report
		if strings.TrimSpace(line) == "" || json.Unmarshal([]byte(line), &r) != nil || r.N == 0 {
			continue
		}
		out = append(out, &r)
	}
	return out, nil
}
