package nn

import (
	"sync/atomic"
	"time"
)

// ConvStats is how much time the convolution kernels (forward, and the
// gradients with respect to input, weights and bias) took, and how many
// floating-point operations they did, since the last ResetConvStats. The
// bench command uses it to report the share of a conv model's step spent
// in convolution.
type ConvStats struct {
	Time  time.Duration
	FLOPs float64
	Calls int64
}

var convNanos, convFLOPs, convCalls atomic.Int64

// ReadConvStats returns the convolution totals since the last reset.
func ReadConvStats() ConvStats {
	return ConvStats{Time: time.Duration(convNanos.Load()), FLOPs: float64(convFLOPs.Load()), Calls: convCalls.Load()}
}

// ResetConvStats zeroes the convolution totals.
func ResetConvStats() {
	convNanos.Store(0)
	convFLOPs.Store(0)
	convCalls.Store(0)
}

// record adds one convolution kernel call that started at t0 and did
// flops floating-point operations. Call it deferred:
// defer record(time.Now(), flops).
func record(t0 time.Time, flops int) {
	convNanos.Add(int64(time.Since(t0)))
	convFLOPs.Add(int64(flops))
	convCalls.Add(1)
}
