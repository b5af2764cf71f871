package nn

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
)

// splitMinMACs is the size (m·n·k multiply-adds) from which a product is
// split over the cores: below it a goroutine costs more than it saves.
const splitMinMACs = 1 << 17

// splitGemm runs C = alpha·op(A)·op(B) + beta·C (row-major) as up to
// GOMAXPROCS single-threaded products on disjoint blocks of C: rows when
// C has more rows than columns, columns otherwise, cut at multiples of 16
// so that every block uses the BLAS's full-width kernels. The split
// depends only on the shape and GOMAXPROCS, so a product is the same from
// run to run; against one unsplit call an element can differ in its last
// bit (OpenBLAS packs a block's edges differently), as it does between
// OpenBLAS's own thread counts.
func splitGemm[T Float](gemm func(tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int),
	tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	p := runtime.GOMAXPROCS(0)
	if p < 2 || m*n*k < splitMinMACs {
		gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	byRows := m > n
	size := n
	if byRows {
		size = m
	}
	p = min(p, size/16)
	if p < 2 {
		gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		lo, hi := (size*i/p)&^15, (size*(i+1)/p)&^15
		if i == p-1 {
			hi = size
		}
		if lo >= hi {
			continue
		}
		part := func() {
			if byRows {
				var aa []T
				if tA == blas.Trans {
					aa = a[lo:]
				} else {
					aa = a[lo*lda:]
				}
				gemm(tA, tB, hi-lo, n, k, alpha, aa, lda, b, ldb, beta, c[lo*ldc:], ldc)
				return
			}
			var bb []T
			if tB == blas.Trans {
				bb = b[lo*ldb:]
			} else {
				bb = b[lo:]
			}
			gemm(tA, tB, m, hi-lo, k, alpha, a, lda, bb, ldb, beta, c[lo:], ldc)
		}
		if i == p-1 {
			part()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			part()
		}()
	}
	wg.Wait()
}
