package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// optimizeStep runs a training graph once (forward and backward), reads
// its loss (what G.Read bound to *loss), refuses a NaN or infinite loss
// before any weight changes, and lets opt apply the weights' gradients.
// what names the step in errors, lossName the loss.
func optimizeStep(vm G.VM, weights G.Nodes, loss *G.Value, opt *Adam, what, lossName string) (float64, error) {
	if err := runGrad(vm, weights); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	l, err := scalar(*loss)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, &NonFiniteLossError{Name: lossName, Value: l}
	}
	grads, err := gradsOf(weights)
	if err != nil {
		return 0, err
	}
	return l, opt.Update(grads)
}
