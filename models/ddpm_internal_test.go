package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

func tinyDDPMConfig() DDPMConfig {
	c := DefaultDDPMConfig()
	c.Width, c.Height, c.Channels = 2, 2, 1
	c.Hidden, c.TEmb, c.Batch = 6, 4, 3
	return c
}

// tinyDDPMInputs writes a fixed batch, fixed timesteps and fixed noise into
// d's training graph.
func tinyDDPMInputs(t *testing.T, d *DDPM) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	n := d.shape.Size()
	batch := make([]uint8, d.cfg.Batch*n)
	for i := range batch {
		batch[i] = uint8(rng.IntN(256))
	}
	eps := make([]float32, len(batch))
	FillNormal(eps, rng)
	if err := d.setStepInputs(batch, []int{0, 417, d.cfg.T - 1}, eps); err != nil {
		t.Fatal(err)
	}
}

func siluF64(u float64) float64 { return u / (1 + math.Exp(-u)) }

// TestDDPMForwardMatchesDefinition evaluates the reference's EpsMLP and MSE
// by hand in float64 on the graph's own inputs and weights and compares it
// with the graph's loss: the graph is the reference's model, not just some
// model whose gradients are consistent.
func TestDDPMForwardMatchesDefinition(t *testing.T) {
	d, err := newDDPM(tinyDDPMConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tinyDDPMInputs(t, d)
	if err := runGrad(d.train.vm, d.train.weights); err != nil {
		t.Fatal(err)
	}
	got, err := scalar(d.train.loss)
	if err != nil {
		t.Fatal(err)
	}
	lin := func(l *Linear, x []float64) []float64 {
		w, b := l.W.Data().([]float64), l.B.Data().([]float64)
		y := make([]float64, l.Out)
		for o := range y {
			y[o] = b[o]
			for i, xi := range x {
				y[o] += xi * w[i*l.Out+o]
			}
		}
		return y
	}
	xt, temb, eps := d.train.xt.Data().([]float64), d.train.temb.Data().([]float64), d.train.eps.Data().([]float64)
	n, te, h := d.shape.Size(), d.cfg.TEmb, d.cfg.Hidden
	var sum float64
	for r := 0; r < d.cfg.Batch; r++ {
		e := lin(d.Temb, temb[r*te:(r+1)*te])
		for i := range e {
			e[i] = siluF64(e[i])
		}
		h1 := lin(d.Inp, xt[r*n:(r+1)*n])
		for i := range h1 {
			h1[i] = siluF64(h1[i] + e[i])
		}
		m := lin(d.Mid, h1)
		h2 := make([]float64, h)
		for i := range h2 {
			h2[i] = h1[i] + siluF64(m[i]+e[i])
		}
		out := lin(d.Out, h2)
		for i, v := range out {
			diff := v - eps[r*n+i]
			sum += diff * diff
		}
	}
	want := sum / float64(d.cfg.Batch*n)
	if math.Abs(got-want) > 1e-12*math.Max(1, want) {
		t.Fatalf("graph loss %.15g, hand-computed %.15g", got, want)
	}
	// The time embedding fed in is the reference's.
	for r, ts := range []int{0, 417, d.cfg.T - 1} {
		for k := 0; k < te/2; k++ {
			f := math.Exp(-math.Log(10000) * float64(k) / float64(te/2))
			if s := temb[r*te+k]; math.Abs(s-math.Sin(float64(ts)*f)) > 1e-4 {
				t.Fatalf("temb(%d)[%d] = %g, want sin %g", ts, k, s, math.Sin(float64(ts)*f))
			}
			if c := temb[r*te+te/2+k]; math.Abs(c-math.Cos(float64(ts)*f)) > 1e-4 {
				t.Fatalf("temb(%d)[%d] = %g, want cos %g", ts, te/2+k, c, math.Cos(float64(ts)*f))
			}
		}
	}
}

// TestDDPMGradientsMatchFiniteDifferences checks Gorgonia's gradients of the
// MSE against central differences for every weight, in float64 on a tiny
// predictor built by the same code as the real one, with fixed t and eps.
func TestDDPMGradientsMatchFiniteDifferences(t *testing.T) {
	d, err := newDDPM(tinyDDPMConfig(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tinyDDPMInputs(t, d)
	checked := checkFiniteDifferences(t, d.train.vm, d.train.weights, &d.train.loss, d.Params(), 0)
	// 4*6+6 + 4*6+6 + 6*6+6 + 6*4+4
	if checked != 30+30+42+28 {
		t.Fatalf("%d parameters checked", checked)
	}
}

// TestAncestralPlanIsReference checks that the full ancestral sampler's
// coefficients are the reference's float32 expressions:
// mean = (x - β_t/sqrt(1-ᾱ_t)·eps)/sqrt(α_t), σ_t = sqrt(β_t), σ_0 = 0.
func TestAncestralPlanIsReference(t *testing.T) {
	d, err := NewDDPM(tinyDDPMConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	steps, err := d.plan(SampleOptions{Sampler: SamplerDDPM, Steps: d.cfg.T}, false)
	if err != nil {
		t.Fatal(err)
	}
	sc := d.sch
	for i, st := range steps {
		tt := d.cfg.T - 1 - i
		sigma := float32(math.Sqrt(float64(sc.betas32[tt])))
		if tt == 0 {
			sigma = 0
		}
		if st.t != tt || !st.ancestral || st.c1 != sc.betas32[tt]/sc.sqrt1mAbar32[tt] ||
			st.c2 != float32(math.Sqrt(float64(sc.alphas32[tt]))) || st.sigma != sigma {
			t.Fatalf("step %d: %+v", i, st)
		}
	}
}

// TestDDIMEta1IsPosteriorAncestral shows what DDIM with η = 1 and K = T is.
//
// Algebra: with ᾱ_prev = ᾱ_{t-1}, σ² = (1-ᾱ_{t-1})/(1-ᾱ_t)·(1-ᾱ_t/ᾱ_{t-1})
// = β_t(1-ᾱ_{t-1})/(1-ᾱ_t) = β̃_t, and 1-ᾱ_{t-1}-σ² = α_t(1-ᾱ_{t-1})²/(1-ᾱ_t),
// so the DDIM mean sqrt(ᾱ_{t-1})·x̂0 + sqrt(1-ᾱ_{t-1}-σ²)·eps equals the
// DDPM mean (x_t - β_t/sqrt(1-ᾱ_t)·eps)/sqrt(α_t). DDIM(η=1, K=T) is thus
// the ancestral sampler with σ_t² = β̃_t (Song et al. §4.1) — not the
// reference's σ_t² = β_t, which differs in the variance only.
//
// The test checks this numerically (1) for every t of both T = 1000
// schedules: σ² = β̃_t in float64, and one step of each sampler on the same
// x, eps and noise agrees to float32 rounding; (2) end to end on a small
// model with T = 50: both samplers fed the same noise stream give the same
// images, and the same intermediate x_t.
func TestDDIMEta1IsPosteriorAncestral(t *testing.T) {
	for _, schedule := range []string{ScheduleLinear, ScheduleCosine} {
		t.Run(schedule, func(t *testing.T) {
			cfg := tinyDDPMConfig()
			cfg.Schedule = schedule
			d, err := NewDDPM(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			sc := d.sch
			for tt := 1; tt < cfg.T; tt++ {
				s := ddimSigma(sc.abar[tt], sc.abar[tt-1], 1)
				bt := sc.betas[tt] * (1 - sc.abar[tt-1]) / (1 - sc.abar[tt])
				if math.Abs(s*s-bt) > 1e-12*bt {
					t.Fatalf("t=%d: DDIM σ² %.15g, β̃ %.15g", tt, s*s, bt)
				}
			}
			ddim, err := d.plan(SampleOptions{Sampler: SamplerDDIM, Steps: cfg.T, Eta: 1}, false)
			if err != nil {
				t.Fatal(err)
			}
			anc, err := d.plan(SampleOptions{Sampler: SamplerDDPM, Steps: cfg.T}, true)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			x, eps, z := make([]float32, 256), make([]float32, 256), make([]float32, 256)
			for i := range ddim {
				a, b := ddim[i], anc[i]
				if a.t != b.t || (a.sigma == 0) != (b.sigma == 0) ||
					math.Abs(float64(a.sigma-b.sigma)) > 1e-6*float64(b.sigma)+1e-12 {
					t.Fatalf("step %d: DDIM %+v, posterior ancestral %+v", i, a, b)
				}
				FillNormal(x, rng)
				FillNormal(eps, rng)
				FillNormal(z, rng)
				xa, xb := append([]float32(nil), x...), append([]float32(nil), x...)
				var zz []float32
				if a.sigma > 0 {
					zz = z
				}
				a.apply(xa, eps, zz)
				b.apply(xb, eps, zz)
				// The coefficients grow like 1/sqrt(ᾱ_t) at large t for
				// the cosine schedule; compare relative to the terms' size.
				scale := 1 + math.Abs(float64(a.cx)) + math.Abs(float64(b.c1/b.c2))
				for j := range xa {
					if diff := math.Abs(float64(xa[j] - xb[j])); diff > 2e-6*scale*(1+math.Abs(float64(x[j]))+math.Abs(float64(eps[j]))) {
						t.Fatalf("t=%d: DDIM step %g, ancestral β̃ step %g", a.t, xa[j], xb[j])
					}
				}
			}
		})
	}
	t.Run("end to end", func(t *testing.T) {
		cfg := tinyDDPMConfig()
		cfg.T, cfg.SampleSteps = 50, 50
		d, err := NewDDPM(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		z := NoiseFromSeed(70, d.NoiseDim(), 5)
		type snap struct {
			t int
			x []float32
		}
		var sa, sb []snap
		a, err := d.SampleWith(z, SampleOptions{Sampler: SamplerDDIM, Steps: cfg.T, Eta: 1}, rand.New(rand.NewPCG(9, 9)),
			func(t int, x []float32) error { sa = append(sa, snap{t, x}); return nil })
		if err != nil {
			t.Fatal(err)
		}
		steps, err := d.plan(SampleOptions{Sampler: SamplerDDPM, Steps: cfg.T}, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.run(z, steps, rand.New(rand.NewPCG(9, 9)), func(t int, x []float32) error { sb = append(sb, snap{t, x}); return nil }, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(sa) != len(sb) || len(sa) < 8 {
			t.Fatalf("%d and %d progress reports", len(sa), len(sb))
		}
		for i := range sa {
			if sa[i].t != sb[i].t {
				t.Fatalf("progress %d at t=%d and t=%d", i, sa[i].t, sb[i].t)
			}
			for j := range sa[i].x {
				if diff := math.Abs(float64(sa[i].x[j] - sb[i].x[j])); diff > 1e-4 {
					t.Fatalf("x_%d[%d]: DDIM %g, ancestral β̃ %g", sa[i].t, j, sa[i].x[j], sb[i].x[j])
				}
			}
		}
		unclamped := 0
		for j := range a {
			if math.Abs(float64(a[j]-b[j])) > 1e-4 {
				t.Fatalf("x_0[%d]: DDIM %g, ancestral β̃ %g", j, a[j], b[j])
			}
			if math.Abs(float64(a[j])) < 1 {
				unclamped++
			}
		}
		if unclamped < len(a)/4 {
			t.Fatalf("only %d of %d outputs inside (-1, 1): the comparison says little", unclamped, len(a))
		}
	})
}

func TestTimestepEmbedding(t *testing.T) {
	e := make([]float32, 128)
	timestepEmbedding(e, 0, 128)
	for k := 0; k < 64; k++ {
		if e[k] != 0 || e[64+k] != 1 {
			t.Fatalf("temb(0)[%d] = %g, %g; want 0, 1", k, e[k], e[64+k])
		}
	}
	timestepEmbedding(e, 999, 128)
	for k := 0; k < 64; k++ {
		f := math.Exp(-math.Log(10000) * float64(k) / 64)
		// t·f_k is rounded to float32: up to ~3e-5 rad off at t = 999.
		if math.Abs(float64(e[k])-math.Sin(999*f)) > 1e-4 || math.Abs(float64(e[64+k])-math.Cos(999*f)) > 1e-4 {
			t.Fatalf("temb(999)[%d] = %g, %g; want %g, %g", k, e[k], e[64+k], math.Sin(999*f), math.Cos(999*f))
		}
	}
}

func TestLinspaceIsTorchs(t *testing.T) {
	b := linspace(1e-4, 0.02, 1000)
	if b[0] != 1e-4 || b[999] != 0.02 {
		t.Fatalf("ends %g, %g", b[0], b[999])
	}
	for i := 1; i < 1000; i++ {
		if d := b[i] - b[i-1]; math.Abs(d-0.0199/999) > 1e-15 {
			t.Fatalf("step %d is %g", i, d)
		}
	}
}

// TestDiffusionTemperature: τ scales every step's σ in both samplers and
// leaves the rest of the plan alone; deterministic DDIM (η = 0) with τ is
// plain DDIM started from τ·x_T; τ = 1 (or unset) is the plain sampler;
// τ out of range is refused.
func TestDiffusionTemperature(t *testing.T) {
	cfg := tinyDDPMConfig()
	d, err := NewDDPM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, o := range []SampleOptions{{Sampler: SamplerDDPM, Steps: 5}, {Sampler: SamplerDDIM, Steps: 5, Eta: 0.5}} {
		plain, err := d.plan(o, false)
		if err != nil {
			t.Fatal(err)
		}
		o.Temperature = 0.5
		hot, err := d.plan(o, false)
		if err != nil {
			t.Fatal(err)
		}
		for i := range plain {
			want := plain[i]
			want.sigma *= 0.5
			if hot[i] != want {
				t.Fatalf("%s step %d: %+v, want %+v", o.Sampler, i, hot[i], want)
			}
		}
	}
	n := d.shape.Size()
	z := NoiseFromSeed(3, n, 4)
	zt := make([]float32, len(z))
	for i, v := range z {
		zt[i] = 0.7 * v
	}
	det := SampleOptions{Sampler: SamplerDDIM, Steps: 4}
	base, err := d.SampleWith(zt, det, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	det.Temperature = 0.7
	got, err := d.SampleWith(z, det, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range base {
		if math.Abs(float64(got[i]-base[i])) > 1e-6 {
			t.Fatalf("[%d]: DDIM at τ 0.7 gives %g, from 0.7·x_T %g", i, got[i], base[i])
		}
	}
	det.Temperature = 1
	one, _ := d.SampleWith(z, det, nil, nil)
	det.Temperature = 0
	unset, _ := d.SampleWith(z, det, nil, nil)
	for i := range one {
		if one[i] != unset[i] {
			t.Fatal("τ = 1 and τ unset differ")
		}
	}
	for _, bad := range []float64{-1, 11} {
		if err := (SampleOptions{Sampler: SamplerDDIM, Temperature: bad}).validate(cfg.T); err == nil {
			t.Errorf("temperature %g accepted", bad)
		}
	}
}
