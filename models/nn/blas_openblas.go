//go:build cgo && (linux || darwin) && !noopenblas

package nn

/*
#cgo linux LDFLAGS: -lopenblas
#cgo darwin LDFLAGS: -framework Accelerate
#ifdef __linux__
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
static int gsBLASThreads(void) { return openblas_get_num_threads(); }
static void gsBLASSetThreads(int n) { openblas_set_num_threads(n); }
#else
static int gsBLASThreads(void) { return 0; }
static void gsBLASSetThreads(int n) { }
#endif
*/
import "C"

import (
	"os"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLASName names the BLAS the models run on.
const BLASName = "OpenBLAS (cgo)"

// BLASThreads is how many threads one BLAS call of Gorgonia's uses (0 if
// the BLAS does not say).
func BLASThreads() int { return int(C.gsBLASThreads()) }

// blasThreads is OpenBLAS's own thread count, for Gorgonia's products (the
// MLP models' layers).
var blasThreads = int(C.gsBLASThreads())

// splitProducts makes the layer library's products (convolutions, conv
// models' Linear layers) run as single-threaded OpenBLAS calls split over
// the cores by Go (splitGemm). OpenBLAS's own worker threads spin (in
// sched_yield) for a long while after each call, taking a core from the Go
// code that runs between products — im2col, elementwise ops, Adam; with
// single-threaded calls on goroutines no thread is left spinning. The MLP
// models' products, through Gorgonia, keep OpenBLAS's threads, where
// measurements favoured them. GENSTUDIO_BLAS_SPLIT=0 turns the split off,
// for comparisons.
var splitProducts = os.Getenv("GENSTUDIO_BLAS_SPLIT") != "0"

func init() { G.Use(netlib.Implementation{}) }

func sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	product(netlib.Implementation{}.Sgemm, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	product(netlib.Implementation{}.Dgemm, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// product runs gemm whole (small products, or the split turned off) or as
// single-threaded calls split over the cores.
func product[T Float](gemm func(tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int),
	tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if !splitProducts || m*n*k < splitMinMACs {
		gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	C.gsBLASSetThreads(1)
	splitGemm(gemm, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	C.gsBLASSetThreads(C.int(blasThreads))
}
