package metrics

import (
	"fmt"
	"math"
)

// classEps smooths both histograms before their KL divergence, so that a
// class missing from one of them gives a large but finite value.
const classEps = 1e-6

// ClassStats describes which classes a classifier sees in a set of
// samples; Classes computes it.
type ClassStats struct {
	// Histogram is the share of samples whose most probable class (argmax,
	// the lowest index on a tie) is each class; it sums to 1.
	Histogram []float64
	// Confident is the share of samples whose largest probability is above
	// conf.
	Confident float64
	// Coverage is the number of classes c with
	// #{samples confident and of argmax c} / n >= minShare: shares of all
	// n samples, counting only the confident ones.
	Coverage int
	// KL is KL(Histogram ‖ refHist) in nats, both smoothed with ε = 1e-6
	// as h'_c = (h_c + ε)/(1 + kε); 0 when there is no reference.
	KL float64
}

// Classes computes ClassStats from classifier probabilities (n×k,
// row-major, each row non-negative and summing to 1 within 1e-3), with
// conf the confidence threshold (0.9 by default: a strict >), minShare
// the share of all samples a class needs among the confident ones to
// count as covered (0.005 by default: 50 of 10,000), and refHist the
// histogram of the real images (Classes of their probabilities; nil
// leaves KL at 0). No single reference defines these numbers: the mode
// count follows the classifier-based mode counting of Stacked MNIST (Metz
// et al. 2017, used by VEEGAN and PacGAN), where a mode counts when
// generated samples are classified as it, made robust here by asking for
// minShare of all samples with confidence above conf. Lower KL and higher
// Confident and Coverage are better.
func Classes(probs []float32, k int, refHist []float64, conf, minShare float64) (ClassStats, error) {
	n, err := rows("class statistics probabilities", probs, k)
	if err != nil {
		return ClassStats{}, err
	}
	if err := checkProbs("class statistics", probs, k); err != nil {
		return ClassStats{}, err
	}
	if !(conf >= 0 && conf < 1) {
		return ClassStats{}, fmt.Errorf("class statistics: confidence threshold must be in [0, 1), got %v", conf)
	}
	if !(minShare >= 0 && minShare <= 1) {
		return ClassStats{}, fmt.Errorf("class statistics: minimum share must be in [0, 1], got %v", minShare)
	}
	var ref []float64
	if refHist != nil {
		if len(refHist) != k {
			return ClassStats{}, fmt.Errorf("class statistics: reference histogram has %d classes, want %d", len(refHist), k)
		}
		var s float64
		for c, v := range refHist {
			if !(v >= 0) || math.IsInf(v, 0) {
				return ClassStats{}, fmt.Errorf("class statistics: reference histogram holds %v at class %d", v, c)
			}
			s += v
		}
		if math.Abs(s-1) > probTolerance {
			return ClassStats{}, fmt.Errorf("class statistics: reference histogram sums to %v, not 1", s)
		}
		ref = make([]float64, k)
		for c, v := range refHist {
			ref[c] = v / s
		}
	}

	counts := make([]int, k)
	confident := make([]int, k)
	nConf := 0
	for i := 0; i < n; i++ {
		row := probs[i*k : (i+1)*k]
		best := 0
		for c, v := range row {
			if v > row[best] {
				best = c
			}
		}
		counts[best]++
		if float64(row[best]) > conf {
			confident[best]++
			nConf++
		}
	}
	st := ClassStats{Histogram: make([]float64, k), Confident: float64(nConf) / float64(n)}
	for c := range counts {
		st.Histogram[c] = float64(counts[c]) / float64(n)
		if float64(confident[c])/float64(n) >= minShare {
			st.Coverage++
		}
	}
	if ref != nil {
		st.KL = smoothedKL(st.Histogram, ref)
	}
	return st, nil
}

// smoothedKL is KL(p ‖ q) in nats after p and q (each summing to 1) are
// smoothed as (v + classEps)/(1 + k·classEps).
func smoothedKL(p, q []float64) float64 {
	z := 1 + float64(len(p))*classEps
	var kl float64
	for c := range p {
		a, b := (p[c]+classEps)/z, (q[c]+classEps)/z
		kl += a * math.Log(a/b)
	}
	return max(kl, 0)
}
