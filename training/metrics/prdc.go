package metrics

import (
	"fmt"
	"math"
	"sync"

	"github.com/genstudio/genstudio/models/nn"
)

// PRDC holds the four k-NN manifold metrics of ComputePRDC.
type PRDC struct {
	// Precision is the share of fake samples inside the real manifold
	// (Kynkäänniemi et al. 2019), higher is better.
	Precision float64
	// Recall is the share of real samples inside the fake manifold
	// (Kynkäänniemi et al. 2019), higher is better.
	Recall float64
	// Density counts the real k-NN balls around each fake sample, over k
	// (Naeem et al. 2020): about 1 when the distributions match.
	Density float64
	// Coverage is the share of real samples whose k-NN ball holds a fake
	// one (Naeem et al. 2020), higher is better.
	Coverage float64
}

// PrecisionRecall is the improved precision and recall of Kynkäänniemi et
// al. 2019 as torch-fidelity's metric_prc.py computes it (k = 3 there):
// the radius of a point is the Euclidean distance to its k-th nearest
// neighbour in its own set, the point itself left out; precision is the
// share of fake rows within (<=) the radius of some real row, recall the
// share of real rows within (<=) the radius of some fake row (prdc's
// compute_prdc uses a strict <; the two differ only on exact ties). Both
// sets need more than k rows.
func PrecisionRecall(real, fake []float32, d, k int) (precision, recall float64, err error) {
	m, err := computePRDC("PrecisionRecall", real, fake, d, k, 0, true, false, blockFloats)
	return m.Precision, m.Recall, err
}

// DensityCoverage is the density and coverage of Naeem et al. 2020 as the
// prdc package (clovaai/generative-evaluation-prdc, k = 5 in its README)
// computes them, with its strict inequalities: with r_i the distance from
// real row i to its k-th nearest other real row,
//
//	density  = (1/(k·M)) Σ_j Σ_i 1[‖fake_j − real_i‖ < r_i]
//	coverage = (1/N) Σ_i 1[min_j ‖fake_j − real_i‖ < r_i]
//
// for N real and M fake rows. real needs more than k rows. No fake-fake
// distances are computed.
func DensityCoverage(real, fake []float32, d, k int) (density, coverage float64, err error) {
	m, err := computePRDC("DensityCoverage", real, fake, d, 0, k, false, true, blockFloats)
	return m.Density, m.Coverage, err
}

// ComputePRDC is PrecisionRecall with k = kPR and DensityCoverage with
// k = kDC (3 and 5 by the references) from shared distances: one
// real-real pass gives the real radii for both k, one fake-fake pass the
// fake radii, and one real-fake pass all four counts, each pass in blocks
// of whole rows of at most 64 MB of float32 distances (1,664 rows of
// 10,000), as GEMMs. Distances are compared squared, after both sets are
// shifted by the real mean to keep float32 cancellation small.
func ComputePRDC(real, fake []float32, d, kPR, kDC int) (PRDC, error) {
	return computePRDC("PRDC", real, fake, d, kPR, kDC, true, true, blockFloats)
}

// computePRDC does the work of all three: precision and recall when
// wantPR, density and coverage when wantDC, distance blocks of at most
// budget values.
func computePRDC(name string, real, fake []float32, d, kPR, kDC int, wantPR, wantDC bool, budget int) (PRDC, error) {
	nr, err := rows(name+" real features", real, d)
	if err != nil {
		return PRDC{}, err
	}
	nf, err := rows(name+" fake features", fake, d)
	if err != nil {
		return PRDC{}, err
	}
	if wantPR {
		if kPR < 1 {
			return PRDC{}, fmt.Errorf("%s: precision/recall k must be at least 1, got %d", name, kPR)
		}
		if nr <= kPR || nf <= kPR {
			return PRDC{}, fmt.Errorf("%s: precision/recall with k=%d needs more than %d samples in each set, got %d real and %d fake",
				name, kPR, kPR, nr, nf)
		}
	}
	if wantDC {
		if kDC < 1 {
			return PRDC{}, fmt.Errorf("%s: density/coverage k must be at least 1, got %d", name, kDC)
		}
		if nr <= kDC {
			return PRDC{}, fmt.Errorf("%s: density/coverage with k=%d needs more than %d real samples, got %d", name, kDC, kDC, nr)
		}
	}

	c := centred(d, real, fake)
	rc, fc := c[0], c[1]
	rn, fn := sqNorms(rc, d), sqNorms(fc, d)
	var radPR, radDC, radFake []float32
	switch {
	case wantPR && wantDC:
		r := kthSelf(rc, rn, d, budget, kPR, kDC)
		radPR, radDC = r[0], r[1]
	case wantPR:
		radPR = kthSelf(rc, rn, d, budget, kPR)[0]
	default:
		radDC = kthSelf(rc, rn, d, budget, kDC)[0]
	}
	if wantPR {
		radFake = kthSelf(fc, fn, d, budget, kPR)[0]
	}

	var (
		mu       sync.Mutex
		precHit  = make([]bool, nf) // fake j inside some real ball (PR radius)
		inBalls  = make([]int, nf)  // real balls (DC radius) holding fake j
		recHit   = make([]bool, nr) // real i inside some fake ball
		covered  = make([]bool, nr) // real i's ball holds its nearest fake
		infinity = float32(math.Inf(1))
	)
	sqDistBlocks(rc, rn, fc, fn, d, budget, func(i0, i1 int, dist []float32) {
		nn.Parallel(i1-i0, nf, func(lo, hi int) {
			prec := make([]bool, nf)
			cnt := make([]int, nf)
			for i := lo; i < hi; i++ {
				row := dist[i*nf : (i+1)*nf]
				ri := i0 + i
				if wantPR {
					rad, hit := radPR[ri], false
					for j, v := range row {
						if v <= rad {
							prec[j] = true
						}
						if v <= radFake[j] {
							hit = true
						}
					}
					recHit[ri] = hit
				}
				if wantDC {
					rad, minv := radDC[ri], infinity
					for j, v := range row {
						if v < rad {
							cnt[j]++
						}
						minv = min(minv, v)
					}
					covered[ri] = minv < rad
				}
			}
			mu.Lock()
			for j := range prec {
				precHit[j] = precHit[j] || prec[j]
				inBalls[j] += cnt[j]
			}
			mu.Unlock()
		})
	})

	var out PRDC
	if wantPR {
		out.Precision = share(precHit)
		out.Recall = share(recHit)
	}
	if wantDC {
		total := 0
		for _, v := range inBalls {
			total += v
		}
		out.Density = float64(total) / float64(kDC*nf)
		out.Coverage = share(covered)
	}
	return out, nil
}

// share is the fraction of true values in b.
func share(b []bool) float64 {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(b))
}
