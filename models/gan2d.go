package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// GAN2DConfig configures the 2-D lab's GAN: MLPs on points of the plane,
// with the GAN losses, TTUR and PacGAN packing of the image GANs.
type GAN2DConfig struct {
	Latent int     `json:"latent"`
	Hidden int     `json:"hidden"` // width of each hidden layer
	Layers int     `json:"layers"` // hidden layers of G and of D
	LR     float64 `json:"lr"`
	DLR    float64 `json:"d_lr"`
	Beta1  float64 `json:"beta1"`
	LRSchedule
	Beta2 float64 `json:"beta2"`
	Batch int     `json:"batch"`
	Loss  string  `json:"loss"`
	Pack  int     `json:"pack"`
	// SpectralNorm spectrally normalises every layer of D.
	SpectralNorm bool `json:"spectral_norm"`
	// TopK is Top-k training's floor ν (Sinha et al. 2020): G learns from
	// the k fakes D scores best, k falling from the batch by 1 % every 100
	// steps to ν of it (0 = off: every fake).
	TopK float64 `json:"top_k"`
	// Rejection samples by discriminator rejection sampling (Azadi et al.
	// 2019): each proposal G(z) is kept with probability exp(D(x) − M), M
	// the largest logit seen (the lab's runner applies it).
	Rejection bool   `json:"rejection"`
	Seed      uint64 `json:"seed"`
}

// DefaultGAN2DConfig follows PacGAN's 2-D experiments (batch 100, Adam
// 1e-4) with small MLPs: latent 2, 3 hidden layers of 128 (ReLU in G,
// LeakyReLU 0.2 in D), Adam betas (0.5, 0.999), the non-saturating loss,
// no packing.
func DefaultGAN2DConfig() GAN2DConfig {
	return GAN2DConfig{Latent: 2, Hidden: 128, Layers: 3, LR: 1e-4, Beta1: 0.5, Beta2: 0.999, Batch: 100, LRSchedule: constantLR, Loss: GANLossNS, Pack: 1, Seed: 1}
}

// Validate reports the first setting that cannot work.
func (c GAN2DConfig) Validate() error {
	switch {
	case c.Latent < 1 || c.Latent > 256 || c.Hidden < 1 || c.Hidden > 4096 || c.Layers < 1 || c.Layers > 8:
		return fmt.Errorf("2-D GAN: latent %d, hidden %d, layers %d out of range (1–256, 1–4096, 1–8)", c.Latent, c.Hidden, c.Layers)
	case c.Pack < 1 || c.Pack > 8:
		return fmt.Errorf("2-D GAN: packing %d out of range 1–8", c.Pack)
	case !(c.TopK >= 0 && c.TopK <= 1):
		return fmt.Errorf("2-D GAN: top-k floor %g out of range 0–1", c.TopK)
	case c.DLR < 0 || c.DLR >= 1:
		return fmt.Errorf("2-D GAN: D learning rate %g out of range", c.DLR)
	}
	if err := checkPack(c.Batch, c.Pack); err != nil {
		return err
	}
	switch c.Loss {
	case GANLossNS, GANLossHinge, GANLossLS:
	default:
		return fmt.Errorf("2-D GAN: unknown loss %q", c.Loss)
	}
	return validateOptim(c.LR, c.Beta1, c.Beta2, c.Batch, c.LRSchedule)
}

// GAN2D is the lab's GAN on points (x, y).
type GAN2D struct {
	cfg        GAN2DConfig
	gen, disc  []*nn.Linear
	optG, optD *Adam
	dstep      *gan2DGraph // L_D of real and fake points
	gstep      *gan2DGraph // L_G of z, through a frozen D
	genFwd     map[int]*gan2DGraph
	critic     map[int]*gan2DGraph
	z, fake    []float32
	steps      int // steps taken (Top-k's schedule)
}

// gan2DGraph is one compiled graph with its inputs and output.
type gan2DGraph struct {
	vm      G.VM
	a, b    *tensor.Dense // inputs (b may be nil)
	weights G.Nodes
	out     G.Value
}

// NewGAN2D builds the lab's GAN with weights drawn from cfg.Seed.
func NewGAN2D(cfg GAN2DConfig) (*GAN2D, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x2d2d))
	m := &GAN2D{cfg: cfg, genFwd: map[int]*gan2DGraph{}, critic: map[int]*gan2DGraph{}}
	dt := tensor.Float32
	in := cfg.Latent
	for i := 0; i < cfg.Layers; i++ {
		m.gen = append(m.gen, nn.NewLinear(fmt.Sprintf("generator.%d", i), in, cfg.Hidden, true, dt, rng))
		in = cfg.Hidden
	}
	m.gen = append(m.gen, nn.NewLinear(fmt.Sprintf("generator.%d", cfg.Layers), in, 2, true, dt, rng))
	in = 2 * cfg.Pack
	for i := 0; i < cfg.Layers; i++ {
		m.disc = append(m.disc, nn.NewLinear(fmt.Sprintf("discriminator.%d", i), in, cfg.Hidden, true, dt, rng))
		in = cfg.Hidden
	}
	m.disc = append(m.disc, nn.NewLinear(fmt.Sprintf("discriminator.%d", cfg.Layers), in, 1, true, dt, rng))
	m.optG = NewAdam(nn.Tensors(m.params(m.gen)), cfg.LR, cfg.Beta1, cfg.Beta2)
	if cfg.SpectralNorm {
		spectralNorm(cfg.Seed, layersOf(m.disc)...)
	}
	m.optD = NewAdam(nn.Tensors(nn.Weights(m.params(m.disc))), dLR(cfg.LR, cfg.DLR), cfg.Beta1, cfg.Beta2)
	var err error
	if m.dstep, err = m.buildDStep(); err != nil {
		return nil, fmt.Errorf("2-D GAN: %w", err)
	}
	if m.gstep, err = m.buildGStep(); err != nil {
		return nil, fmt.Errorf("2-D GAN: %w", err)
	}
	m.z = make([]float32, cfg.Batch*cfg.Latent)
	m.fake = make([]float32, cfg.Batch*2)
	return m, nil
}

func (m *GAN2D) params(ls []*nn.Linear) []nn.Param {
	var ps []nn.Param
	for _, l := range ls {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Config is the model's configuration.
func (m *GAN2D) Config() GAN2DConfig { return m.cfg }

// mlp applies layers with act between them (none after the last).
func mlp(g *nn.Graph, ls []*nn.Linear, x *G.Node, slope float64) (*G.Node, error) {
	h := x
	var err error
	for i, l := range ls {
		if h, err = l.Forward(g, h); err != nil {
			return nil, err
		}
		if i < len(ls)-1 {
			if h, err = nn.LeakyReLU(h, slope, nil); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

func (m *GAN2D) discriminate(g *nn.Graph, x *G.Node) (*G.Node, error) {
	x, err := packRows(x, m.cfg.Pack)
	if err != nil {
		return nil, err
	}
	return mlp(g, m.disc, x, 0.2)
}

func (m *GAN2D) buildDStep() (*gan2DGraph, error) {
	b := m.cfg.Batch
	g := nn.NewGraph(true)
	s := &gan2DGraph{a: tensor.New(tensor.WithShape(b, 2), tensor.Of(tensor.Float32)), b: tensor.New(tensor.WithShape(b, 2), tensor.Of(tensor.Float32))}
	s.weights = g.Nodes(nn.Weights(m.params(m.disc)))
	lr, err := m.discriminate(g, g.Input("real", s.a))
	if err != nil {
		return nil, err
	}
	lf, err := m.discriminate(g, g.Input("fake", s.b))
	if err != nil {
		return nil, err
	}
	cost, err := ganDLoss(m.cfg.Loss, lr, lf)
	if err != nil {
		return nil, err
	}
	s.vm, err = compileStep(g.ExprGraph, cost, &s.out, s.weights, false, "D loss")
	return s, err
}

func (m *GAN2D) buildGStep() (*gan2DGraph, error) {
	b := m.cfg.Batch
	g := nn.NewGraph(true)
	s := &gan2DGraph{a: tensor.New(tensor.WithShape(b, m.cfg.Latent), tensor.Of(tensor.Float32))}
	s.weights = g.Nodes(m.params(m.gen))
	g.Freeze(m.params(m.disc))
	fake, err := mlp(g, m.gen, g.Input("z", s.a), 0)
	if err != nil {
		return nil, err
	}
	lf, err := m.discriminate(g, fake)
	if err != nil {
		return nil, err
	}
	if m.cfg.TopK > 0 {
		if lf, err = nn.TopKGrad(lf, m.topK); err != nil {
			return nil, err
		}
	}
	cost, err := ganGLoss(m.cfg.Loss, lf)
	if err != nil {
		return nil, err
	}
	s.vm, err = compileStep(g.ExprGraph, cost, &s.out, s.weights, false, "G loss")
	return s, err
}

// forwardGraph is G (generator) or D (critic) alone on n rows.
func (m *GAN2D) forwardGraph(n int, generator bool) (*gan2DGraph, error) {
	cache := m.critic
	if generator {
		cache = m.genFwd
	}
	if f, ok := cache[n]; ok {
		return f, nil
	}
	g := nn.NewGraph(false)
	var y *G.Node
	var err error
	f := &gan2DGraph{}
	if generator {
		f.a = tensor.New(tensor.WithShape(n, m.cfg.Latent), tensor.Of(tensor.Float32))
		y, err = mlp(g, m.gen, g.Input("z", f.a), 0)
	} else {
		// the critic scores single points: D's first layer sees the point
		// in each of its pack slots
		f.a = tensor.New(tensor.WithShape(n*m.cfg.Pack, 2), tensor.Of(tensor.Float32))
		y, err = m.discriminate(g, g.Input("x", f.a))
	}
	if err != nil {
		return nil, err
	}
	G.Read(y, &f.out)
	f.vm = G.NewTapeMachine(g.ExprGraph)
	cache[n] = f
	return f, nil
}

// Generate maps noise (Latent values a point) to points.
func (m *GAN2D) Generate(z []float32) ([]float32, error) {
	n := len(z) / m.cfg.Latent
	f, err := m.forwardGraph(n, true)
	if err != nil {
		return nil, err
	}
	copy(f.a.Data().([]float32), z)
	f.vm.Reset()
	if err := f.vm.RunAll(); err != nil {
		return nil, err
	}
	return append([]float32(nil), f.out.Data().([]float32)...), nil
}

// Sample draws n points with noise from rng.
func (m *GAN2D) Sample(n int, rng *rand.Rand) ([]float32, error) {
	z := make([]float32, n*m.cfg.Latent)
	FillNormal(z, rng)
	return m.Generate(z)
}

// Critic is D's logit at each point (x, y pairs): the lab's heat map.
func (m *GAN2D) Critic(points []float32) ([]float32, error) {
	n := len(points) / 2
	f, err := m.forwardGraph(n, false)
	if err != nil {
		return nil, err
	}
	x := f.a.Data().([]float32)
	for i := 0; i < n; i++ {
		for p := 0; p < m.cfg.Pack; p++ {
			x[(i*m.cfg.Pack+p)*2], x[(i*m.cfg.Pack+p)*2+1] = points[2*i], points[2*i+1]
		}
	}
	f.vm.Reset()
	if err := f.vm.RunAll(); err != nil {
		return nil, err
	}
	return append([]float32(nil), f.out.Data().([]float32)...), nil
}

// Step trains D, then G, on one batch of real points (Batch (x, y) pairs),
// with the noise from rng; it returns both losses.
func (m *GAN2D) Step(real []float32, rng *rand.Rand) (lossD, lossG float64, err error) {
	if len(real) != 2*m.cfg.Batch {
		return 0, 0, errors.New("2-D GAN: the batch has the wrong size")
	}
	FillNormal(m.z, rng)
	fake, err := m.Generate(m.z)
	if err != nil {
		return 0, 0, err
	}
	copy(m.dstep.a.Data().([]float32), real)
	copy(m.dstep.b.Data().([]float32), fake)
	if lossD, err = optimizeStep(m.dstep.vm, m.dstep.weights, &m.dstep.out, m.optD, "2-D D step", "D loss"); err != nil {
		return lossD, 0, err
	}
	copy(m.gstep.a.Data().([]float32), m.z)
	m.steps++
	lossG, err = optimizeStep(m.gstep.vm, m.gstep.weights, &m.gstep.out, m.optG, "2-D G step", "G loss")
	return lossD, lossG, err
}

// topK is how many of the fakes (D's judgements) G learns from this step:
// the batch, shrinking by 1 % every 100 steps down to TopK of it.
func (m *GAN2D) topK() int {
	n := m.cfg.Batch / m.cfg.Pack
	frac := max(m.cfg.TopK, math.Pow(0.99, float64(m.steps/100)))
	return max(1, int(math.Round(frac*float64(n))))
}

// LRSchedule implements Scheduled.
func (m *GAN2D) LRSchedule() LRSchedule { return m.cfg.LRSchedule }

// ScaleLR implements Scheduled: both learning rates become f times the
// configured ones.
func (m *GAN2D) ScaleLR(f float64) { m.cfg.LRSchedule.apply(f, m.optG, m.optD) }

// Close releases the compiled graphs.
func (m *GAN2D) Close() error {
	var errs []error
	for _, f := range []*gan2DGraph{m.dstep, m.gstep} {
		if f != nil {
			errs = append(errs, f.vm.Close())
		}
	}
	for _, c := range []map[int]*gan2DGraph{m.genFwd, m.critic} {
		for _, f := range c {
			errs = append(errs, f.vm.Close())
		}
	}
	return errors.Join(errs...)
}
