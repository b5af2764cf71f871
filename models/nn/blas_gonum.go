//go:build !cgo || !(linux || darwin) || noopenblas

package nn

import "runtime"

// BLASName names the BLAS the models run on.
const BLASName = "gonum (pure Go)"

// BLASThreads is how many threads the BLAS uses: gonum splits large
// products over GOMAXPROCS goroutines.
func BLASThreads() int { return runtime.GOMAXPROCS(0) }
