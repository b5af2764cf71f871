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

// compileStep finishes a training graph: it reads the loss cost into
// *loss, adds the gradients of cost with respect to weights, and compiles
// the graph into a machine bound to them, one that keeps its buffers
// between runs (reuseTape) when reuse is set. lossName names the loss in
// errors.
func compileStep(eg *G.ExprGraph, cost *G.Node, loss *G.Value, weights G.Nodes, reuse bool, lossName string) (G.VM, error) {
	G.Read(cost, loss)
	if _, err := G.Grad(cost, weights...); err != nil {
		return nil, fmt.Errorf("differentiate %s: %w", lossName, err)
	}
	if reuse {
		return newReuseTape(eg, G.BindDualValues(weights...)), nil
	}
	return G.NewTapeMachine(eg, G.BindDualValues(weights...)), nil
}
