package metrics

import (
	"math"

	"github.com/genstudio/genstudio/models/nn"
)

// sqNorms is ‖x_i‖² for each row of x (float64 sums, stored as float32).
func sqNorms(x []float32, d int) []float32 {
	n := len(x) / d
	out := make([]float32, n)
	nn.Parallel(n, d, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var s float64
			for _, v := range x[i*d : (i+1)*d] {
				s += float64(v) * float64(v)
			}
			out[i] = float32(s)
		}
	})
	return out
}

// centred returns copies of the sets, each shifted by the mean of the
// first: distances do not change, but the norms in ‖a‖²+‖b‖²−2a·b shrink,
// and with them float32 cancellation.
func centred(d int, sets ...[]float32) [][]float32 {
	ref := sets[0]
	n := len(ref) / d
	mu := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range ref[i*d : (i+1)*d] {
			mu[j] += float64(v)
		}
	}
	m := make([]float32, d)
	for j := range mu {
		m[j] = float32(mu[j] / float64(n))
	}
	out := make([][]float32, len(sets))
	for s, x := range sets {
		c := make([]float32, len(x))
		for i := range x {
			c[i] = x[i] - m[i%d]
		}
		out[s] = c
	}
	return out
}

// blockRows is how many rows of a distance matrix with cols columns fit in
// budget values: at least 1, a multiple of 16 from 32 up (the BLAS's
// kernel width), at most n.
func blockRows(n, cols, budget int) int {
	r := max(1, budget/max(cols, 1))
	if r >= 32 {
		r &^= 15
	}
	return min(r, n)
}

// sqDistBlocks walks the squared Euclidean distances between the rows of
// a (with squared norms an) and of b (norms bn) in blocks of whole rows of
// a, at most budget values each: for each block it calls f(i0, i1, dist)
// with dist the (i1−i0)×nb distances, row-major, clamped at 0. dist is
// reused from block to block. The products run as one float32 GEMM per
// block, the rest split over the cores.
func sqDistBlocks(a, an, b, bn []float32, d, budget int, f func(i0, i1 int, dist []float32)) {
	na, nb := len(an), len(bn)
	r := blockRows(na, nb, budget)
	buf := make([]float32, r*nb)
	for i0 := 0; i0 < na; i0 += r {
		i1 := min(i0+r, na)
		dist := buf[:(i1-i0)*nb]
		nn.Gemm(false, true, i1-i0, nb, d, a[i0*d:i1*d], d, b, d, 0, dist, nb)
		nn.Parallel(i1-i0, nb, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				ai := an[i0+i]
				row := dist[i*nb : (i+1)*nb]
				for j, c := range row {
					row[j] = max(ai+bn[j]-2*c, 0)
				}
			}
		})
		f(i0, i1, dist)
	}
}

// kthSelf is, for each row of x (norms xn), the squared distance to its
// k-th nearest other row for each k in ks (each 1 <= k < n): the point
// itself is left out, as prdc's (k+1)-th smallest distance counting the
// point's own 0, and torch-fidelity's kthvalue(k+1), both give.
func kthSelf(x, xn []float32, d, budget int, ks ...int) [][]float32 {
	n := len(xn)
	kmax := 0
	for _, k := range ks {
		kmax = max(kmax, k)
	}
	out := make([][]float32, len(ks))
	for i := range out {
		out[i] = make([]float32, n)
	}
	sqDistBlocks(x, xn, x, xn, d, budget, func(i0, i1 int, dist []float32) {
		nn.Parallel(i1-i0, n, func(lo, hi int) {
			top := make([]float32, kmax)
			for i := lo; i < hi; i++ {
				self := i0 + i
				for t := range top {
					top[t] = float32(math.Inf(1))
				}
				for j, v := range dist[i*n : (i+1)*n] {
					if v < top[kmax-1] && j != self {
						insertSorted(top, v)
					}
				}
				for q, k := range ks {
					out[q][self] = top[k-1]
				}
			}
		})
	})
	return out
}

// insertSorted puts v into the ascending slice top, dropping its last
// value.
func insertSorted(top []float32, v float32) {
	t := len(top) - 1
	for t > 0 && top[t-1] > v {
		top[t] = top[t-1]
		t--
	}
	top[t] = v
}

// Nearest is, for each row of queries, the index of the nearest row of
// refs and the Euclidean distance to it (both n×d row-major), exactly
// (brute force, no approximate index), as scikit-learn's
// pairwise_distances_argmin_min: ‖q‖²+‖r‖²−2q·r with the products as
// float32 GEMMs over blocks of queries against all refs (about 64 MB of
// products at a time: 272 queries × 60,000 refs), the argmin split over
// the cores, ties to the lowest index. The returned distance is then
// recomputed directly in float64 from the two rows, so it carries no
// cancellation error (a memorised copy reads exactly 0).
func Nearest(queries, refs []float32, d int) (idx []int, dist []float32, err error) {
	if _, err := rows("Nearest queries", queries, d); err != nil {
		return nil, nil, err
	}
	if _, err := rows("Nearest refs", refs, d); err != nil {
		return nil, nil, err
	}
	idx, dist = nearest(queries, refs, d, blockFloats)
	return idx, dist, nil
}

func nearest(queries, refs []float32, d, budget int) ([]int, []float32) {
	nq, nr := len(queries)/d, len(refs)/d
	rn := sqNorms(refs, d)
	idx := make([]int, nq)
	dist := make([]float32, nq)
	r := blockRows(nq, nr, budget)
	buf := make([]float32, r*nr)
	for i0 := 0; i0 < nq; i0 += r {
		i1 := min(i0+r, nq)
		c := buf[:(i1-i0)*nr]
		nn.Gemm(false, true, i1-i0, nr, d, queries[i0*d:i1*d], d, refs, d, 0, c, nr)
		nn.Parallel(i1-i0, nr, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				best, bj := float32(math.Inf(1)), 0
				for j, v := range c[i*nr : (i+1)*nr] {
					if s := rn[j] - 2*v; s < best {
						best, bj = s, j
					}
				}
				q := queries[(i0+i)*d : (i0+i+1)*d]
				var s float64
				for t, v := range refs[bj*d : (bj+1)*d] {
					e := float64(q[t]) - float64(v)
					s += e * e
				}
				idx[i0+i], dist[i0+i] = bj, float32(math.Sqrt(s))
			}
		})
	}
	return idx, dist
}
