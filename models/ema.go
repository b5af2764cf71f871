package models

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// fieldEMA is the generator's exponential moving average, a setting of
// both GANs.
var fieldEMA = Field{Key: "ema", Label: "Generator EMA", Help: "decay of the average of G's weights that samples use (0 = off; 0.999 is usual)",
	Flag: "ema", Kind: KindFloat, Lo: 0, Hi: 1, OpenHi: true}

// fieldTruncation is the GANs' sampling truncation ψ.
var fieldTruncation = Field{Key: "truncation", Label: "Truncation ψ", Help: "samples use ψ·z: below 1 cleaner and less varied (1 = off)",
	Flag: "truncation", Kind: KindFloat, Lo: 0, Hi: 1, OpenLo: true}

// Truncater is a model whose samples take a truncation ψ (both GANs).
type Truncater interface {
	// Truncation is the ψ samples use now (1 = off).
	Truncation() float64
	// SetTruncation checks ψ and makes samples use it.
	SetTruncation(psi float64) error
}

// truncation is the ψ in effect (1 for a config that predates it).
func (o GANOptions) truncation() float64 {
	if o.Truncation == 0 {
		return 1
	}
	return o.Truncation
}

// truncate is ψ·z (z itself for ψ 1, or 0 from a config that predates
// the setting).
func truncate(z []float32, psi float64) []float32 {
	if psi == 1 || psi == 0 {
		return z
	}
	out := make([]float32, len(z))
	for i, v := range z {
		out[i] = float32(psi) * v
	}
	return out
}

// ema is an exponential moving average of a network's weights: after each
// step s ← β_t·s + (1 − β_t)·w with β_t = min(β, (1 + t)/(10 + t)) (the
// warm-up of TensorFlow's ExponentialMovingAverage, so that the random
// start fades fast), t counting the updates. Sampling swaps the averages
// in (with) and the live weights back. The averages are buffers
// "<prefix>.<weight>" of the state, so checkpoints keep them.
type ema struct {
	beta   float64
	live   []nn.Param
	shadow []*tensor.Dense
	backup []*tensor.Dense
	prefix string
}

// newEMA averages ps (nil when beta is 0), starting from their values.
func newEMA(beta float64, prefix string, ps []nn.Param) *ema {
	if beta == 0 {
		return nil
	}
	e := &ema{beta: beta, live: nn.Weights(ps), prefix: prefix}
	for _, p := range e.live {
		e.shadow = append(e.shadow, p.T.Clone().(*tensor.Dense))
		e.backup = append(e.backup, p.T.Clone().(*tensor.Dense))
	}
	return e
}

// update folds the live weights into the averages after optimizer step t
// (1, 2, ...).
func (e *ema) update(t int) {
	if e == nil {
		return
	}
	b := min(e.beta, float64(1+t)/float64(10+t))
	for i, p := range e.live {
		switch w := p.T.Data().(type) {
		case []float32:
			s, bb := e.shadow[i].Data().([]float32), float32(b)
			for j, x := range w {
				s[j] = bb*s[j] + (1-bb)*x
			}
		case []float64:
			s := e.shadow[i].Data().([]float64)
			for j, x := range w {
				s[j] = b*s[j] + (1-b)*x
			}
		}
	}
}

// with runs f with the averages in place of the live weights.
func (e *ema) with(f func() error) error {
	if e == nil {
		return f()
	}
	for i, p := range e.live {
		if err := tensorCopy(e.backup[i], p.T); err != nil {
			return err
		}
		if err := tensorCopy(p.T, e.shadow[i]); err != nil {
			return err
		}
	}
	err := f()
	for i, p := range e.live {
		if rerr := tensorCopy(p.T, e.backup[i]); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// params names the averages for the state.
func (e *ema) params() []nn.Param {
	if e == nil {
		return nil
	}
	out := make([]nn.Param, len(e.live))
	for i, p := range e.live {
		out[i] = nn.Param{Name: e.prefix + "." + p.Name, T: e.shadow[i], Transposed: p.Transposed, Buffer: true}
	}
	return out
}

// tensorCopy copies src's values into dst (same shape and type).
func tensorCopy(dst, src *tensor.Dense) error {
	switch d := dst.Data().(type) {
	case []float32:
		s, ok := src.Data().([]float32)
		if !ok || len(s) != len(d) {
			return fmt.Errorf("ema: tensors differ")
		}
		copy(d, s)
	case []float64:
		s, ok := src.Data().([]float64)
		if !ok || len(s) != len(d) {
			return fmt.Errorf("ema: tensors differ")
		}
		copy(d, s)
	default:
		return fmt.Errorf("ema: %T weights", d)
	}
	return nil
}
