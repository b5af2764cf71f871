package metrics

import (
	"fmt"
	"math/rand/v2"

	"github.com/genstudio/genstudio/models/nn"
)

// KID is the Kernel Inception Distance as torch-fidelity's metric_kid.py
// (after Bińkowski et al.'s MMD-GAN code) computes it: for each of
// subsets rounds, size rows drawn without replacement from each set give
// the unbiased MMD² estimate with the cubic polynomial kernel
// k(x, y) = (x·y/d + 1)³,
//
//	Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_{i,j} k(x_i, y_j)/m²,
//
// and KID is their mean and their population standard deviation (ddof 0,
// numpy's np.std, as torch-fidelity reports). torch-fidelity's defaults
// are 100 subsets of 1,000. Unlike torch-fidelity, which refuses sets
// smaller than the subset size, size is clipped to the smaller set (and
// must then be at least 2). rng draws the subsets (nil: a fixed seed, so
// that a result repeats); the products run as float64 GEMMs. Lower is
// better; small negative values are sampling noise around 0.
func KID(real, fake []float32, d, subsets, size int, rng *rand.Rand) (mean, std float64, err error) {
	nr, err := rows("KID real features", real, d)
	if err != nil {
		return 0, 0, err
	}
	nf, err := rows("KID fake features", fake, d)
	if err != nil {
		return 0, 0, err
	}
	if subsets < 1 {
		return 0, 0, fmt.Errorf("KID: needs at least 1 subset, got %d", subsets)
	}
	m := min(size, nr, nf)
	if m < 2 {
		return 0, 0, fmt.Errorf("KID: subsets need at least 2 samples, got size %d with %d real and %d fake", size, nr, nf)
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(0, 0))
	}
	permR, permF := indices(nr), indices(nf)
	x, y := make([]float64, m*d), make([]float64, m*d)
	k := make([]float64, m*m)
	rowSums := make([]float64, m)
	gamma := 1 / float64(d)
	// kernelSum is Σ k over the products in k, without the diagonal when
	// offDiag: per-row sums split over the cores, then added in order, so
	// that the result does not depend on the split.
	kernelSum := func(offDiag bool) float64 {
		nn.Parallel(m, m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				var s float64
				for j, v := range k[i*m : (i+1)*m] {
					if offDiag && i == j {
						continue
					}
					t := v*gamma + 1
					s += t * t * t
				}
				rowSums[i] = s
			}
		})
		return sumAll(rowSums)
	}
	mmds := make([]float64, subsets)
	for s := range mmds {
		gather(x, real, d, sample(permR, m, rng))
		gather(y, fake, d, sample(permF, m, rng))
		nn.Gemm(false, true, m, m, d, x, d, x, d, 0, k, m)
		sxx := kernelSum(true)
		nn.Gemm(false, true, m, m, d, y, d, y, d, 0, k, m)
		syy := kernelSum(true)
		nn.Gemm(false, true, m, m, d, x, d, y, d, 0, k, m)
		sxy := kernelSum(false)
		fm := float64(m)
		mmds[s] = (sxx+syy)/(fm*(fm-1)) - 2*sxy/(fm*fm)
	}
	mean, std = meanStd(mmds)
	return mean, std, nil
}

// indices is 0, 1, …, n−1.
func indices(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// sample shuffles the first m entries of perm (a partial Fisher–Yates,
// which from any permutation draws a uniform m-subset in random order) and
// returns them.
func sample(perm []int, m int, rng *rand.Rand) []int {
	for i := 0; i < m; i++ {
		j := i + rng.IntN(len(perm)-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:m]
}

// gather copies the rows idx of src (rows of length d) into dst as
// float64.
func gather(dst []float64, src []float32, d int, idx []int) {
	for r, i := range idx {
		for j, v := range src[i*d : (i+1)*d] {
			dst[r*d+j] = float64(v)
		}
	}
}
