package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/genstudio/genstudio/models/nn"
)

// msssimWeights are the exponents of the five scales (Wang et al. 2003),
// finest first.
var msssimWeights = [...]float64{0.0448, 0.2856, 0.3001, 0.2363, 0.1333}

const (
	ssimWindow = 11   // Gaussian window size, clipped to the image
	ssimSigma  = 1.5  // Gaussian σ, not rescaled when the window is clipped
	ssimK1     = 0.01 // luminance constant: C1 = (K1·L)², L = 1
	ssimK2     = 0.03 // contrast constant: C2 = (K2·L)²
)

// MSSSIM is the multi-scale SSIM of two images as google/compare_gan's
// image_similarity.multiscale_ssim (the diversity score of its
// ms_ssim_score.py) computes it, with data range 1: a and b are c×h×w
// (channel-major, NCHW without the N) in [0, 1]; each channel is scored on
// its own and the channel scores are averaged.
//
// Per channel and scale s = 1…5: an 11×11 Gaussian window, σ 1.5,
// normalised to sum 1, its size clipped to min(11, h_s, w_s) (σ stays
// 1.5), 'VALID' filtering (no padding) for the local means, variances
// and covariance (plain weighted moments, no n−1 compensation);
// luminance l = (2μxμy + C1)/(μx² + μy² + C1) and contrast-structure
// cs = (2σxy + C2)/(σx² + σy² + C2) with C1 = 0.01², C2 = 0.03²; cs_s is
// the mean of the cs map and ssim_s the mean of the l·cs map. The score
// is Π_{s<5} max(cs_s, 0)^w_s · max(ssim_5, 0)^w_5 with weights (0.0448,
// 0.2856, 0.3001, 0.2363, 0.1333): negative values clamp to 0 (compare_gan's
// relu), which makes the score 0.
//
// Between scales each image is 2×2 average pooled with stride 2; an odd
// height or width first gets its last row or column repeated (compare_gan
// pads by the remainder in 'SYMMETRIC' mode, then pools 'VALID'), so
// sizes go up: 28 → 14 → 7 → 4 → 2, and 9 → 5 → 3 → 2 → 1.
//
// MSSSIM(x, x) is 1; lower means less alike. It returns NaN for sizes
// that do not match w·h·c (it has no error: MeanMSSSIM validates).
func MSSSIM(a, b []float32, w, h, c int) float64 {
	if w < 1 || h < 1 || c < 1 || len(a) != w*h*c || len(b) != len(a) {
		return math.NaN()
	}
	var s ssimScratch
	return s.msssim(a, b, w, h, c)
}

// MeanMSSSIM is the mean MSSSIM over pairs random pairs of distinct images
// (i ≠ j, each pair drawn uniformly and independently by rng, so a pair
// may repeat; nil rng for a fixed seed) from images, n images of c×h×w
// each, in [0, 1] (values more than 1e-3 outside are refused). compare_gan
// averages over all ordered pairs i ≠ j within 5 shuffled batches of 64
// (20,160 pairs, the two orders of a pair scoring the same); drawing pairs
// from the whole set estimates the same mean without a batch size. The
// pairs are scored split over the cores and added in order, so the result
// does not depend on the split. Lower means more diverse samples: compare
// with the real data's own value.
func MeanMSSSIM(images []float32, w, h, c, pairs int, rng *rand.Rand) (float64, error) {
	if w < 1 || h < 1 || c < 1 {
		return 0, fmt.Errorf("MS-SSIM: image size must be positive, got %d×%d×%d (w×h×c)", w, h, c)
	}
	size := w * h * c
	n, err := rows("MS-SSIM images", images, size)
	if err != nil {
		return 0, err
	}
	if n < 2 {
		return 0, fmt.Errorf("MS-SSIM: needs at least 2 images, got %d", n)
	}
	if pairs < 1 {
		return 0, fmt.Errorf("MS-SSIM: needs at least 1 pair, got %d", pairs)
	}
	const slack = 1e-3
	for i, v := range images {
		if v < -slack || v > 1+slack {
			return 0, fmt.Errorf("MS-SSIM: pixel %v of image %d is outside [0, 1]", v, i/size)
		}
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(0, 0))
	}
	pi, pj := make([]int, pairs), make([]int, pairs)
	for p := range pi {
		i, j := rng.IntN(n), rng.IntN(n-1)
		if j >= i {
			j++
		}
		pi[p], pj[p] = i, j
	}
	vals := make([]float64, pairs)
	nn.Parallel(pairs, 30*size, func(lo, hi int) {
		var s ssimScratch
		for p := lo; p < hi; p++ {
			i, j := pi[p], pj[p]
			vals[p] = s.msssim(images[i*size:(i+1)*size], images[j*size:(j+1)*size], w, h, c)
		}
	})
	return sumAll(vals) / float64(pairs), nil
}

// ssimScratch holds the buffers of one MS-SSIM computation, reused from
// pair to pair.
type ssimScratch struct {
	x, y, t  []float64    // the two images at the current scale, pooling scratch
	rowPass  [5][]float64 // the five moments filtered along rows
	gaussian map[int][]float64
}

// grow returns b with length n, reallocating only when it is too short.
func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// window is the normalised 1-D Gaussian of the given size, σ = ssimSigma,
// centred at (size−1)/2; its outer product with itself is compare_gan's
// 2-D window (a softmax of −(i²+j²)/(2σ²), which factorises exactly).
func (s *ssimScratch) window(size int) []float64 {
	if g, ok := s.gaussian[size]; ok {
		return g
	}
	g := make([]float64, size)
	var sum float64
	for i := range g {
		u := float64(i) - float64(size-1)/2
		g[i] = math.Exp(-u * u / (2 * ssimSigma * ssimSigma))
		sum += g[i]
	}
	for i := range g {
		g[i] /= sum
	}
	if s.gaussian == nil {
		s.gaussian = map[int][]float64{}
	}
	s.gaussian[size] = g
	return g
}

func (s *ssimScratch) msssim(a, b []float32, w, h, c int) float64 {
	var total float64
	for ch := 0; ch < c; ch++ {
		total += s.channel(a[ch*w*h:(ch+1)*w*h], b[ch*w*h:(ch+1)*w*h], w, h)
	}
	return total / float64(c)
}

// channel is the MS-SSIM of one channel (h×w each).
func (s *ssimScratch) channel(a, b []float32, w, h int) float64 {
	s.x, s.y = grow(s.x, w*h), grow(s.y, w*h)
	for i := range a {
		s.x[i], s.y[i] = float64(a[i]), float64(b[i])
	}
	score := 1.0
	for scale, wt := range msssimWeights {
		if scale > 0 {
			s.x, s.t = pool2(s.x, s.t, w, h), s.x
			s.y, s.t = pool2(s.y, s.t, w, h), s.y
			w, h = (w+1)/2, (h+1)/2
		}
		ssim, cs := s.ssim(w, h)
		v := cs
		if scale == len(msssimWeights)-1 {
			v = ssim
		}
		if v <= 0 {
			return 0
		}
		score *= math.Pow(v, wt)
	}
	return score
}

// pool2 is src (h×w) 2×2 average pooled with stride 2 into dst (grown to
// ⌈h/2⌉×⌈w/2⌉), the last row and column repeated when h or w is odd.
func pool2(src, dst []float64, w, h int) []float64 {
	ow, oh := (w+1)/2, (h+1)/2
	dst = grow(dst, ow*oh)
	for i := 0; i < oh; i++ {
		r0, r1 := 2*i, min(2*i+1, h-1)
		for j := 0; j < ow; j++ {
			c0, c1 := 2*j, min(2*j+1, w-1)
			dst[i*ow+j] = (src[r0*w+c0] + src[r0*w+c1] + src[r1*w+c0] + src[r1*w+c1]) / 4
		}
	}
	return dst
}

// ssim is the mean l·cs and the mean cs of s.x against s.y (h×w each)
// under the clipped Gaussian window, filtered 'VALID' as two 1-D passes.
func (s *ssimScratch) ssim(w, h int) (ssim, cs float64) {
	size := min(ssimWindow, w, h)
	g := s.window(size)
	ow, oh := w-size+1, h-size+1
	for m := range s.rowPass {
		s.rowPass[m] = grow(s.rowPass[m], h*ow)
	}
	mx, my, mxx, myy, mxy := s.rowPass[0], s.rowPass[1], s.rowPass[2], s.rowPass[3], s.rowPass[4]
	for r := 0; r < h; r++ {
		xr, yr := s.x[r*w:(r+1)*w], s.y[r*w:(r+1)*w]
		for q := 0; q < ow; q++ {
			var sx, sy, sxx, syy, sxy float64
			for t, gt := range g {
				xv, yv := xr[q+t], yr[q+t]
				sx += gt * xv
				sy += gt * yv
				sxx += gt * xv * xv
				syy += gt * yv * yv
				sxy += gt * xv * yv
			}
			o := r*ow + q
			mx[o], my[o], mxx[o], myy[o], mxy[o] = sx, sy, sxx, syy, sxy
		}
	}
	const c1, c2 = (ssimK1 * ssimK1), (ssimK2 * ssimK2)
	for r := 0; r < oh; r++ {
		for q := 0; q < ow; q++ {
			var ux, uy, uxx, uyy, uxy float64
			for t, gt := range g {
				o := (r+t)*ow + q
				ux += gt * mx[o]
				uy += gt * my[o]
				uxx += gt * mxx[o]
				uyy += gt * myy[o]
				uxy += gt * mxy[o]
			}
			l := (2*ux*uy + c1) / (ux*ux + uy*uy + c1)
			v := (2*(uxy-ux*uy) + c2) / (uxx + uyy - ux*ux - uy*uy + c2)
			ssim += l * v
			cs += v
		}
	}
	nm := float64(ow * oh)
	return ssim / nm, cs / nm
}
