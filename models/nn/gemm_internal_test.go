package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// TestSplitGemm checks that splitting a product over the cores gives the
// unsplit product (to float32 rounding) and the same bits every time, for
// every transposition and for splits by rows and by columns, with leading
// dimensions wider than the matrices.
func TestSplitGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	plain := G.WhichBLAS().Sgemm
	for _, sz := range [][3]int{{200, 70, 50}, {70, 200, 50}, {33, 1000, 40}, {1000, 17, 30}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				t.Run(fmt.Sprintf("%dx%dx%d/%c%c", m, n, k, tA, tB), func(t *testing.T) {
					ar, ac := m, k
					if tA == blas.Trans {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB == blas.Trans {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+3, bc+1, n+2
					a, b := make([]float32, (ar-1)*lda+ac), make([]float32, (br-1)*ldb+bc)
					c0 := make([]float32, (m-1)*ldc+n)
					for _, s := range [][]float32{a, b, c0} {
						for i := range s {
							s[i] = rng.Float32() - 0.5
						}
					}
					want, got, again := slices.Clone(c0), slices.Clone(c0), slices.Clone(c0)
					plain(tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, want, ldc)
					splitGemm(plain, tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, got, ldc)
					splitGemm(plain, tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, again, ldc)
					if !slices.Equal(got, again) {
						t.Fatal("two split products differ")
					}
					for i := range want {
						if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
							t.Fatalf("element %d: split %g, unsplit %g", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}
