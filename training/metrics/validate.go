package metrics

import (
	"fmt"
	"math"
)

// blockFloats bounds the float32 values of one block of a distance matrix
// (64 MB), so that 10,000×10,000 or 256×60,000 distances are never held
// at once beyond it.
const blockFloats = 1 << 24

// rows checks that x is a non-empty row-major matrix with rows of length d
// and finite values, and returns its number of rows.
func rows(name string, x []float32, d int) (int, error) {
	if d <= 0 {
		return 0, fmt.Errorf("%s: feature dimension must be positive, got %d", name, d)
	}
	if len(x) == 0 {
		return 0, fmt.Errorf("%s: no samples", name)
	}
	if len(x)%d != 0 {
		return 0, fmt.Errorf("%s: length %d is not a multiple of the dimension %d", name, len(x), d)
	}
	if i := firstNonFinite(x); i >= 0 {
		return 0, fmt.Errorf("%s: value %v at row %d, column %d", name, x[i], i/d, i%d)
	}
	return len(x) / d, nil
}

// firstNonFinite is the index of the first NaN or ±Inf in x, or -1.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
			return i
		}
	}
	return -1
}

// meanStd is the mean and the population standard deviation (ddof 0, as
// numpy's np.std) of v.
func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)))
}
