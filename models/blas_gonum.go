//go:build !cgo || !(linux || darwin) || noopenblas

package models

// BLASName names the BLAS the models run on.
const BLASName = "gonum (pure Go)"
