package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/genstudio/genstudio/models/nn"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GANOptions are the settings both image GANs share: the loss, TTUR and
// the remedies for mode collapse. Both configs embed it, so their JSON
// keys stay flat.
type GANOptions struct {
	// DLR is the discriminator's learning rate (0: LR; TTUR when they differ).
	DLR float64 `json:"d_lr"`
	// Loss is the GAN loss: GANLossNS (the seed's), GANLossHinge or GANLossLS.
	Loss string `json:"loss"`
	// Pack is PacGAN's packing: D judges Pack samples at once (1 = off).
	Pack int `json:"pack"`
	// SpectralNorm spectrally normalises every layer of D.
	SpectralNorm bool `json:"spectral_norm"`
	// MSWeight is MSGAN's mode-seeking weight λ (0 = off).
	MSWeight float64 `json:"ms_weight"`
	// MinibatchStd gives D's last layer the batch's standard deviation (a
	// column of the MLP's, a feature map of the DCGAN's).
	MinibatchStd bool `json:"minibatch_std"`
	// DiffAugment augments D's real and fake inputs alike.
	DiffAugment bool `json:"diff_augment"`
	// R1 is the weight γ of the R1 penalty (Mescheder et al. 2018):
	// D's loss takes γ/2·E‖∇ₓD(x)‖² on the real batch (0 = off).
	R1 float64 `json:"r1"`
	// GP is the weight λ of WGAN-GP's gradient penalty (Gulrajani et al.
	// 2017): λ·E(‖∇D(x̂)‖ − 1)² at x̂ between a real and a fake image
	// (0 = off; 10 with the wgan loss is WGAN-GP).
	GP float64 `json:"gp"`
	// EMA is the decay of the generator's weight average that samples
	// use (0 = off).
	EMA float64 `json:"ema"`
	// Truncation ψ scales the noise samples use (the truncation trick in
	// its simplest form: z pulled toward the mean; 1 = off).
	Truncation float64 `json:"truncation"`
}

// setTruncation checks ψ and sets it.
func (o *GANOptions) setTruncation(psi float64) error {
	if err := fieldTruncation.Check(psi); err != nil {
		return err
	}
	o.Truncation = psi
	return nil
}

// defaultGANOptions are the seed's: the non-saturating loss, nothing else.
func defaultGANOptions() GANOptions { return GANOptions{Loss: GANLossNS, Pack: 1, Truncation: 1} }

// The GAN losses (the "loss" setting of both GANs).
const (
	// GANLossNS is the non-saturating loss of the seed (Goodfellow et al.):
	// D minimises BCE(D(x), 1) + BCE(D(G(z)), 0), G minimises BCE(D(G(z)), 1).
	GANLossNS = "ns"
	// GANLossHinge is the hinge loss (Lim & Ye; Miyato et al.): D minimises
	// mean(max(0, 1 − D(x))) + mean(max(0, 1 + D(G(z)))), G minimises −mean(D(G(z))).
	GANLossHinge = "hinge"
	// GANLossLS is the least-squares loss (Mao et al., LSGAN, a = 0, b = c = 1):
	// D minimises ½mean((D(x) − 1)²) + ½mean(D(G(z))²), G ½mean((D(G(z)) − 1)²).
	GANLossLS = "lsgan"
	// GANLossWGAN is the Wasserstein critic's loss (Arjovsky et al.): D
	// minimises mean(D(G(z))) − mean(D(x)), G −mean(D(G(z))); with the
	// gradient penalty (GP) it is WGAN-GP.
	GANLossWGAN = "wgan"
)

// fieldGANLoss and fieldDLR are the settings both GANs share.
var (
	fieldGANLoss = Field{Key: "loss", Label: "GAN loss", Help: "ns = the seed's non-saturating; hinge; lsgan = least squares; wgan = Wasserstein (with the gradient penalty: WGAN-GP)",
		Flag: "gan-loss", Kind: KindChoice, Choices: []string{GANLossNS, GANLossHinge, GANLossLS, GANLossWGAN}}
	fieldR1 = Field{Key: "r1", Label: "R1 penalty γ", Help: "D's loss takes γ/2 times its squared gradient on the real images (0 = off; 0.1–10)",
		Flag: "r1", Kind: KindFloat, Lo: 0, Hi: 1000}
	fieldGP = Field{Key: "gp", Label: "Gradient penalty λ", Help: "WGAN-GP: λ·(‖∇D‖ − 1)² between real and fake images (0 = off; 10 with the wgan loss)",
		Flag: "gp", Kind: KindFloat, Lo: 0, Hi: 1000}
	fieldPack = Field{Key: "pack", Label: "PacGAN packing", Help: "D judges this many samples at once (1 = off); the batch must be a multiple",
		Flag: "pack", Kind: KindInt, Lo: 1, Hi: 8}
	fieldSpectralNorm = Field{Key: "spectral_norm", Label: "Spectral norm", Help: "divide each D weight by its largest singular value (Miyato et al.)",
		Flag: "spectral-norm", Kind: KindBool}
	fieldDLR = Field{Key: "d_lr", Label: "D learning rate", Help: "0 = the learning rate; TTUR: D faster than G, e.g. 4e-4 with 1e-4",
		Flag: "d-lr", Kind: KindFloat, Lo: 0, Hi: 1, OpenHi: true}
)

// spectralLayer is a layer that can switch on spectral normalisation.
type spectralLayer interface{ SpectralNorm(*rand.Rand) }

// spectralNorm switches on spectral normalisation of ls, u and v drawn
// from a stream of seed of their own (the weights stay those of the same
// seed without it).
func spectralNorm(seed uint64, ls ...spectralLayer) {
	rng := rand.New(rand.NewPCG(seed, 0x5bec7a1))
	for _, l := range ls {
		l.SpectralNorm(rng)
	}
}

// layersOf lists Linear layers as spectralLayers.
func layersOf(ls []*nn.Linear) []spectralLayer {
	out := make([]spectralLayer, len(ls))
	for i, l := range ls {
		out[i] = l
	}
	return out
}

// check refuses a batch that does not split into packs, and gradient
// penalties beside the minibatch standard deviation, whose backward they
// cannot differentiate.
func (o GANOptions) check(batch int) error {
	if (o.R1 > 0 || o.GP > 0) && o.MinibatchStd {
		return errors.New("the R1 and WGAN-GP penalties do not combine with the minibatch std")
	}
	return checkPack(batch, o.Pack)
}

// checkPack refuses a batch that does not split into packs.
func checkPack(batch, pack int) error {
	if pack > 1 && batch%pack != 0 {
		return fmt.Errorf("the batch (%d) must be a multiple of the PacGAN packing (%d)", batch, pack)
	}
	return nil
}

// packRows reshapes x, b rows of n values (any trailing shape), to b/pack
// rows of pack×n: PacGAN's packing, D's input for pack samples at once
// (NCHW images become b/pack images of pack×C channels).
func packRows(x *G.Node, pack int) (*G.Node, error) {
	if pack <= 1 {
		return x, nil
	}
	s := x.Shape().Clone()
	s[0] /= pack
	s[1] *= pack
	return G.Reshape(x, s)
}

// dLR is the discriminator's learning rate: d_lr, or lr when it is 0.
func dLR(lr, dlr float64) float64 {
	if dlr > 0 {
		return dlr
	}
	return lr
}

// ganDLoss is the discriminator's loss of kind from its logits on the real
// batch (lr) and the fake batch (lf).
func ganDLoss(kind string, lr, lf *G.Node) (*G.Node, error) {
	switch kind {
	case GANLossNS, "":
		return discriminatorLoss(lr, lf)
	case GANLossHinge:
		one := oneLike(lr)
		a, err := G.Sub(one, lr)
		if err == nil {
			a, err = G.Rectify(a)
		}
		if err == nil {
			a, err = G.Mean(a)
		}
		if err != nil {
			return nil, err
		}
		b, err := G.Add(one, lf)
		if err == nil {
			b, err = G.Rectify(b)
		}
		if err == nil {
			b, err = G.Mean(b)
		}
		if err != nil {
			return nil, err
		}
		return G.Add(a, b)
	case GANLossLS:
		a, err := halfMeanSquare(lr, true)
		if err != nil {
			return nil, err
		}
		b, err := halfMeanSquare(lf, false)
		if err != nil {
			return nil, err
		}
		return G.Add(a, b)
	case GANLossWGAN:
		a, err := G.Mean(lf)
		if err != nil {
			return nil, err
		}
		b, err := G.Mean(lr)
		if err != nil {
			return nil, err
		}
		return G.Sub(a, b)
	}
	return nil, fmt.Errorf("unknown GAN loss %q", kind)
}

// ganGLoss is the generator's loss of kind from D's logits on the fakes.
func ganGLoss(kind string, lf *G.Node) (*G.Node, error) {
	switch kind {
	case GANLossNS, "":
		return bceWithLogits(lf, true)
	case GANLossHinge, GANLossWGAN:
		m, err := G.Mean(lf)
		if err != nil {
			return nil, err
		}
		return G.Neg(m)
	case GANLossLS:
		return halfMeanSquare(lf, true)
	}
	return nil, fmt.Errorf("unknown GAN loss %q", kind)
}

// halfMeanSquare is ½mean((x − 1)²) when toOne, else ½mean(x²).
func halfMeanSquare(x *G.Node, toOne bool) (*G.Node, error) {
	d := x
	var err error
	if toOne {
		if d, err = G.Sub(x, oneLike(x)); err != nil {
			return nil, err
		}
	}
	sq, err := G.Square(d)
	if err != nil {
		return nil, err
	}
	m, err := G.Mean(sq)
	if err != nil {
		return nil, err
	}
	return G.Mul(m, halfLike(x))
}

func oneLike(x *G.Node) *G.Node  { return vaeConst(x.Dtype(), 1) }
func halfLike(x *G.Node) *G.Node { return vaeConst(x.Dtype(), 0.5) }

// fieldMinibatchStd is the minibatch standard-deviation layer of both D's.
var fieldMinibatchStd = Field{Key: "minibatch_std", Label: "Minibatch std", Help: "D sees the batch's spread, so a batch of near-copies stands out (ProGAN)",
	Flag: "minibatch-std", Kind: KindBool}

// fieldDiffAugment is DiffAugment, a setting of both GANs.
var fieldDiffAugment = Field{Key: "diff_augment", Label: "DiffAugment", Help: "D sees real and fake images randomly recoloured, shifted and cut out (Zhao et al.)",
	Flag: "diff-augment", Kind: KindBool}

// augmenters are a GAN's DiffAugment draws, one per place an image batch
// enters D, all from one stream that each step reseeds from (the model's
// seed, the step), so a run resumed from a checkpoint draws what an
// uninterrupted one would (nil when off).
type augmenters struct {
	rng  *rand.Rand
	src  *rand.PCG
	seed uint64
	all  []*nn.Augment
	n, c int
	h, w int
}

func newAugmenters(on bool, seed uint64, shape ImageShape) *augmenters {
	if !on {
		return nil
	}
	src := rand.NewPCG(seed, 0xd1ffa06)
	return &augmenters{rng: rand.New(src), src: src, seed: seed, c: shape.Channels, h: shape.Height, w: shape.Width}
}

// apply augments x (n images, batch first) in its graph, or returns x
// when augmentation is off.
func (a *augmenters) apply(x *G.Node) (*G.Node, error) {
	if a == nil {
		return x, nil
	}
	aug := nn.NewAugment(x.Shape()[0], a.c, a.h, a.w, a.rng)
	a.all = append(a.all, aug)
	return aug.Apply(x)
}

// next draws the augmentations of optimizer step (0-based).
func (a *augmenters) next(step int) {
	if a == nil {
		return
	}
	a.src.Seed(a.seed, 0xd1ffa06^(uint64(step)*0x9e3779b97f4a7c15))
	for _, aug := range a.all {
		aug.Next()
	}
}

// fieldModeSeeking is MSGAN's weight, a setting of both GANs.
var fieldModeSeeking = Field{Key: "ms_weight", Label: "Mode seeking λ",
	Help: "MSGAN: G also minimises λ / (image distance ÷ latent distance) of the batch's two halves (0 = off)",
	Flag: "mode-seeking", Kind: KindFloat, Lo: 0, Hi: 100}

// msEps is MSGAN's ε in 1/(ratio + ε).
const msEps = 1e-5

// modeSeeking is MSGAN's regulariser (Mao et al. 2019) on a batch of
// fakes made from noise z: the batch's first and second halves are pairs
// (z₁, z₂) ↦ (G(z₁), G(z₂)), r = mean|G(z₁) − G(z₂)| / mean|z₁ − z₂|, and
// the term is weight / (r + ε). The latent distance is a graph input
// (dz) that setDZ writes before each run.
type modeSeeking struct {
	weight float64
	dz     *G.Node
	term   G.Value // the term's value after a run
}

// value is the term's value in the last run (0 before one, or without
// mode seeking).
func (ms *modeSeeking) value() float64 {
	if ms == nil || ms.term == nil {
		return 0
	}
	v, _ := scalar(ms.term)
	return v
}

// add returns cost + weight/(r + ε) for fake (batch first, even batch).
func (ms *modeSeeking) add(cost, fake *G.Node) (*G.Node, error) {
	b := fake.Shape()[0]
	if b < 2 || b%2 != 0 {
		return nil, fmt.Errorf("mode seeking needs an even batch, got %d", b)
	}
	dt := fake.Dtype()
	ms.dz = G.NewScalar(fake.Graph(), dt, G.WithValue(vaeScalar(dt, 1)), G.WithName("ms_dz"))
	f1, err := G.Slice(fake, G.S(0, b/2))
	if err != nil {
		return nil, err
	}
	f2, err := G.Slice(fake, G.S(b/2, b))
	if err != nil {
		return nil, err
	}
	d, err := G.Sub(f1, f2)
	if err == nil {
		d, err = G.Abs(d)
	}
	if err == nil {
		d, err = G.Mean(d)
	}
	if err == nil {
		d, err = G.Div(d, ms.dz)
	}
	if err == nil {
		d, err = G.Add(d, vaeConst(dt, msEps))
	}
	if err == nil {
		d, err = G.Div(vaeConst(dt, ms.weight), d)
	}
	if err == nil {
		G.Read(d, &ms.term)
		cost, err = G.Add(cost, d)
	}
	if err != nil {
		return nil, fmt.Errorf("mode seeking: %w", err)
	}
	return cost, nil
}

// setDZ writes mean|z₁ − z₂| of the noise z (batch rows of latent values).
func (ms *modeSeeking) setDZ(z []float32) error {
	if ms == nil || ms.dz == nil {
		return nil
	}
	h := len(z) / 2
	var s float64
	for i := 0; i < h; i++ {
		s += math.Abs(float64(z[i]) - float64(z[h+i]))
	}
	return G.Let(ms.dz, vaeScalar(ms.dz.Dtype(), s/float64(h)))
}

// gpEps are WGAN-GP's interpolation weights ε ~ U(0, 1), one per image,
// repeated over the image's values (nil without the penalty).
type gpEps struct{ t *tensor.Dense }

// draw fills one ε per image from rng.
func (e *gpEps) draw(rng *rand.Rand) {
	if e == nil {
		return
	}
	b := e.t.Shape()[0]
	n := e.t.Shape().TotalSize() / b
	for i := 0; i < b; i++ {
		u := rng.Float64()
		for j := i * n; j < (i+1)*n; j++ {
			nn.SetAt(e.t, j, u)
		}
	}
}

// dPenalties adds the R1 and WGAN-GP penalties to D's cost. xr and xf are
// D's real and fake inputs (after DiffAugment; one image a row or NCHW),
// lr D's logits on xr, eps WGAN-GP's ε (a node of xr's shape), and d
// applies D (its packing included) to a new input. Both penalties take
// the gradient of each D input (a pack of images when packing), then the
// mean over them.
func (o GANOptions) dPenalties(cost, xr, xf, lr, eps *G.Node, d func(*G.Node) (*G.Node, error)) (*G.Node, error) {
	// term is the penalty's mean over D's inputs, from D's output out at x.
	term := func(out, x *G.Node, w float64, lipschitz bool) (*G.Node, error) {
		g, err := nn.InputGrad(out, x)
		if err != nil {
			return nil, err
		}
		rows := x.Shape()[0] / max(1, o.Pack)
		if g, err = G.Reshape(g, tensor.Shape{rows, x.Shape().TotalSize() / rows}); err != nil {
			return nil, err
		}
		if g, err = nn.PenaltyRows(g, w, lipschitz); err != nil {
			return nil, err
		}
		if g, err = G.Mean(g); err != nil {
			return nil, err
		}
		return G.Add(cost, g)
	}
	var err error
	if o.R1 > 0 {
		if cost, err = term(lr, xr, o.R1, false); err != nil {
			return nil, fmt.Errorf("R1 penalty: %w", err)
		}
	}
	if o.GP > 0 {
		xh, err := G.Sub(xr, xf)
		if err == nil {
			xh, err = G.HadamardProd(eps, xh)
		}
		if err == nil {
			xh, err = G.Add(xf, xh)
		}
		var lh *G.Node
		if err == nil {
			lh, err = d(xh)
		}
		if err == nil {
			cost, err = term(lh, xh, o.GP, true)
		}
		if err != nil {
			return nil, fmt.Errorf("gradient penalty: %w", err)
		}
	}
	return cost, nil
}
