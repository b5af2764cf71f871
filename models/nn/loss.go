package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CrossEntropy is the softmax cross-entropy of each row of logits (n, k)
// with the target distribution in the same row of targets (n, k; one-hot
// rows for class labels): y_i = −Σ_j t_ij · log softmax(l_i)_j, an (n)
// vector, as PyTorch's F.cross_entropy(reduction="none") with
// probabilities as targets. The log-softmax subtracts the row maximum, so
// large logits do not overflow. The targets take no gradient; the
// logits' is dy_i · (softmax(l_i)·Σ_j t_ij − t_i).
func CrossEntropy(logits, targets *G.Node) (*G.Node, error) {
	s := logits.Shape()
	if len(s) != 2 || !s.Eq(targets.Shape()) {
		return nil, fmt.Errorf("CrossEntropy: logits %v and targets %v must be equal (n, k) matrices", s, targets.Shape())
	}
	n, k := s[0], s[1]
	return Apply("CrossEntropy", tensor.Shape{n}, Kernels(crossEntropy[float32](k), crossEntropy[float64](k)),
		[]bool{true, false}, func(in G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			dl, err := Apply("CrossEntropyGrad", s, Kernels(crossEntropyGrad[float32](k), crossEntropyGrad[float64](k)), nil, nil, in[0], in[1], gy)
			return G.Nodes{dl, nil}, err
		}, logits, targets)
}

// logSumExp is log Σ_j e^{l_j} of one row and its maximum.
func logSumExp[T Float](l []T) (lse, top float64) {
	top = math.Inf(-1)
	for _, v := range l {
		top = max(top, float64(v))
	}
	var sum float64
	for _, v := range l {
		sum += math.Exp(float64(v) - top)
	}
	return top + math.Log(sum), top
}

func crossEntropy[T Float](k int) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		l, t := in[0], in[1]
		Parallel(len(out), 4*k, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row, tr := l[i*k:(i+1)*k], t[i*k:(i+1)*k]
				lse, _ := logSumExp(row)
				var y float64
				for j, v := range row {
					if tr[j] != 0 {
						y -= float64(tr[j]) * (float64(v) - lse)
					}
				}
				out[i] = T(y)
			}
		})
		return nil
	}
}

func crossEntropyGrad[T Float](k int) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		l, t, g := in[0], in[1], in[2]
		Parallel(len(g), 4*k, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row, tr, o := l[i*k:(i+1)*k], t[i*k:(i+1)*k], out[i*k:(i+1)*k]
				lse, _ := logSumExp(row)
				var mass float64
				for _, v := range tr {
					mass += float64(v)
				}
				gi := float64(g[i])
				for j, v := range row {
					o[j] = T(gi * (math.Exp(float64(v)-lse)*mass - float64(tr[j])))
				}
			}
		})
		return nil
	}
}

// Softmax writes the row-wise softmax of logits (n rows of k) into probs,
// through the same max-subtracted log-sum-exp as CrossEntropy. It is a
// plain function for inference, outside any graph.
func Softmax[T Float](probs, logits []T, k int) {
	for i := 0; i+k <= len(logits); i += k {
		lse, _ := logSumExp(logits[i : i+k])
		for j := i; j < i+k; j++ {
			probs[j] = T(math.Exp(float64(logits[j]) - lse))
		}
	}
}
