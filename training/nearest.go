package training

import (
	"context"
	"fmt"
	"slices"

	"github.com/genstudio/genstudio/project"
)

// TrainingIndex holds an evaluator's features of every image of a data
// set, to find the training images nearest to a sample in the evaluator's
// feature space (is a "creative" sample a copy?).
type TrainingIndex struct {
	ev   *Evaluator
	data *project.Dataset
	feat []float32
}

// NewTrainingIndex embeds the data set's images with ev; progress sees the
// images done.
func NewTrainingIndex(ctx context.Context, ev *Evaluator, data *project.Dataset, progress func(done, total int)) (*TrainingIndex, error) {
	if data.Width*data.Height*max(1, data.Channels) != ev.Size() {
		return nil, fmt.Errorf("nearest images: the evaluator takes %dx%dx%d images, the data set has %dx%dx%d",
			ev.Info.Width, ev.Info.Height, ev.Info.Channels, data.Width, data.Height, data.Channels)
	}
	feat, _, err := ev.Embed(ctx, Pixels01(data.Pixels), progress)
	if err != nil {
		return nil, fmt.Errorf("nearest images: %w", err)
	}
	return &TrainingIndex{ev: ev, data: data, feat: feat}, nil
}

// Data is the indexed data set.
func (x *TrainingIndex) Data() *project.Dataset { return x.data }

// Nearest returns, for each image (values in [0, 1]), the indices of the
// k training images nearest in feature space, nearest first.
func (x *TrainingIndex) Nearest(ctx context.Context, images []float32, k int) ([][]int, error) {
	q, _, err := x.ev.Embed(ctx, images, nil)
	if err != nil {
		return nil, fmt.Errorf("nearest images: %w", err)
	}
	n, total := len(q)/FeatureDim, len(x.feat)/FeatureDim
	k = min(k, total)
	out := make([][]int, n)
	type hit struct {
		i int
		d float32
	}
	for j := 0; j < n; j++ {
		qj := q[j*FeatureDim : (j+1)*FeatureDim]
		best := make([]hit, 0, k+1)
		for i := 0; i < total; i++ {
			var d float32
			for c, v := range x.feat[i*FeatureDim : (i+1)*FeatureDim] {
				e := v - qj[c]
				d += e * e
			}
			if len(best) == k && d >= best[k-1].d {
				continue
			}
			at, _ := slices.BinarySearchFunc(best, d, func(h hit, d float32) int {
				if h.d < d {
					return -1
				}
				return 1
			})
			best = slices.Insert(best, at, hit{i, d})
			if len(best) > k {
				best = best[:k]
			}
		}
		for _, h := range best {
			out[j] = append(out[j], h.i)
		}
	}
	return out, nil
}
