package metrics_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/genstudio/genstudio/training/metrics"
)

// gaussian draws n rows from N(mu, L·Lᵀ) (L lower triangular, nil for I).
func gaussian(rng *rand.Rand, n int, mu []float64, l [][]float64) []float32 {
	d := len(mu)
	out := make([]float32, n*d)
	z := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := range z {
			z[j] = rng.NormFloat64()
		}
		for j := 0; j < d; j++ {
			v := mu[j]
			if l == nil {
				v += z[j]
			} else {
				for t := 0; t <= j; t++ {
					v += l[j][t] * z[t]
				}
			}
			out[i*d+j] = float32(v)
		}
	}
	return out
}

func zeros(d int) []float64 { return make([]float64, d) }

func filled(d int, v float64) []float64 {
	out := make([]float64, d)
	for i := range out {
		out[i] = v
	}
	return out
}

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g ± %g", name, got, want, tol)
	}
}

func sym(d int, v ...float64) *mat.SymDense { return mat.NewSymDense(d, v) }

func TestFrechetGaussianClosedForms(t *testing.T) {
	// A non-commuting 2×2 pair: the eigenvalues λ1, λ2 of s1·s2 give
	// Tr((s1·s2)^½) = √λ1 + √λ2 = √(tr(s1·s2) + 2√(det s1·det s2)).
	a := [4]float64{2, 0.6, 0.6, 1}
	b := [4]float64{1, -0.4, -0.4, 3}
	trAB := a[0]*b[0] + a[1]*b[2] + a[2]*b[1] + a[3]*b[3]
	detA, detB := a[0]*a[3]-a[1]*a[2], b[0]*b[3]-b[1]*b[2]
	root := math.Sqrt(trAB + 2*math.Sqrt(detA*detB))
	// A rotated commuting pair: s = R·diag·Rᵀ with the same R, so the
	// distance is Σ (√a_i − √b_i)².
	c, s := math.Cos(0.7), math.Sin(0.7)
	rot := func(x, y float64) *mat.SymDense {
		return sym(2, c*c*x+s*s*y, c*s*(x-y), c*s*(x-y), s*s*x+c*c*y)
	}
	tests := []struct {
		name     string
		mu1, mu2 []float64
		s1, s2   *mat.SymDense
		want     float64
	}{
		{"identical", []float64{1, 2}, []float64{1, 2}, sym(2, 2, 0.5, 0.5, 1), sym(2, 2, 0.5, 0.5, 1), 0},
		{"means only", []float64{0, 0, 0}, []float64{1, 2, 2}, sym(3, 1, 0, 0, 0, 1, 0, 0, 0, 1), sym(3, 1, 0, 0, 0, 1, 0, 0, 0, 1), 9},
		// ‖(1,2)‖² + (1+4−2·2) + (4+9−2·6) = 5 + 1 + 1.
		{"diagonal by hand", []float64{0, 0}, []float64{1, 2}, sym(2, 1, 0, 0, 4), sym(2, 4, 0, 0, 9), 7},
		// s2 = 4·s1: Tr(s1 + 4s1 − 2·2s1) = Tr(s1) = 3.
		{"scaled", zeros(2), zeros(2), sym(2, 2, 0.5, 0.5, 1), sym(2, 8, 2, 2, 4), 3},
		{"rotated commuting", zeros(2), zeros(2), rot(4, 1), rot(1, 9), (2-1)*(2-1) + (1-3)*(1-3)},
		{"non-commuting", []float64{0, 1}, []float64{0.5, 0}, sym(2, a[:]...), sym(2, b[:]...),
			0.25 + 1 + (a[0] + a[3]) + (b[0] + b[3]) - 2*root},
		{"singular first", zeros(2), zeros(2), sym(2, 1, 1, 1, 1), sym(2, 1, 0, 0, 1), 2 + 2 - 2*math.Sqrt(2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metrics.FrechetGaussian(tc.mu1, tc.mu2, tc.s1, tc.s2)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "FrechetGaussian", got, tc.want, 1e-9)
		})
	}
}

func TestFIDOfKnownGaussians(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mu1, mu2 := []float64{0, 0, 0}, []float64{1, -0.5, 2}
	l1 := [][]float64{{1.4}, {0.3, 0.9}, {0, 0.4, 1.1}}
	l2 := [][]float64{{1}, {-0.2, 1.3}, {0.1, 0.05, 0.6}}
	cov := func(l [][]float64) *mat.SymDense {
		s := mat.NewSymDense(3, nil)
		for i := 0; i < 3; i++ {
			for j := i; j < 3; j++ {
				var v float64
				for t := 0; t <= min(i, j); t++ {
					v += l[i][t] * l[j][t]
				}
				s.SetSym(i, j, v)
			}
		}
		return s
	}
	want, err := metrics.FrechetGaussian(mu1, mu2, cov(l1), cov(l2))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50000
	got, err := metrics.FID(gaussian(rng, n, mu1, l1), gaussian(rng, n, mu2, l2), 3)
	if err != nil {
		t.Fatal(err)
	}
	// The sampling error is about 2‖Δμ‖·σ/√n ≈ 0.03 here.
	near(t, "FID", got, want, 0.1)
	t.Logf("FID of %d samples %.4f, closed form %.4f", n, got, want)
}

func TestFIDOfASetWithItself(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const d = 32
	x := gaussian(rng, 2000, filled(d, 0.5), nil)
	for i := range x { // correlate the columns
		if i%d > 0 {
			x[i] += 0.5 * x[i-1]
		}
	}
	got, err := metrics.FID(x, x, d)
	if err != nil {
		t.Fatal(err)
	}
	// Relative to Tr(Σ) ≈ 40; the brief's bound is 1e-3, the eigenvalue
	// route gives about 1e-15.
	if got < 0 || got > 1e-9*40 {
		t.Errorf("FID(x, x) = %g, want about 0", got)
	}
	t.Logf("FID(x, x) = %.3g", got)
}

func TestFIDRefusesFewSamples(t *testing.T) {
	x := make([]float32, 10*10)
	for i := range x {
		x[i] = float32(i % 7)
	}
	_, err := metrics.FID(x, x, 10)
	if err == nil || !strings.Contains(err.Error(), "FID needs more samples than feature dimensions: N=10, D=10") {
		t.Fatalf("FID with N = D: err = %v", err)
	}
}

func TestKIDByHand(t *testing.T) {
	// X = {0, 1}, Y = {1, 2}, d = 1: k(x, y) = (xy + 1)³. Every subset of
	// size 2 is the whole set, so every round gives
	// k(0,1) + k(1,2) − 2·(k(0,1)+k(0,2)+k(1,1)+k(1,2))/4 = 1 + 27 − 37/2.
	mean, std, err := metrics.KID([]float32{0, 1}, []float32{1, 2}, 1, 5, 2, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "KID mean", mean, 9.5, 1e-12)
	near(t, "KID std", std, 0, 1e-12)
}

func TestKIDDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d, n = 16, 2000
	real := gaussian(rng, n, zeros(d), nil)
	same := gaussian(rng, n, zeros(d), nil)
	shifted := gaussian(rng, n, filled(d, 0.5), nil)

	mean, std, err := metrics.KID(real, same, d, 50, 500, rand.New(rand.NewPCG(7, 8)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KID same distribution: %.5f ± %.5f", mean, std)
	if math.Abs(mean) > 3*std || std <= 0 {
		t.Errorf("KID of one distribution = %g ± %g, want |mean| < 3 std", mean, std)
	}
	smean, sstd, err := metrics.KID(real, shifted, d, 50, 500, rand.New(rand.NewPCG(7, 8)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KID shifted by 0.5: %.5f ± %.5f", smean, sstd)
	if smean < 10*sstd || smean < 10*math.Abs(mean) {
		t.Errorf("KID of shifted distributions = %g ± %g, want clearly positive", smean, sstd)
	}
	again, _, _ := metrics.KID(real, shifted, d, 50, 500, rand.New(rand.NewPCG(7, 8)))
	if again != smean {
		t.Errorf("KID with the same seed: %v then %v", smean, again)
	}
	// A subset size above the set sizes is clipped, not refused.
	if _, _, err := metrics.KID(real[:100*d], same[:200*d], d, 3, 1000, nil); err != nil {
		t.Errorf("KID with size > n: %v", err)
	}
}

// onehot is n rows over k classes, row i sure of class i mod k.
func onehot(n, k int) []float32 {
	p := make([]float32, n*k)
	for i := 0; i < n; i++ {
		p[i*k+i%k] = 1
	}
	return p
}

func TestInceptionScore(t *testing.T) {
	constant := make([]float32, 100*4)
	for i := range constant {
		constant[i] = []float32{0.1, 0.2, 0.3, 0.4}[i%4]
	}
	// Two rows (0.9, 0.1) and (0.1, 0.9): p(y) = (½, ½), KL of each row
	// 0.9·ln 1.8 + 0.1·ln 0.2.
	pair := []float32{0.9, 0.1, 0.1, 0.9}
	// Two splits: one of two sure, different classes (IS 2), one constant
	// (IS 1): mean 1.5, population std 0.5 (ddof 1 would be 0.707).
	halves := append(onehot(10, 2), make([]float32, 10*2)...)
	for i := 20; i < 40; i++ {
		halves[i] = 0.5
	}
	tests := []struct {
		name      string
		probs     []float32
		k, splits int
		mean, std float64
	}{
		{"uniform one-hot over 10 classes", onehot(1000, 10), 10, 10, 10, 0},
		{"uniform one-hot over 3 classes, 1 split", onehot(30, 3), 3, 1, 3, 0},
		{"constant", constant, 4, 10, 1, 0},
		{"two rows by hand", pair, 2, 1, math.Exp(0.9*math.Log(1.8) + 0.1*math.Log(0.2)), 0},
		{"std over splits, ddof 0", halves, 2, 2, 1.5, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mean, std, err := metrics.InceptionScore(tc.probs, tc.k, tc.splits)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "IS mean", mean, tc.mean, 1e-6)
			near(t, "IS std", std, tc.std, 1e-6)
		})
	}
}

func TestPRDCByHand(t *testing.T) {
	tests := []struct {
		name       string
		real, fake []float32
		p, r, d, c float64
	}{
		// k = 1. Real radii: 0→1, 1→1, 2→1, 4→2; fake radii: 0.5→2.5,
		// 3→2.5, 7→4. Precision: 0.5 (by 0) and 3 (by 2 at exactly its
		// radius 1: ≤ counts) inside, 7 not: 2/3. Recall: every real within
		// 2.5 of 0.5 or 3: 1. Density: 0.5 is in the balls of 0 and 1, 3 in
		// that of 4 only (at distance 1 from 2, not < 1), 7 in none: 3/3.
		// Coverage: 0, 1 (by 0.5) and 4 (by 3) covered, 2 not (its nearest
		// fake is at its radius, not inside): 3/4.
		{"ties", []float32{0, 1, 2, 4}, []float32{0.5, 3, 7}, 2.0 / 3, 1, 1, 0.75},
		// k = 1. All radii 1. Precision: 0.5 and 1.5 inside, 2.5 not: 2/3.
		// Recall: 0 and 1 inside, 10 and 11 not: 1/2. Density: 0.5 in the
		// balls of 0 and 1, 1.5 in that of 1, 2.5 in none: 3/3. Coverage:
		// 0 and 1: 1/2.
		{"two clusters", []float32{0, 1, 10, 11}, []float32{0.5, 1.5, 2.5}, 2.0 / 3, 0.5, 1, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metrics.ComputePRDC(tc.real, tc.fake, 1, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			want := metrics.PRDC{Precision: tc.p, Recall: tc.r, Density: tc.d, Coverage: tc.c}
			if got != want {
				t.Errorf("ComputePRDC = %+v, want %+v", got, want)
			}
			p, r, err := metrics.PrecisionRecall(tc.real, tc.fake, 1, 1)
			if err != nil || p != tc.p || r != tc.r {
				t.Errorf("PrecisionRecall = %v, %v, %v; want %v, %v", p, r, err, tc.p, tc.r)
			}
			d, c, err := metrics.DensityCoverage(tc.real, tc.fake, 1, 1)
			if err != nil || d != tc.d || c != tc.c {
				t.Errorf("DensityCoverage = %v, %v, %v; want %v, %v", d, c, err, tc.d, tc.c)
			}
		})
	}
}

func TestPRDCSets(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const d = 8
	x := gaussian(rng, 500, zeros(d), nil)
	far := gaussian(rng, 400, filled(d, 1000), nil)

	t.Run("identical", func(t *testing.T) {
		got, err := metrics.ComputePRDC(x, x, d, 3, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got.Precision != 1 || got.Recall != 1 || got.Coverage != 1 {
			t.Errorf("identical sets: %+v, want precision, recall and coverage 1", got)
		}
		// Each real ball holds its own copy and its k−1 inner neighbours.
		near(t, "density", got.Density, 1, 0.02)
	})
	t.Run("disjoint", func(t *testing.T) {
		got, err := metrics.ComputePRDC(x, far, d, 3, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got != (metrics.PRDC{}) {
			t.Errorf("far apart sets: %+v, want all 0", got)
		}
	})
	t.Run("same distribution", func(t *testing.T) {
		y := gaussian(rng, 500, zeros(d), nil)
		got, err := metrics.ComputePRDC(x, y, d, 3, 5)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("two samples of N(0, I) in %d dimensions: %+v", d, got)
		if got.Precision < 0.5 || got.Recall < 0.5 || got.Coverage < 0.8 || got.Density < 0.7 || got.Density > 1.3 {
			t.Errorf("same distribution: %+v, want all high, density near 1", got)
		}
	})
}

func TestClasses(t *testing.T) {
	probs := []float32{
		0.95, 0.03, 0.02, // class 0, confident
		0.5, 0.4, 0.1, // class 0
		0.05, 0.92, 0.03, // class 1, confident
		0.2, 0.2, 0.6, // class 2
	}
	third := []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}
	hist := []float64{0.5, 0.25, 0.25}
	kl := func(p, q []float64) float64 {
		const eps = 1e-6
		var s float64
		for c := range p {
			a, b := (p[c]+eps)/(1+3*eps), (q[c]+eps)/(1+3*eps)
			s += a * math.Log(a/b)
		}
		return s
	}
	tests := []struct {
		name     string
		ref      []float64
		minShare float64
		coverage int
		kl       float64
	}{
		// Classes 0 and 1 each hold one confident sample of four: 0.25.
		{"uniform reference", third, 0.25, 2, kl(hist, third)},
		{"above every share", third, 0.3, 0, kl(hist, third)},
		{"own histogram", hist, 0.005, 2, 0},
		{"no reference", nil, 0.005, 2, 0},
		// A class missing from the reference costs about h·ln(h/ε).
		{"missing class", []float64{0.5, 0.5, 0}, 0.005, 2, kl(hist, []float64{0.5, 0.5, 0})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := metrics.Classes(probs, 3, tc.ref, 0.9, tc.minShare)
			if err != nil {
				t.Fatal(err)
			}
			for c, v := range hist {
				near(t, "histogram", st.Histogram[c], v, 1e-15)
			}
			near(t, "confident", st.Confident, 0.5, 1e-15)
			if st.Coverage != tc.coverage {
				t.Errorf("coverage = %d, want %d", st.Coverage, tc.coverage)
			}
			near(t, "KL", st.KL, tc.kl, 1e-12)
		})
	}
}

func TestNearestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const d = 20
	refs := gaussian(rng, 1000, zeros(d), nil)
	queries := gaussian(rng, 300, zeros(d), nil)
	copy(queries[5*d:6*d], refs[123*d:124*d]) // a memorised sample
	idx, dist, err := metrics.Nearest(queries, refs, d)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		bi, bd := -1, math.Inf(1)
		for j := 0; j < 1000; j++ {
			var s float64
			for t := 0; t < d; t++ {
				e := float64(queries[i*d+t]) - float64(refs[j*d+t])
				s += e * e
			}
			if s < bd {
				bi, bd = j, s
			}
		}
		bd = math.Sqrt(bd)
		if idx[i] != bi && math.Abs(float64(dist[i])-bd) > 1e-4*bd {
			t.Errorf("query %d: nearest %d at %v, brute force %d at %v", i, idx[i], dist[i], bi, bd)
		}
		near(t, "distance", float64(dist[i]), bd, 1e-5*(1+bd))
	}
	if idx[5] != 123 || dist[5] != 0 {
		t.Errorf("memorised sample: nearest %d at %v, want 123 at 0", idx[5], dist[5])
	}
}

// The test images: integer formulas in [0, 255] over c×h×w, the same as
// blob, noise and mix in testdata/msssim_ref.py, divided by 255 in float32.

func blob(w, h, c, dy, dx int) []int {
	img := make([]int, c*h*w)
	r2 := (min(w, h) / 3) * (min(w, h) / 3)
	for ch := 0; ch < c; ch++ {
		cy, cx := h*2/5+ch+dy, w/2+dx
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				img[(ch*h+i)*w+j] = max(0, 255-255*((i-cy)*(i-cy)+(j-cx)*(j-cx))/r2)
			}
		}
	}
	return img
}

func noise(w, h, c, seed int) []int {
	img := make([]int, c*h*w)
	for ch := 0; ch < c; ch++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				img[(ch*h+i)*w+j] = (i*i*31 + j*17 + i*j*7 + ch*53 + seed*101) % 256
			}
		}
	}
	return img
}

func mix(w, h, c, seed int) []int {
	b, n := blob(w, h, c, 0, 0), noise(w, h, c, seed)
	for i := range b {
		b[i] = (b[i] + n[i]) / 2
	}
	return b
}

func unit(img []int) []float32 {
	out := make([]float32, len(img))
	for i, v := range img {
		out[i] = float32(v) / 255
	}
	return out
}

// TestMSSSIMReference checks MSSSIM against the values printed by
// testdata/msssim_ref.py, an independent NumPy (Debian's python3-numpy
// 1.24) implementation of compare_gan's multiscale_ssim: full 2-D
// windows, np.pad 'symmetric' and reshape pooling.
func TestMSSSIMReference(t *testing.T) {
	tests := []struct {
		name    string
		w, h, c int
		a, b    []int
		want    float64
	}{
		{"blob vs mix 28x28", 28, 28, 1, blob(28, 28, 1, 0, 0), mix(28, 28, 1, 1), 0.76687949947917755},
		{"blob vs blob shifted 28x28", 28, 28, 1, blob(28, 28, 1, 0, 0), blob(28, 28, 1, 1, 2), 0.87213724546693283},
		{"mix vs blob 32x32x3", 32, 32, 3, mix(32, 32, 3, 3), blob(32, 32, 3, 0, 0), 0.75323149418523716},
		{"mix vs mix 13x9x2", 13, 9, 2, mix(13, 9, 2, 4), mix(13, 9, 2, 5), 0.26611631988081003},
		{"noise vs noise 28x28 (negative cs clamped)", 28, 28, 1, noise(28, 28, 1, 1), noise(28, 28, 1, 2), 0},
		{"noise vs mix 13x9x2 (negative cs clamped)", 13, 9, 2, noise(13, 9, 2, 4), mix(13, 9, 2, 5), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := unit(tc.a), unit(tc.b)
			near(t, "MSSSIM", metrics.MSSSIM(a, b, tc.w, tc.h, tc.c), tc.want, 1e-9)
			near(t, "MSSSIM swapped", metrics.MSSSIM(b, a, tc.w, tc.h, tc.c), tc.want, 1e-9)
			near(t, "MSSSIM(a, a)", metrics.MSSSIM(a, a, tc.w, tc.h, tc.c), 1, 1e-12)
		})
	}
	if v := metrics.MSSSIM(make([]float32, 10), make([]float32, 10), 3, 3, 1); !math.IsNaN(v) {
		t.Errorf("MSSSIM of mismatched sizes = %v, want NaN", v)
	}
}

func TestMeanMSSSIM(t *testing.T) {
	a, b := unit(blob(28, 28, 1, 0, 0)), unit(mix(28, 28, 1, 1))
	same := append(append([]float32{}, a...), a...)
	got, err := metrics.MeanMSSSIM(same, 28, 28, 1, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "MeanMSSSIM of copies", got, 1, 1e-12)
	// With two images every pair is (a, b) or (b, a).
	two := append(append([]float32{}, a...), b...)
	got, err = metrics.MeanMSSSIM(two, 28, 28, 1, 50, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "MeanMSSSIM of two", got, 0.76687949947917755, 1e-9)

	rng := rand.New(rand.NewPCG(3, 4))
	many := make([]float32, 0, 40*28*28)
	for i := 0; i < 40; i++ {
		many = append(many, unit(blob(28, 28, 1, rng.IntN(7)-3, rng.IntN(7)-3))...)
	}
	x, err := metrics.MeanMSSSIM(many, 28, 28, 1, 500, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	y, _ := metrics.MeanMSSSIM(many, 28, 28, 1, 500, rand.New(rand.NewPCG(5, 6)))
	if x != y || x <= 0 || x >= 1 {
		t.Errorf("MeanMSSSIM of shifted blobs: %v then %v, want the same value in (0, 1)", x, y)
	}
}

func TestValidation(t *testing.T) {
	nan := float32(math.NaN())
	ok := []float32{0, 1, 2, 3, 4, 5, 6, 7}
	probs := []float32{0.5, 0.5, 1, 0}
	img := make([]float32, 2*4*4)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"FID dimension 0", func() error { _, err := metrics.FID(ok, ok, 0); return err }, "dimension must be positive"},
		{"FID ragged", func() error { _, err := metrics.FID(ok, ok[:7], 2); return err }, "not a multiple"},
		{"FID NaN", func() error {
			x := append([]float32{}, ok...)
			x[3] = nan
			_, err := metrics.FID(ok, x, 1)
			return err
		}, "row 3"},
		{"FID empty", func() error { _, err := metrics.FID(nil, ok, 1); return err }, "no samples"},
		{"FrechetGaussian lengths", func() error {
			_, err := metrics.FrechetGaussian([]float64{0}, []float64{0, 1}, sym(1, 1), sym(1, 1))
			return err
		}, "lengths"},
		{"FrechetGaussian NaN", func() error {
			_, err := metrics.FrechetGaussian([]float64{0}, []float64{0}, sym(1, math.NaN()), sym(1, 1))
			return err
		}, "NaN"},
		{"FrechetGaussian nil", func() error {
			_, err := metrics.FrechetGaussian([]float64{0}, []float64{0}, nil, sym(1, 1))
			return err
		}, "nil"},
		{"KID no subsets", func() error { _, _, err := metrics.KID(ok, ok, 1, 0, 4, nil); return err }, "subset"},
		{"KID one sample", func() error { _, _, err := metrics.KID(ok[:1], ok, 1, 1, 4, nil); return err }, "at least 2"},
		{"KID ragged", func() error { _, _, err := metrics.KID(ok, ok[:5], 2, 1, 2, nil); return err }, "not a multiple"},
		{"IS logits", func() error { _, _, err := metrics.InceptionScore([]float32{2, -1, 0.5, 0.5}, 2, 1); return err }, "negative"},
		{"IS sum", func() error { _, _, err := metrics.InceptionScore([]float32{0.6, 0.6, 0.5, 0.5}, 2, 1); return err }, "sums to"},
		{"IS splits", func() error { _, _, err := metrics.InceptionScore(probs, 2, 3); return err }, "splits"},
		{"IS NaN", func() error { _, _, err := metrics.InceptionScore([]float32{nan, 1}, 2, 1); return err }, "NaN"},
		{"PR k 0", func() error { _, _, err := metrics.PrecisionRecall(ok, ok, 1, 0); return err }, "at least 1"},
		{"PR too few fake", func() error { _, _, err := metrics.PrecisionRecall(ok, ok[:3], 1, 3); return err }, "more than 3"},
		{"DC too few real", func() error { _, _, err := metrics.DensityCoverage(ok[:5], ok, 1, 5); return err }, "more than 5"},
		{"PRDC dimension", func() error { _, err := metrics.ComputePRDC(ok, ok, 3, 1, 1); return err }, "not a multiple"},
		{"PRDC Inf", func() error {
			_, err := metrics.ComputePRDC(ok, []float32{1, float32(math.Inf(1))}, 1, 1, 1)
			return err
		}, "+Inf"},
		{"Classes conf", func() error { _, err := metrics.Classes(probs, 2, nil, 1, 0.005); return err }, "confidence"},
		{"Classes ref length", func() error { _, err := metrics.Classes(probs, 2, []float64{1}, 0.9, 0.005); return err }, "reference histogram"},
		{"Classes ref sum", func() error { _, err := metrics.Classes(probs, 2, []float64{0.2, 0.2}, 0.9, 0.005); return err }, "sums to"},
		{"Nearest ragged", func() error { _, _, err := metrics.Nearest(ok, ok[:7], 2); return err }, "not a multiple"},
		{"MeanMSSSIM one image", func() error { _, err := metrics.MeanMSSSIM(img[:16], 4, 4, 1, 1, nil); return err }, "at least 2"},
		{"MeanMSSSIM range", func() error {
			x := append([]float32{}, img...)
			x[20] = -1
			_, err := metrics.MeanMSSSIM(x, 4, 4, 1, 1, nil)
			return err
		}, "outside [0, 1]"},
		{"MeanMSSSIM size", func() error { _, err := metrics.MeanMSSSIM(img, 0, 4, 1, 1, nil); return err }, "size"},
		{"MeanMSSSIM pairs", func() error { _, err := metrics.MeanMSSSIM(img, 4, 4, 1, 0, nil); return err }, "pair"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestModeCoverage: hand-placed samples on a 4-mode mixture.
func TestModeCoverage(t *testing.T) {
	centres := []float32{0, 0, 1, 0, 0, 1, 1, 1}
	for _, c := range []struct {
		name    string
		samples []float32
		modes   int
		hq      float64
	}{
		{"all modes", []float32{0, 0, 1, 0.02, 0.01, 1, 1, 1}, 4, 1},
		{"collapsed", []float32{0, 0, 0.01, 0, 0, 0.02, 0.02, 0.02}, 1, 1},
		// 0.031 is just beyond 3σ = 0.03 of (0, 0): low quality, nothing captured
		{"beyond 3σ", []float32{0.031, 0, 0.5, 0.5, 1, 1, 1, 1}, 1, 0.5},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := metrics.ModeCoverage(c.samples, centres, 0.01)
			if err != nil {
				t.Fatal(err)
			}
			if st.Modes != c.modes || math.Abs(st.HighQuality-c.hq) > 1e-12 {
				t.Errorf("got %d modes, %.3f high quality; want %d, %.3f", st.Modes, st.HighQuality, c.modes, c.hq)
			}
		})
	}
	if _, err := metrics.ModeCoverage([]float32{1}, centres, 0.01); err == nil {
		t.Error("an odd number of sample values was accepted")
	}
}
