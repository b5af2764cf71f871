package nn

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
)

// Augment is DiffAugment (Zhao et al. 2020) for a batch of N images of
// C×H×W values in [−1, 1], stored flat or NCHW: the policy "color,
// translation, cutout" of the official code, each image with its own
// random draw — brightness + U(−½, ½); saturation (C > 1) scaling each
// pixel's deviation from its channel mean by U(0, 2); contrast scaling
// the deviation from the image mean by U(½, 3/2); a shift by up to ⅛ of
// the side (zero padding); and a zeroed square of half the side. Every
// step is linear in the image (brightness affine), so the augmentation
// is differentiable, as D's real and fake inputs need: the same kind of
// augmentation, drawn afresh, on both. Next draws the parameters a graph
// run uses; they stay fixed until the next Next.
type Augment struct {
	N, C, H, W int
	rng        *rand.Rand
	bright     []float64
	sat, con   []float64
	dx, dy     []int // translation
	cx, cy     []int // cutout square's top-left corner
	cut        int   // cutout side
}

// NewAugment makes an augmenter of n images of c×h×w drawing from rng, and
// draws its first parameters.
func NewAugment(n, c, h, w int, rng *rand.Rand) *Augment {
	a := &Augment{N: n, C: c, H: h, W: w, rng: rng,
		bright: make([]float64, n), sat: make([]float64, n), con: make([]float64, n),
		dx: make([]int, n), dy: make([]int, n), cx: make([]int, n), cy: make([]int, n),
		cut: int(float64(min(h, w))*0.5 + 0.5)}
	a.Next()
	return a
}

// Next draws new parameters for every image.
func (a *Augment) Next() {
	sx, sy := int(float64(a.W)*0.125+0.5), int(float64(a.H)*0.125+0.5)
	for i := 0; i < a.N; i++ {
		a.bright[i] = a.rng.Float64() - 0.5
		a.sat[i] = 2 * a.rng.Float64()
		a.con[i] = a.rng.Float64() + 0.5
		a.dx[i] = a.rng.IntN(2*sx+1) - sx
		a.dy[i] = a.rng.IntN(2*sy+1) - sy
		a.cx[i] = a.rng.IntN(a.W + 1 - a.cut) // the square lies inside the image
		a.cy[i] = a.rng.IntN(a.H + 1 - a.cut)
	}
}

// AugmentDraw is one image's DiffAugment parameters: the brightness
// shift, the saturation and contrast factors, the translation and the
// cutout square's top-left corner.
type AugmentDraw struct {
	Bright, Sat, Con float64
	DX, DY, CX, CY   int
}

// Draws lists the parameters the next run uses, one per image (the
// exported PyTorch recipe's test replays them).
func (a *Augment) Draws() []AugmentDraw {
	out := make([]AugmentDraw, a.N)
	for i := range out {
		out[i] = AugmentDraw{a.bright[i], a.sat[i], a.con[i], a.dx[i], a.dy[i], a.cx[i], a.cy[i]}
	}
	return out
}

// Apply adds the augmentation of x (N rows of C·H·W values, any shape) to
// x's graph.
func (a *Augment) Apply(x *G.Node) (*G.Node, error) {
	if x.Shape().TotalSize() != a.N*a.C*a.H*a.W || x.Shape()[0] != a.N {
		return nil, fmt.Errorf("DiffAugment: input %v, want %d images of %d×%d×%d", x.Shape(), a.N, a.C, a.H, a.W)
	}
	shape := x.Shape().Clone()
	return Apply("DiffAugment", shape, Kernels(augKernel[float32](a, false), augKernel[float64](a, false)), []bool{true},
		func(_ G.Nodes, _, gy *G.Node) (G.Nodes, error) {
			dx, err := Apply("DiffAugmentGrad", shape, Kernels(augKernel[float32](a, true), augKernel[float64](a, true)), nil, nil, gy)
			return G.Nodes{dx}, err
		}, x)
}

// scaleAbout is v ← (v − mean)·k + mean over the groups of values that
// index(g, j) lists: the saturation (per pixel over channels) and the
// contrast (over the image) steps, and, being symmetric, their transposes.
func scaleAbout(v []float64, k float64, groups, size int, index func(g, j int) int) {
	for g := 0; g < groups; g++ {
		var m float64
		for j := 0; j < size; j++ {
			m += v[index(g, j)]
		}
		m /= float64(size)
		for j := 0; j < size; j++ {
			p := index(g, j)
			v[p] = (v[p]-m)*k + m
		}
	}
}

// colour applies (or, transposed, back-propagates through) the colour
// steps of image i in place.
func (a *Augment) colour(v []float64, i int, transpose bool) {
	hw := a.H * a.W
	if !transpose {
		for p := range v {
			v[p] += a.bright[i]
		}
	}
	sat := func() {
		if a.C > 1 {
			scaleAbout(v, a.sat[i], hw, a.C, func(g, c int) int { return c*hw + g })
		}
	}
	con := func() { scaleAbout(v, a.con[i], 1, len(v), func(_, j int) int { return j }) }
	if transpose {
		con()
		sat()
	} else {
		sat()
		con()
	}
}

// place moves image i's values by its shift and zeroes its cutout square:
// forward from src into dst, or (transpose) the gradient back.
func (a *Augment) place(dst, src []float64, i int, transpose bool) {
	clear(dst)
	hw := a.H * a.W
	for c := 0; c < a.C; c++ {
		for r := 0; r < a.H; r++ {
			for q := 0; q < a.W; q++ {
				if r >= a.cy[i] && r < a.cy[i]+a.cut && q >= a.cx[i] && q < a.cx[i]+a.cut {
					continue // cut out
				}
				sr, sq := r-a.dy[i], q-a.dx[i]
				if sr < 0 || sr >= a.H || sq < 0 || sq >= a.W {
					continue // shifted in from outside: zero
				}
				out, in := c*hw+r*a.W+q, c*hw+sr*a.W+sq
				if transpose {
					dst[in] = src[out]
				} else {
					dst[out] = src[in]
				}
			}
		}
	}
}

// augKernel runs the augmentation of every image (or, with transpose, its
// backward on the gradient): colour then placement forward, placement
// then colour back.
func augKernel[T Float](a *Augment, transpose bool) func(out []T, in [][]T) error {
	return func(out []T, in [][]T) error {
		m := a.C * a.H * a.W
		Parallel(a.N, m*8, func(lo, hi int) {
			v, w := make([]float64, m), make([]float64, m)
			for i := lo; i < hi; i++ {
				for j, x := range in[0][i*m : (i+1)*m] {
					v[j] = float64(x)
				}
				if transpose {
					a.place(w, v, i, true)
					a.colour(w, i, true)
				} else {
					a.colour(v, i, false)
					a.place(w, v, i, false)
				}
				for j, x := range w {
					out[i*m+j] = T(x)
				}
			}
		})
		return nil
	}
}
