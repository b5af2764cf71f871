package nn

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
)

// TopKGrad is the identity on x (a column of n scores, such as D's logits
// on n fakes) whose backward passes the gradient only to the k largest
// values of the forward, scaled by n/k, so that a mean over the batch
// downstream becomes a mean over those k: the generator update of Top-k
// training (Sinha et al. 2020), which drops the fakes D scores worst. k is
// read at each run, clamped to 1..n.
func TopKGrad(x *G.Node, k func() int) (*G.Node, error) {
	n := x.Shape().TotalSize()
	if n < 1 {
		return nil, fmt.Errorf("TopKGrad: empty input")
	}
	keep := make([]bool, n)
	scale := 1.0
	return Apply("TopKGrad", x.Shape(), Kernels(topKFwd[float32](keep, &scale, k), topKFwd[float64](keep, &scale, k)),
		[]bool{true}, func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			dx, err := Apply("TopKGradMask", x.Shape(), Kernels(topKBwd[float32](keep, &scale), topKBwd[float64](keep, &scale)), nil, nil, gy)
			return G.Nodes{dx}, err
		}, x)
}

// topKFwd copies x and marks its k largest values in keep (ties broken by
// position).
func topKFwd[T Float](keep []bool, scale *float64, k func() int) func(out []T, in [][]T) error {
	idx := make([]int, len(keep))
	return func(out []T, in [][]T) error {
		x := in[0]
		copy(out, x)
		n := len(x)
		kk := min(max(k(), 1), n)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case x[a] > x[b]:
				return -1
			case x[a] < x[b]:
				return 1
			}
			return 0
		})
		clear(keep)
		for _, i := range idx[:kk] {
			keep[i] = true
		}
		*scale = float64(n) / float64(kk)
		return nil
	}
}

func topKBwd[T Float](keep []bool, scale *float64) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		s := T(*scale)
		for i, g := range in[0] {
			if keep[i] {
				out[i] = g * s
			} else {
				out[i] = 0
			}
		}
		return nil
	}
}
