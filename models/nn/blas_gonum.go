//go:build !cgo || !(linux || darwin) || noopenblas

package nn

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// BLASName names the BLAS the models run on.
const BLASName = "gonum (pure Go)"

// BLASThreads is how many threads the BLAS uses: gonum splits large
// products over GOMAXPROCS goroutines.
func BLASThreads() int { return runtime.GOMAXPROCS(0) }

// sgemm and dgemm are the layer library's products: gonum's, which splits
// large products over the cores itself.
func sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	G.WhichBLAS().Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	G.WhichBLAS().Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
