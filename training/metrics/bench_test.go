package metrics_test

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/genstudio/genstudio/training/metrics"
)

// TestPRDCReadmeAnchor checks ComputePRDC against the prdc README's
// figures: two independent sets of 10,000 points from N(0, I) in 1,000
// dimensions, k = 5 for all four, give precision 0.4772, recall 0.4705,
// density 1.0555, coverage 0.9735 (one draw of theirs, so the tolerance
// covers sampling). About 5 s on 2 cores: set GENSTUDIO_PRDC_ANCHOR=1 to
// run it.
func TestPRDCReadmeAnchor(t *testing.T) {
	if os.Getenv("GENSTUDIO_PRDC_ANCHOR") == "" {
		t.Skip("set GENSTUDIO_PRDC_ANCHOR=1 to run the 10,000×1,000 anchor")
	}
	rng := rand.New(rand.NewPCG(2020, 1))
	const n, d = 10000, 1000
	real := gaussian(rng, n, zeros(d), nil)
	fake := gaussian(rng, n, zeros(d), nil)
	start := time.Now()
	got, err := metrics.ComputePRDC(real, fake, d, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v in %v", got, time.Since(start))
	near(t, "precision", got.Precision, 0.4772, 0.02)
	near(t, "recall", got.Recall, 0.4705, 0.02)
	near(t, "density", got.Density, 1.0555, 0.03)
	near(t, "coverage", got.Coverage, 0.9735, 0.01)
}

// BenchmarkAll10k runs every metric at the evaluator's sizes: 10,000 real
// and 10,000 fake 128-d features (FID, KID with torch-fidelity's 100
// subsets of 1,000, PRDC with k 3 and 5), 10,000×10 class probabilities
// (IS with 10 splits, class statistics), 10,000 28×28 images (MS-SSIM
// over 20,160 pairs, compare_gan's count) and Nearest of 10,000 against
// 60,000 784-d images. Run it once:
//
//	go test -run XXX -bench All10k -benchtime 1x ./training/metrics/
func BenchmarkAll10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n, d, k = 10000, 128, 10
	real := gaussian(rng, n, zeros(d), nil)
	fake := gaussian(rng, n, filled(d, 0.1), nil)
	probs := make([]float32, n*k)
	for i := 0; i < n; i++ {
		var s float32
		for c := 0; c < k; c++ {
			v := float32(rng.ExpFloat64())
			if c == i%k {
				v += 20
			}
			probs[i*k+c] = v
			s += v
		}
		for c := 0; c < k; c++ {
			probs[i*k+c] /= s
		}
	}
	images := make([]float32, n*28*28)
	for i := range images {
		if rng.IntN(5) == 0 {
			images[i] = rng.Float32()
		}
	}
	refs := make([]float32, 60000*784)
	for i := range refs {
		if rng.IntN(5) == 0 {
			refs[i] = rng.Float32()
		}
	}
	total := time.Duration(0)
	run := func(name string, f func() error) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				start := time.Now()
				if err := f(); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
		})
	}
	run("FID", func() error { _, err := metrics.FID(real, fake, d); return err })
	run("KID", func() error {
		_, _, err := metrics.KID(real, fake, d, 100, 1000, rand.New(rand.NewPCG(1, 2)))
		return err
	})
	run("PRDC", func() error { _, err := metrics.ComputePRDC(real, fake, d, 3, 5); return err })
	run("InceptionScore", func() error { _, _, err := metrics.InceptionScore(probs, k, 10); return err })
	run("Classes", func() error {
		ref, err := metrics.Classes(probs, k, nil, 0.9, 0.005)
		if err != nil {
			return err
		}
		_, err = metrics.Classes(probs, k, ref.Histogram, 0.9, 0.005)
		return err
	})
	run("MeanMSSSIM", func() error {
		_, err := metrics.MeanMSSSIM(images, 28, 28, 1, 20160, rand.New(rand.NewPCG(3, 4)))
		return err
	})
	run("Nearest", func() error { _, _, err := metrics.Nearest(images, refs, 784); return err })
	b.Logf("all metrics: %v", total)
}
