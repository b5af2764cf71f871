//go:build cgo && (linux || darwin) && !noopenblas

package models

/*
#cgo linux LDFLAGS: -lopenblas
#cgo darwin LDFLAGS: -framework Accelerate
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLASName names the BLAS the models run on.
const BLASName = "OpenBLAS (cgo)"

func init() { G.Use(netlib.Implementation{}) }
