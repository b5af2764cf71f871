package metrics

import (
	"fmt"
	"math"
)

// ModeStats is the mode-collapse protocol of VEEGAN and PacGAN on 2-D
// mixtures of Gaussians: Modes is the number of mixture modes captured (a
// mode is captured when some high-quality sample has it as its nearest
// mode) and HighQuality the share of samples within 3σ of their nearest
// mode. PacGAN scores 2,500 samples.
type ModeStats struct {
	Modes       int
	HighQuality float64
	Covered     []bool // per mode: captured
}

// ModeCoverage scores 2-D samples (x, y pairs) against the mixture's mode
// centres (x, y pairs), each a Gaussian of standard deviation sigma, by
// the protocol of ModeStats (PacGAN's extensions.py: the distance to the
// nearest centre, high quality when below 3σ).
func ModeCoverage(samples, centres []float32, sigma float64) (ModeStats, error) {
	if len(samples) == 0 || len(samples)%2 != 0 || len(centres) == 0 || len(centres)%2 != 0 {
		return ModeStats{}, fmt.Errorf("mode coverage: %d sample and %d centre values are not non-empty lists of (x, y) pairs", len(samples), len(centres))
	}
	if !(sigma > 0) {
		return ModeStats{}, fmt.Errorf("mode coverage: σ = %g", sigma)
	}
	k := len(centres) / 2
	captured := make([]bool, k)
	good := 0
	for i := 0; i < len(samples); i += 2 {
		x, y := float64(samples[i]), float64(samples[i+1])
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			return ModeStats{}, fmt.Errorf("mode coverage: sample %d is not finite", i/2)
		}
		best, bestD := 0, math.Inf(1)
		for j := 0; j < k; j++ {
			dx, dy := x-float64(centres[2*j]), y-float64(centres[2*j+1])
			if d := dx*dx + dy*dy; d < bestD {
				best, bestD = j, d
			}
		}
		if math.Sqrt(bestD) < 3*sigma {
			good++
			captured[best] = true
		}
	}
	st := ModeStats{HighQuality: float64(good) / float64(len(samples)/2), Covered: captured}
	for _, c := range captured {
		if c {
			st.Modes++
		}
	}
	return st, nil
}
