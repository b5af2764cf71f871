package models

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// Adam is PyTorch's Adam (torch 1.13, single-tensor CPU path) over weight
// tensors kept outside the graph. Its moments are part of the checkpoint.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	// Clip, when > 0, scales the gradients down so that their joint L2
	// norm is at most Clip (torch.nn.utils.clip_grad_norm_ over the
	// optimizer's parameters).
	Clip   float64
	Step   int
	params []*tensor.Dense
	baseLR float64 // the rate a schedule scales
	m, v   []*tensor.Dense
}

// NewAdam makes an optimizer for params with zeroed moments.
func NewAdam(params []*tensor.Dense, lr, beta1, beta2 float64) *Adam {
	a := &Adam{LR: lr, Beta1: beta1, Beta2: beta2, Eps: 1e-8, params: params, baseLR: lr}
	for _, p := range params {
		a.m = append(a.m, tensor.New(tensor.WithShape(p.Shape().Clone()...), tensor.Of(p.Dtype())))
		a.v = append(a.v, tensor.New(tensor.WithShape(p.Shape().Clone()...), tensor.Of(p.Dtype())))
	}
	return a
}

// MomentTensors names the optimizer's moments for checkpoints, like
// PyTorch's optimizer state: prefix.<param>.exp_avg and .exp_avg_sq, where
// params are the tensors the optimizer updates, in its order.
func (a *Adam) MomentTensors(prefix string, params []NamedTensor) []NamedTensor {
	out := make([]NamedTensor, 0, 2*len(params))
	for i, p := range params {
		m, v := a.Moments(i)
		out = append(out,
			NamedTensor{Name: prefix + "." + p.Name + ".exp_avg", T: m, Transposed: p.Transposed, Optimizer: true},
			NamedTensor{Name: prefix + "." + p.Name + ".exp_avg_sq", T: v, Transposed: p.Transposed, Optimizer: true})
	}
	return out
}

// Moments returns the first and second moment tensors of parameter i.
func (a *Adam) Moments(i int) (m, v *tensor.Dense) { return a.m[i], a.v[i] }

// Update applies one Adam step with grads[i] the gradient of params[i].
func (a *Adam) Update(grads []tensor.Tensor) error {
	if len(grads) != len(a.params) {
		return fmt.Errorf("adam: %d gradients for %d parameters", len(grads), len(a.params))
	}
	scale, err := a.gradScale(grads)
	if err != nil {
		return err
	}
	a.Step++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.Step))
	bc2 := 1 - math.Pow(a.Beta2, float64(a.Step))
	stepSize := a.LR / bc1
	bc2Sqrt := math.Sqrt(bc2)
	for i, p := range a.params {
		switch pd := p.Data().(type) {
		case []float32:
			g, ok := grads[i].Data().([]float32)
			if !ok || len(g) != len(pd) {
				return fmt.Errorf("adam: gradient %d does not match its parameter", i)
			}
			if scale != 1 {
				for j := range g {
					g[j] *= float32(scale)
				}
			}
			adam32(pd, g, a.m[i].Data().([]float32), a.v[i].Data().([]float32),
				float32(a.Beta1), float32(a.Beta2), float32(stepSize), float32(bc2Sqrt), float32(a.Eps))
		case []float64:
			g, ok := grads[i].Data().([]float64)
			if !ok || len(g) != len(pd) {
				return fmt.Errorf("adam: gradient %d does not match its parameter", i)
			}
			m, v := a.m[i].Data().([]float64), a.v[i].Data().([]float64)
			for j := range pd {
				g[j] *= scale
				m[j] = a.Beta1*m[j] + (1-a.Beta1)*g[j]
				v[j] = a.Beta2*v[j] + (1-a.Beta2)*g[j]*g[j]
				pd[j] -= stepSize * m[j] / (math.Sqrt(v[j])/bc2Sqrt + a.Eps)
			}
		default:
			return fmt.Errorf("adam: unsupported dtype %v", p.Dtype())
		}
	}
	return nil
}

// NonFiniteGradientError reports a NaN or infinite gradient: the update
// was not applied.
type NonFiniteGradientError struct{ Norm float64 }

func (e *NonFiniteGradientError) Error() string {
	return fmt.Sprintf("a gradient became %v: training diverged (lower the learning rate or clip gradients); this optimizer's weights were not updated", e.Norm)
}

// gradScale is the gradients' joint L2 norm check: it fails on a
// non-finite gradient, and returns the factor that clips them to a.Clip
// (1 when they are within it or clipping is off).
func (a *Adam) gradScale(grads []tensor.Tensor) (float64, error) {
	var sum float64
	for _, g := range grads {
		switch d := g.Data().(type) {
		case []float32:
			for _, x := range d {
				sum += float64(x) * float64(x)
			}
		case []float64:
			for _, x := range d {
				sum += x * x
			}
		}
	}
	norm := math.Sqrt(sum)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return 0, &NonFiniteGradientError{Norm: norm}
	}
	if a.Clip > 0 && norm > a.Clip {
		// torch: clip_coef = max_norm / (total_norm + 1e-6).
		return a.Clip / (norm + 1e-6), nil
	}
	return 1, nil
}

// adam32 is the float32 update, in torch's order of operations.
func adam32(p, g, m, v []float32, b1, b2, stepSize, bc2Sqrt, eps float32) {
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	for j := range p {
		gj := g[j]
		mj := m[j]*b1 + gj*(1-b1)
		vj := v[j]*b2 + gj*gj*(1-b2)
		m[j], v[j] = mj, vj
		p[j] -= stepSize * mj / (float32(math.Sqrt(float64(vj)))/bc2Sqrt + eps)
	}
}
