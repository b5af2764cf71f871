//go:build cgo && (linux || darwin) && !noopenblas

package models

/*
#cgo linux LDFLAGS: -lopenblas
#cgo darwin LDFLAGS: -framework Accelerate
#ifdef __linux__
int openblas_get_num_threads(void);
static int gsBLASThreads(void) { return openblas_get_num_threads(); }
#else
static int gsBLASThreads(void) { return 0; }
#endif
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLASName names the BLAS the models run on.
const BLASName = "OpenBLAS (cgo)"

// BLASThreads is how many threads the BLAS uses (0 if it does not say).
func BLASThreads() int { return int(C.gsBLASThreads()) }

func init() { G.Use(netlib.Implementation{}) }
