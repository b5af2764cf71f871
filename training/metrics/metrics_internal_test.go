package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomRows(rng *rand.Rand, n, d int, shift float32) []float32 {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) + shift
	}
	return x
}

func dist64(a, b []float32) float64 {
	var s float64
	for i := range a {
		e := float64(a[i]) - float64(b[i])
		s += e * e
	}
	return math.Sqrt(s)
}

// brutePRDC is prdc's compute_prdc and torch-fidelity's precision/recall
// written out in float64 over full distance matrices.
func brutePRDC(real, fake []float32, d, kPR, kDC int) PRDC {
	nr, nf := len(real)/d, len(fake)/d
	row := func(x []float32, i int) []float32 { return x[i*d : (i+1)*d] }
	kth := func(x []float32, n, k int) []float64 {
		out := make([]float64, n)
		for i := 0; i < n; i++ {
			var ds []float64
			for j := 0; j < n; j++ {
				ds = append(ds, dist64(row(x, i), row(x, j)))
			}
			slices.Sort(ds)
			out[i] = ds[k] // ds[0] is the point itself
		}
		return out
	}
	rPR, rDC, fPR := kth(real, nr, kPR), kth(real, nr, kDC), kth(fake, nf, kPR)
	var p, r, dens, cov float64
	for j := 0; j < nf; j++ {
		in := false
		for i := 0; i < nr; i++ {
			dd := dist64(row(real, i), row(fake, j))
			in = in || dd <= rPR[i]
			if dd < rDC[i] {
				dens++
			}
		}
		if in {
			p++
		}
	}
	for i := 0; i < nr; i++ {
		in, best := false, math.Inf(1)
		for j := 0; j < nf; j++ {
			dd := dist64(row(real, i), row(fake, j))
			in = in || dd <= fPR[j]
			best = min(best, dd)
		}
		if in {
			r++
		}
		if best < rDC[i] {
			cov++
		}
	}
	return PRDC{p / float64(nf), r / float64(nr), dens / float64(kDC*nf), cov / float64(nr)}
}

func TestPRDCBlocksAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d = 6
	real := randomRows(rng, 230, d, 0)
	fake := randomRows(rng, 170, d, 0.4)
	want := brutePRDC(real, fake, d, 3, 5)
	for _, budget := range []int{1, 37 * 170, 1000 * 230, blockFloats} {
		got, err := computePRDC("test", real, fake, d, 3, 5, true, true, budget)
		if err != nil {
			t.Fatal(err)
		}
		// float32 against float64 distances may flip a point sitting on a
		// radius; none does here.
		if got != want {
			t.Errorf("budget %d: %+v, brute force %+v", budget, got, want)
		}
	}
	t.Logf("%+v", want)
}

func TestNearestBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const d = 9
	q, r := randomRows(rng, 101, d, 0), randomRows(rng, 313, d, 0)
	wantIdx, wantDist := nearest(q, r, d, blockFloats)
	for _, budget := range []int{1, 313 * 17, 313 * 64} {
		idx, dist := nearest(q, r, d, budget)
		if !slices.Equal(idx, wantIdx) || !slices.Equal(dist, wantDist) {
			t.Errorf("budget %d: results differ from one block", budget)
		}
	}
}

func TestKthSelf(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d, n = 3, 50
	x := randomRows(rng, n, d, 0)
	xn := sqNorms(x, d)
	got := kthSelf(x, xn, d, 7*n, 1, 3, 5)
	for i := 0; i < n; i++ {
		var ds []float64
		for j := 0; j < n; j++ {
			if j != i {
				ds = append(ds, dist64(x[i*d:(i+1)*d], x[j*d:(j+1)*d]))
			}
		}
		slices.Sort(ds)
		for q, k := range []int{1, 3, 5} {
			if g := math.Sqrt(float64(got[q][i])); math.Abs(g-ds[k-1]) > 1e-5 {
				t.Errorf("row %d, k %d: %v, want %v", i, k, g, ds[k-1])
			}
		}
	}
}

func TestPool2(t *testing.T) {
	// 3×3 → 2×2, the last row and column repeated.
	src := []float64{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9,
	}
	got := pool2(src, nil, 3, 3)
	want := []float64{(1 + 2 + 4 + 5) / 4.0, (3 + 3 + 6 + 6) / 4.0, (7 + 8 + 7 + 8) / 4.0, 9}
	if !slices.Equal(got, want) {
		t.Errorf("pool2 = %v, want %v", got, want)
	}
	sizes := []int{28}
	for s := 28; len(sizes) < 5; {
		s = (s + 1) / 2
		sizes = append(sizes, s)
	}
	if !slices.Equal(sizes, []int{28, 14, 7, 4, 2}) {
		t.Errorf("scales of 28: %v", sizes)
	}
}

func TestWindow(t *testing.T) {
	var s ssimScratch
	for _, size := range []int{11, 7, 4, 2, 1} {
		g := s.window(size)
		var sum float64
		for i, v := range g {
			sum += v
			if math.Abs(v-g[size-1-i]) > 1e-15 {
				t.Errorf("window %d not symmetric", size)
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("window %d sums to %v", size, sum)
		}
	}
}

func TestBlockRows(t *testing.T) {
	tests := []struct{ n, cols, budget, want int }{
		{10000, 60000, blockFloats, 272},
		{10000, 10000, blockFloats, 1664},
		{100, 10000, blockFloats, 100},
		{5, 100, 1, 1},
		{50, 10, 310, 31},
	}
	for _, tc := range tests {
		if got := blockRows(tc.n, tc.cols, tc.budget); got != tc.want {
			t.Errorf("blockRows(%d, %d, %d) = %d, want %d", tc.n, tc.cols, tc.budget, got, tc.want)
		}
	}
}
