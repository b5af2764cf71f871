package metrics

import (
	"fmt"
	"math"
)

// probTolerance is how far a row of probabilities may sum from 1 before
// it is refused; accepted rows are divided by their sum.
const probTolerance = 1e-3

// InceptionScore is exp(E_x KL(p(y|x) ‖ p(y))) as torch-fidelity's
// metric_isc.py and the original (Salimans et al. 2016) compute it: probs
// is n×k class probabilities, row-major; the rows are cut into splits
// contiguous parts (part i is rows i·n/splits up to (i+1)·n/splits, 10
// parts in both references), p(y) is each part's mean row, and the score
// is the mean and the population standard deviation (ddof 0, np.std, as
// both references) of the parts' scores. torch-fidelity shuffles the rows
// first (seed 2020); InceptionScore does not, so shuffle them if their
// order is not random. Each row must be non-negative and sum to 1 within
// 1e-3 (it is then renormalised); 0·log 0 counts as 0. Higher is better:
// 1 for constant predictions, k for confident predictions spread evenly
// over the k classes.
func InceptionScore(probs []float32, k, splits int) (mean, std float64, err error) {
	n, err := rows("Inception Score probabilities", probs, k)
	if err != nil {
		return 0, 0, err
	}
	if splits < 1 || splits > n {
		return 0, 0, fmt.Errorf("Inception Score: splits must be between 1 and the %d samples, got %d", n, splits)
	}
	if err := checkProbs("Inception Score", probs, k); err != nil {
		return 0, 0, err
	}
	p := make([]float64, n*k)
	for i := 0; i < n; i++ {
		row := probs[i*k : (i+1)*k]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		for j, v := range row {
			p[i*k+j] = float64(v) / s
		}
	}
	scores := make([]float64, splits)
	py := make([]float64, k)
	for s := range scores {
		lo, hi := s*n/splits, (s+1)*n/splits
		clear(py)
		for i := lo; i < hi; i++ {
			for j := 0; j < k; j++ {
				py[j] += p[i*k+j]
			}
		}
		for j := range py {
			py[j] /= float64(hi - lo)
		}
		var kl float64
		for i := lo; i < hi; i++ {
			for j, v := range p[i*k : (i+1)*k] {
				if v > 0 {
					kl += v * (math.Log(v) - math.Log(py[j]))
				}
			}
		}
		scores[s] = math.Exp(kl / float64(hi-lo))
	}
	mean, std = meanStd(scores)
	return mean, std, nil
}

// checkProbs refuses rows of probs (rows of length k, already finite) with
// a negative value or a sum more than probTolerance from 1.
func checkProbs(name string, probs []float32, k int) error {
	for i := 0; i < len(probs)/k; i++ {
		var s float64
		for j, v := range probs[i*k : (i+1)*k] {
			if v < 0 {
				return fmt.Errorf("%s: negative probability %v at row %d, class %d", name, v, i, j)
			}
			s += float64(v)
		}
		if math.Abs(s-1) > probTolerance {
			return fmt.Errorf("%s: row %d sums to %v, not 1 (pass probabilities, not logits)", name, i, s)
		}
	}
	return nil
}
