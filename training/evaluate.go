package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training/metrics"
)

// The metrics' fixed settings, those of the reference implementations
// (see package metrics).
const (
	KIDSubsets     = 100  // torch-fidelity's kid_subsets
	KIDSubsetSize  = 1000 // torch-fidelity's kid_subset_size, clipped to N/2 (so that subsets differ and the ± means something)
	ISSplits       = 10
	PRNeighbours   = 3 // Kynkäänniemi et al.
	DCNeighbours   = 5 // Naeem et al.
	MSSSIMPairs    = 5000
	ConfidentProb  = 0.9
	ClassMinShare  = 0.005
	NoveltyPairs   = 8 // closest sample–training pairs kept for display
	DefaultEvalN   = 10000
	MinEvalN       = 2 * FeatureDim // FID needs more samples than features
	MaxEvalN       = 50000
	nearCopyRMSMax = 0.05
)

// NearCopyRMS is the memorisation threshold: a sample is a near-copy of a
// training image when the root-mean-square difference of their pixels
// (values in [0, 1]) is below it. A stroke moved by one pixel already
// differs by more.
const NearCopyRMS = nearCopyRMSMax

// Report is one evaluation: every metric with what it was computed on.
// Its JSON is what `genstudio eval --json` prints.
type Report struct {
	// Source says what was scored: "checkpoint FILE (step S)", "images PATH".
	Source    string `json:"source"`
	Model     string `json:"model,omitempty"` // "family/arch" of a scored model
	Step      int    `json:"step,omitempty"`
	N         int    `json:"n"`
	Seed      uint64 `json:"seed"`
	Evaluator string `json:"evaluator"`
	Reference string `json:"reference"` // the real images the samples are compared with

	FID        float64 `json:"fid"`
	KID        float64 `json:"kid"`
	KIDStd     float64 `json:"kid_std"`
	IS         float64 `json:"is"`
	ISStd      float64 `json:"is_std"`
	MSSSIM     float64 `json:"ms_ssim"`
	MSSSIMReal float64 `json:"ms_ssim_real"`
	Precision  float64 `json:"precision"`
	Recall     float64 `json:"recall"`
	Density    float64 `json:"density"`
	Coverage   float64 `json:"coverage"`

	ClassCoverage  int       `json:"class_coverage"`
	Classes        int       `json:"classes"`
	Confident      float64   `json:"confident"`
	ClassKL        float64   `json:"class_kl"`
	ClassHistogram []float64 `json:"class_histogram"`
	RealHistogram  []float64 `json:"real_class_histogram"`

	// Memorized is the share of samples within NearCopyRMS of a training
	// image; NoveltyMedian the median RMS distance of a sample to its
	// nearest training image.
	Memorized          float64 `json:"memorized"`
	MemorizedThreshold float64 `json:"memorized_rms_threshold"`
	NoveltyMedian      float64 `json:"novelty_median_rms"`

	Seconds float64 `json:"seconds"`

	// Shape is the images' shape (not in the JSON).
	Shape models.ImageShape `json:"-"`

	// Closest are the NoveltyPairs samples nearest to a training image,
	// closest first, with both images (for display; not in the JSON).
	Closest []NoveltyPair `json:"-"`
}

// NoveltyPair is a sample beside its nearest training image.
type NoveltyPair struct {
	Sample, Train []float32 // pixels in [0, 1]
	TrainIndex    int
	RMS           float64
}

// EvalOptions configures an evaluation.
type EvalOptions struct {
	N         int    // samples scored (and real images drawn for the comparison)
	Seed      uint64 // the noise of the samples, and every random choice of the metrics
	Evaluator *Evaluator
	// Train is the real data: N of its images (drawn by Seed) are the
	// reference of FID, KID, PR, DC, MS-SSIM and the class histogram, and
	// all of it is searched for near-copies.
	Train *project.Dataset
	// Progress, when set, is told each stage ("sampling", "features",
	// "metrics") with the work done so far; the metrics end with done ==
	// total.
	Progress func(stage string, done, total int)
}

func (o EvalOptions) progress(stage string, done, total int) {
	if o.Progress != nil {
		o.Progress(stage, done, total)
	}
}

func (o EvalOptions) check(shape models.ImageShape) error {
	if o.Evaluator == nil || o.Train == nil {
		return errors.New("evaluate: no evaluator or no training set")
	}
	if o.N < MinEvalN || o.N > MaxEvalN {
		return fmt.Errorf("evaluate: N = %d; the metrics need %d to %d samples (FID needs more samples than its %d features)", o.N, MinEvalN, MaxEvalN, FeatureDim)
	}
	i := o.Evaluator.Info
	if shape.Width != i.Width || shape.Height != i.Height || shape.Channels != i.Channels {
		return fmt.Errorf("evaluate: the images are %dx%dx%d but evaluator %s takes %dx%dx%d", shape.Width, shape.Height, shape.Channels, o.Evaluator.ID(), i.Width, i.Height, i.Channels)
	}
	if o.Train.Width != i.Width || o.Train.Height != i.Height || o.Train.C() != i.Channels {
		return fmt.Errorf("evaluate: the training set is %dx%dx%d but evaluator %s takes %dx%dx%d", o.Train.Width, o.Train.Height, o.Train.C(), o.Evaluator.ID(), i.Width, i.Height, i.Channels)
	}
	if o.Train.Len() < o.N {
		return fmt.Errorf("evaluate: N = %d but the training set has only %d images", o.N, o.Train.Len())
	}
	return nil
}

// EvaluateModel samples opts.N images from m with noise from opts.Seed (the
// noise `genstudio sample --seed` uses; sample options as SampleImages,
// nil for the model's own) and scores them.
func EvaluateModel(ctx context.Context, m models.Model, sampleOpts *models.SampleOptions, opts EvalOptions) (*Report, error) {
	if err := opts.check(m.Shape()); err != nil {
		return nil, err
	}
	start := time.Now()
	images, err := SampleForEval(ctx, m, sampleOpts, opts.N, opts.Seed, opts.Progress)
	if err != nil {
		return nil, err
	}
	r, err := EvaluateImages(ctx, images, m.Shape(), opts)
	if err != nil {
		return nil, err
	}
	r.Model, r.Step, r.Seconds = ModelName(m), m.OptimizerStep(), time.Since(start).Seconds()
	return r, nil
}

// SampleForEval draws the n samples an evaluation of m with this seed
// scores, 500 at a time (progress gets "sampling" after each).
func SampleForEval(ctx context.Context, m models.Model, sampleOpts *models.SampleOptions, n int, seed uint64, progress func(string, int, int)) ([]float32, error) {
	const chunk = 500
	dim := m.NoiseDim()
	z := models.NoiseFromSeed(n, dim, seed)
	images := make([]float32, 0, n*m.Shape().Size())
	for lo := 0; lo < n; lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(n, lo+chunk)
		s, err := models.SampleImages(m, z[lo*dim:hi*dim], sampleOpts, nil)
		if err != nil {
			return nil, fmt.Errorf("evaluate: sampling: %w", err)
		}
		images = append(images, s...)
		if progress != nil {
			progress("sampling", hi, n)
		}
	}
	return images, nil
}

// ModelName is "family/arch" of m, e.g. "gan/conv".
func ModelName(m models.Model) string {
	var c struct {
		Arch string `json:"arch"`
	}
	if b, err := json.Marshal(m.Config()); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	if c.Arch == "" {
		c.Arch = "mlp"
	}
	return m.Family() + "/" + c.Arch
}

// EvaluateImages scores images (values in [0, 1], shape.Size() each, at
// least opts.N of them; the first opts.N are used) against opts.Train.
func EvaluateImages(ctx context.Context, images []float32, shape models.ImageShape, opts EvalOptions) (*Report, error) {
	if err := opts.check(shape); err != nil {
		return nil, err
	}
	size := shape.Size()
	if len(images) < opts.N*size {
		return nil, fmt.Errorf("evaluate: %d images, N is %d", len(images)/size, opts.N)
	}
	for _, v := range images[:opts.N*size] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errors.New("evaluate: the images hold NaN or infinite values")
		}
	}
	start := time.Now()
	n, ev := opts.N, opts.Evaluator
	fake := images[:n*size]
	rng := rand.New(rand.NewPCG(opts.Seed, 0xe7a1))
	pick := rng.Perm(opts.Train.Len())[:n]
	sort.Ints(pick)
	real := make([]float32, n*size)
	for i, j := range pick {
		for k, v := range opts.Train.Pixels[j*size : (j+1)*size] {
			real[i*size+k] = float32(v) / 255
		}
	}
	embedAll := func(x []float32, from int) ([]float32, []float32, error) {
		return ev.Embed(ctx, x, func(done, _ int) { opts.progress("features", from+done, 2*n) })
	}
	ff, fp, err := embedAll(fake, 0)
	if err != nil {
		return nil, err
	}
	rf, rp, err := embedAll(real, n)
	if err != nil {
		return nil, err
	}
	r := &Report{N: n, Seed: opts.Seed, Evaluator: ev.ID(), Reference: fmt.Sprintf("%d images of %s", n, opts.Train.Name),
		Classes: ev.Classes(), MemorizedThreshold: NearCopyRMS, Shape: shape}
	const stages = 6
	stage := 0
	next := func() error {
		stage++
		opts.progress("metrics", stage, stages)
		return ctx.Err()
	}
	d := FeatureDim
	if r.FID, err = metrics.FID(rf, ff, d); err != nil {
		return nil, err
	}
	if err := next(); err != nil {
		return nil, err
	}
	if r.KID, r.KIDStd, err = metrics.KID(rf, ff, d, KIDSubsets, min(KIDSubsetSize, n/2), rand.New(rand.NewPCG(opts.Seed, 1))); err != nil {
		return nil, err
	}
	if err := next(); err != nil {
		return nil, err
	}
	k := ev.Classes()
	if k > 0 { // an autoencoder has no classes
		if r.IS, r.ISStd, err = metrics.InceptionScore(fp, k, ISSplits); err != nil {
			return nil, err
		}
	}
	pr, err := metrics.ComputePRDC(rf, ff, d, PRNeighbours, DCNeighbours)
	if err != nil {
		return nil, err
	}
	r.Precision, r.Recall, r.Density, r.Coverage = pr.Precision, pr.Recall, pr.Density, pr.Coverage
	if err := next(); err != nil {
		return nil, err
	}
	w, h, c := shape.Width, shape.Height, shape.Channels
	pairs := min(MSSSIMPairs, n*(n-1)/2)
	if r.MSSSIM, err = metrics.MeanMSSSIM(fake, w, h, c, pairs, rand.New(rand.NewPCG(opts.Seed, 2))); err != nil {
		return nil, err
	}
	if r.MSSSIMReal, err = metrics.MeanMSSSIM(real, w, h, c, pairs, rand.New(rand.NewPCG(opts.Seed, 2))); err != nil {
		return nil, err
	}
	if err := next(); err != nil {
		return nil, err
	}
	if k > 0 {
		realStats, err := metrics.Classes(rp, k, nil, ConfidentProb, ClassMinShare)
		if err != nil {
			return nil, err
		}
		st, err := metrics.Classes(fp, k, realStats.Histogram, ConfidentProb, ClassMinShare)
		if err != nil {
			return nil, err
		}
		r.ClassCoverage, r.Confident, r.ClassKL = st.Coverage, st.Confident, st.KL
		r.ClassHistogram, r.RealHistogram = st.Histogram, realStats.Histogram
	}
	if err := next(); err != nil {
		return nil, err
	}
	if err := novelty(ctx, r, fake, opts.Train, size, opts); err != nil {
		return nil, err
	}
	if err := next(); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// novelty finds each sample's nearest training image in pixel space.
func novelty(ctx context.Context, r *Report, fake []float32, train *project.Dataset, size int, opts EvalOptions) error {
	// The training images are searched 8,192 at a time, so that their
	// float copy stays small (MNIST's whole set would be 188 MB).
	const chunk = 8192
	n := len(fake) / size
	idx, dist := make([]int, n), make([]float32, n)
	for i := range dist {
		dist[i] = float32(math.Inf(1))
	}
	for lo := 0; lo < train.Len(); lo += chunk {
		hi := min(train.Len(), lo+chunk)
		ci, cd, err := metrics.Nearest(fake, Pixels01(train.Pixels[lo*size:hi*size]), size)
		if err != nil {
			return err
		}
		for i, d := range cd {
			if d < dist[i] { // ties keep the earlier image, as one search would
				dist[i], idx[i] = d, lo+ci[i]
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	rms := make([]float64, n)
	near := 0
	for i, v := range dist {
		rms[i] = float64(v) / math.Sqrt(float64(size))
		if rms[i] < NearCopyRMS {
			near++
		}
	}
	r.Memorized = float64(near) / float64(n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rms[a] < rms[b]:
			return -1
		case rms[a] > rms[b]:
			return 1
		}
		return 0
	})
	r.NoveltyMedian = rms[order[n/2]]
	for _, i := range order[:min(NoveltyPairs, n)] {
		j := idx[i]
		r.Closest = append(r.Closest, NoveltyPair{
			Sample: slices.Clone(fake[i*size : (i+1)*size]), Train: Pixels01(train.Pixels[j*size : (j+1)*size]),
			TrainIndex: j, RMS: rms[i],
		})
	}
	return nil
}
