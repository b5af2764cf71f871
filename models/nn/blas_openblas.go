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

// BLASThreads is how many threads one BLAS call uses (0 if the BLAS does
// not say): 1 on Linux, where splitBLAS splits the products itself.
func BLASThreads() int { return int(C.gsBLASThreads()) }

// splitBLAS is OpenBLAS with one thread per call and the matrix products
// split over the cores by Go. OpenBLAS's own worker threads spin (in
// sched_yield) for a long while after each call, taking a core from the
// Go code that runs between products — the im2col, the elementwise ops,
// Adam — and a third of a DCGAN run's CPU time went to the kernel; with
// single-threaded calls on goroutines no thread is ever left spinning.
type splitBLAS struct{ netlib.Implementation }

func init() {
	if os.Getenv("GENSTUDIO_BLAS_SPLIT") == "0" {
		G.Use(netlib.Implementation{})
		return
	}
	C.gsBLASSetThreads(1)
	G.Use(splitBLAS{})
}

func (s splitBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	splitGemm(s.Implementation.Sgemm, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (s splitBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	splitGemm(s.Implementation.Dgemm, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
