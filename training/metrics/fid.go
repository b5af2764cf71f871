package metrics

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/genstudio/genstudio/models/nn"
)

// FID is the Fréchet distance between the Gaussians fitted to the rows of
// real and fake (each n×d, row-major), as torch-fidelity's metric_fid.py
// (after TTUR's fid.py) defines it: the means, the unbiased covariances
// (n−1, numpy's np.cov), then FrechetGaussian. Means and covariances
// accumulate in float64.
//
// FID refuses a set with n <= d, whose covariance is singular and whose
// FID is mostly bias, and inputs that are malformed or hold NaN or ±Inf.
// Lower is better; FID is biased upwards at small n, so report n with it.
func FID(real, fake []float32, d int) (float64, error) {
	nr, err := rows("FID real features", real, d)
	if err != nil {
		return 0, err
	}
	nf, err := rows("FID fake features", fake, d)
	if err != nil {
		return 0, err
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"real", nr}, {"fake", nf}} {
		if s.n <= d {
			return 0, fmt.Errorf("FID needs more samples than feature dimensions: N=%d, D=%d (%s set)", s.n, d, s.name)
		}
	}
	mu1, s1 := gaussianFit(real, d)
	mu2, s2 := gaussianFit(fake, d)
	fid, err := FrechetGaussian(mu1, mu2, s1, s2)
	if err != nil {
		return 0, fmt.Errorf("FID: %w", err)
	}
	return fid, nil
}

// GaussianFit is the mean and the unbiased (n−1) covariance of the rows of
// x (n×d, row-major, n >= 2), in float64, as FID fits them; with
// FrechetGaussian it lets a caller fit the real set once and keep it.
func GaussianFit(x []float32, d int) (mu []float64, cov *mat.SymDense, err error) {
	n, err := rows("Gaussian fit", x, d)
	if err != nil {
		return nil, nil, err
	}
	if n < 2 {
		return nil, nil, fmt.Errorf("Gaussian fit: needs at least 2 samples, got %d", n)
	}
	mu, cov = gaussianFit(x, d)
	return mu, cov, nil
}

// gaussianFit is GaussianFit without the checks, as numpy's mean(axis=0)
// and cov(rowvar=False): two passes (the mean, then the centred products),
// the products as float64 GEMMs over blocks of rows so that memory stays
// near 8 MB whatever n.
func gaussianFit(x []float32, d int) ([]float64, *mat.SymDense) {
	n := len(x) / d
	mu := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			mu[j] += float64(v)
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	cov := make([]float64, d*d)
	chunk := max(1, (1<<20)/d)
	buf := make([]float64, min(chunk, n)*d)
	beta := 0.0
	for i0 := 0; i0 < n; i0 += chunk {
		r := min(chunk, n-i0)
		xc := buf[:r*d]
		for i := 0; i < r; i++ {
			row := x[(i0+i)*d : (i0+i+1)*d]
			for j, v := range row {
				xc[i*d+j] = float64(v) - mu[j]
			}
		}
		nn.Gemm(true, false, d, d, r, xc, d, xc, d, beta, cov, d)
		beta = 1
	}
	den := float64(n - 1)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			v := (cov[i*d+j] + cov[j*d+i]) / 2 / den
			cov[i*d+j], cov[j*d+i] = v, v
		}
	}
	return mu, mat.NewSymDense(d, cov)
}

// FrechetGaussian is the Fréchet (2-Wasserstein²) distance between
// N(mu1, s1) and N(mu2, s2):
//
//	‖mu1 − mu2‖² + Tr(s1) + Tr(s2) − 2·Tr((s1·s2)^½).
//
// torch-fidelity takes the trace term as the sum of the square roots of
// the eigenvalues of s1·s2 (real parts). FrechetGaussian takes the same
// eigenvalues by a symmetric route: s1^½ from EigenSym (negative
// eigenvalues clamped to 0), then the eigenvalues of the symmetric PSD
// matrix s1^½·s2·s1^½, which are those of s1·s2, each clamped at 0 before
// its square root (torch-fidelity's complex square root of a small
// negative eigenvalue has real part 0 too). A result below 0, which only
// rounding can give, is returned as 0.
func FrechetGaussian(mu1, mu2 []float64, s1, s2 *mat.SymDense) (float64, error) {
	d := len(mu1)
	switch {
	case d == 0:
		return 0, fmt.Errorf("Fréchet distance: empty mean")
	case len(mu2) != d:
		return 0, fmt.Errorf("Fréchet distance: means have lengths %d and %d", d, len(mu2))
	case s1 == nil || s2 == nil:
		return 0, fmt.Errorf("Fréchet distance: nil covariance")
	case s1.SymmetricDim() != d || s2.SymmetricDim() != d:
		return 0, fmt.Errorf("Fréchet distance: covariances are %d×%d and %d×%d for means of length %d",
			s1.SymmetricDim(), s1.SymmetricDim(), s2.SymmetricDim(), s2.SymmetricDim(), d)
	}
	a, b := denseSym(s1), denseSym(s2)
	var diff, tr1, tr2 float64
	for i := 0; i < d; i++ {
		diff += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i])
		tr1 += a[i*d+i]
		tr2 += b[i*d+i]
	}
	if !isFinite(diff) || !isFinite(sumAll(a)) || !isFinite(sumAll(b)) {
		return 0, fmt.Errorf("Fréchet distance: means or covariances hold NaN or ±Inf")
	}
	var eig mat.EigenSym
	if !eig.Factorize(s1, true) {
		return 0, fmt.Errorf("Fréchet distance: eigendecomposition of the first covariance did not converge")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	// s1^½ = V·diag(√λ)·Vᵀ = w·Vᵀ.
	v := make([]float64, d*d)
	w := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			v[i*d+j] = vecs.At(i, j)
			w[i*d+j] = v[i*d+j] * math.Sqrt(max(vals[j], 0))
		}
	}
	root := make([]float64, d*d)
	nn.Gemm(false, true, d, d, d, w, d, v, d, 0, root, d)
	t := make([]float64, d*d)
	nn.Gemm(false, false, d, d, d, root, d, b, d, 0, t, d)
	m := make([]float64, d*d)
	nn.Gemm(false, false, d, d, d, t, d, root, d, 0, m, d)
	for i := 0; i < d; i++ {
		for j := i + 1; j < d; j++ {
			v := (m[i*d+j] + m[j*d+i]) / 2
			m[i*d+j], m[j*d+i] = v, v
		}
	}
	if !eig.Factorize(mat.NewSymDense(d, m), false) {
		return 0, fmt.Errorf("Fréchet distance: eigendecomposition of s1^½·s2·s1^½ did not converge")
	}
	var trRoot float64
	for _, v := range eig.Values(nil) {
		trRoot += math.Sqrt(max(v, 0))
	}
	return max(diff+tr1+tr2-2*trRoot, 0), nil
}

// denseSym copies s into a full row-major d×d slice.
func denseSym(s *mat.SymDense) []float64 {
	d := s.SymmetricDim()
	out := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			v := s.At(i, j)
			out[i*d+j], out[j*d+i] = v, v
		}
	}
	return out
}

func sumAll(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
