package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models/nn"
)

// TestEMAUpdate: s ← β_t·s + (1 − β_t)·w with β_t = min(β, (1+t)/(10+t)),
// and with() swaps the averages in and the live weights back.
func TestEMAUpdate(t *testing.T) {
	w := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{1, 2, 3}))
	e := newEMA(0.9, "avg", []nn.Param{{Name: "w", T: w}})
	want := []float64{1, 2, 3}
	for step := 1; step <= 40; step++ {
		d := w.Data().([]float64)
		for i := range d {
			d[i] = float64(step * (i + 1))
		}
		e.update(step)
		b := math.Min(0.9, float64(1+step)/float64(10+step))
		for i := range want {
			want[i] = b*want[i] + (1-b)*d[i]
		}
	}
	got := e.shadow[0].Data().([]float64)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("average %v, want %v", got, want)
		}
	}
	live := slices.Clone(w.Data().([]float64))
	var inside []float64
	if err := e.with(func() error { inside = slices.Clone(w.Data().([]float64)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inside, got) || !slices.Equal(w.Data().([]float64), live) {
		t.Fatalf("with: %v inside (want %v), %v after (want %v)", inside, got, w.Data(), live)
	}
	if p := e.params(); len(p) != 1 || p[0].Name != "avg.w" || !p[0].Buffer {
		t.Fatalf("params %+v", p)
	}
	if newEMA(0, "avg", nil) != nil {
		t.Fatal("β 0 made an average")
	}
}

// TestEMAGANs: with ema on, both GANs sample from the averaged generator
// (not the live one), keep the averages in their state as
// generator_ema.*, and a fresh model given that state samples the same.
func TestEMAGANs(t *testing.T) {
	for _, cfg := range []string{
		`{"ema":0.99,"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32]}`,
		`{"arch":"conv","ema":0.99,"batch":8,"latent":8,"g_features":8,"d_features":8}`,
	} {
		build := func() Model { return newGANForTest(t, cfg) }
		a := build()
		trainForTest(t, a, 4)
		z := NoiseFromSeed(2, a.NoiseDim(), 4)
		avg, err := a.Sample(z)
		if err != nil {
			t.Fatal(err)
		}
		var e *ema
		switch m := a.(type) {
		case *GAN:
			e = m.ema
		case *DCGAN:
			e = m.ema
		}
		var live []float32
		switch m := a.(type) {
		case *GAN:
			live, err = m.sample(z)
		case *DCGAN:
			live, err = m.sample(z)
		}
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(avg, live) {
			t.Errorf("%s: samples of the average equal the live generator's", cfg)
		}
		names := 0
		for _, p := range a.State() {
			if strings.HasPrefix(p.Name, "generator_ema.") {
				names++
			}
		}
		if names != len(e.live) || names == 0 {
			t.Errorf("%s: %d averages in the state for %d weights", cfg, names, len(e.live))
		}
		b := build()
		sa, sb := a.State(), b.State()
		for i := range sa {
			copyTensor(sb[i].T, sa[i].T)
		}
		got, err := b.Sample(z)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, avg) {
			t.Errorf("%s: the restored model samples differently", cfg)
		}
	}
}

// TestTruncation: a GAN at ψ samples ψ·z as the same GAN at 1 samples it,
// for both GANs; ψ outside (0, 1] is refused.
func TestTruncation(t *testing.T) {
	for _, cfg := range []string{
		`{"batch":8,"latent":8,"g_hidden":[32],"d_hidden":[32]}`,
		`{"arch":"conv","batch":8,"latent":8,"g_features":8,"d_features":8}`,
	} {
		m, err := New("gan", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		z := NoiseFromSeed(3, m.NoiseDim(), 2)
		zs := make([]float32, len(z))
		for i, v := range z {
			zs[i] = 0.6 * v
		}
		plain, _ := m.Sample(zs)
		tr := m.(Truncater)
		if err := tr.SetTruncation(0.6); err != nil {
			t.Fatal(err)
		}
		got, _ := m.Sample(z)
		if !slices.Equal(got, plain) {
			t.Errorf("%s: ψ 0.6 differs from sampling 0.6·z", cfg)
		}
		for _, bad := range []float64{0, -0.5, 1.5} {
			if tr.SetTruncation(bad) == nil {
				t.Errorf("ψ %g accepted", bad)
			}
		}
		m.Close()
	}
}

// TestEMAVAEs: with ema on, both VAEs sample from their averaged
// weights, keep the averages as ema.* buffers, and a model given that
// state samples the same.
func TestEMAVAEs(t *testing.T) {
	for _, cfg := range []string{`{"ema":0.9,"hidden":32,"batch":8}`, `{"arch":"conv","ema":0.9,"features":4,"batch":8}`} {
		build := func() Model {
			m, err := New("vae", []byte(cfg))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			return m
		}
		a := build()
		batch := make([]uint8, 8*a.Shape().Size())
		for i := range batch {
			batch[i] = uint8(i * 7)
		}
		for s := 0; s < 5; s++ {
			if _, err := a.TrainStep(batch, rand.New(rand.NewPCG(uint64(s), 1))); err != nil {
				t.Fatal(err)
			}
		}
		z := NoiseFromSeed(3, a.NoiseDim(), 2)
		avg, err := a.Sample(z)
		if err != nil {
			t.Fatal(err)
		}
		var live []float32
		switch v := a.(type) {
		case *VAE:
			e := v.ema
			v.ema = nil
			live, err = v.Sample(z)
			v.ema = e
		case *ConvVAE:
			e := v.ema
			v.ema = nil
			live, err = v.Sample(z)
			v.ema = e
		}
		if err != nil || slices.Equal(avg, live) {
			t.Fatalf("%s: samples of the average equal the live weights' (%v)", cfg, err)
		}
		names := 0
		for _, p := range a.State() {
			if strings.HasPrefix(p.Name, "ema.") && p.Buffer {
				names++
			}
		}
		if names == 0 {
			t.Fatalf("%s: no averages in the state", cfg)
		}
		b := build()
		sa, sb := a.State(), b.State()
		for i := range sa {
			copyTensor(sb[i].T, sa[i].T)
		}
		if got, err := b.Sample(z); err != nil || !slices.Equal(got, avg) {
			t.Fatalf("%s: the restored model samples differently (%v)", cfg, err)
		}
	}
}

// TestEMADDPM: with ema on, a DDPM samples from its averaged denoiser,
// keeps the averages as ema.* buffers, and a model given that state
// samples the same.
func TestEMADDPM(t *testing.T) {
	cfg := `{"ema":0.9,"t":10,"sample_steps":10,"hidden":32,"batch":8}`
	build := func() *DDPM {
		m, err := New("ddpm", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m.(*DDPM)
	}
	a := build()
	batch := make([]uint8, 8*a.Shape().Size())
	for i := range batch {
		batch[i] = uint8(i * 7)
	}
	for s := 0; s < 5; s++ {
		if _, err := a.TrainStep(batch, rand.New(rand.NewPCG(uint64(s), 1))); err != nil {
			t.Fatal(err)
		}
	}
	z := NoiseFromSeed(3, a.NoiseDim(), 2)
	avg, err := a.Sample(z)
	if err != nil {
		t.Fatal(err)
	}
	e := a.ema
	a.ema = nil
	live, err := a.Sample(z)
	a.ema = e
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(avg, live) {
		t.Fatal("samples of the average equal the live denoiser's")
	}
	names := 0
	for _, p := range a.State() {
		if strings.HasPrefix(p.Name, "ema.") && p.Buffer {
			names++
		}
	}
	if names != len(a.Params()) {
		t.Fatalf("%d averages in the state for %d weights", names, len(a.Params()))
	}
	b := build()
	sa, sb := a.State(), b.State()
	for i := range sa {
		copyTensor(sb[i].T, sa[i].T)
	}
	if got, err := b.Sample(z); err != nil || !slices.Equal(got, avg) {
		t.Fatalf("the restored model samples differently (%v)", err)
	}
}
