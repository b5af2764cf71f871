package app

import (
	"context"
	"image"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// TestLaneNewestWins: while a job runs, later submissions cancel it and
// only the newest of those waiting runs.
func TestLaneNewestWins(t *testing.T) {
	l := newLane()
	started := make(chan struct{})
	var mu sync.Mutex
	var ran []int
	cancelled := make(chan bool, 1)
	l.submit(func(ctx context.Context) {
		close(started)
		select {
		case <-ctx.Done():
			cancelled <- true
		case <-time.After(5 * time.Second):
			cancelled <- false
		}
	})
	<-started
	done := make(chan struct{})
	for i := 1; i <= 3; i++ {
		l.submit(func(context.Context) {
			mu.Lock()
			ran = append(ran, i)
			mu.Unlock()
			if i == 3 {
				close(done)
			}
		})
	}
	if !<-cancelled {
		t.Fatal("the running job was not cancelled")
	}
	<-done
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 1 || ran[0] != 3 {
		t.Fatalf("ran %v, want only the newest [3]", ran)
	}
}

func smallGANCheckpoint(t *testing.T) string {
	t.Helper()
	c := models.DefaultDCGANConfig()
	c.GFeatures, c.DFeatures, c.Batch = 4, 4, 4
	m, err := models.NewDCGAN(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := training.SaveCheckpoint(p, m, training.CheckpointInfo{Step: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExploreTab opens a checkpoint, redraws as ψ moves, picks two
// samples, interpolates, draws variations and pins a favourite that
// carries its provenance.
func TestExploreTab(t *testing.T) {
	s := newTestStudio(t)
	p := s.explore
	ck := smallGANCheckpoint(t)
	ui(func() {
		addOption(p.source, ck)
		p.source.SetSelected(ck)
	})
	waitFor(t, "the first grid", func() bool { return p.gridProv != nil })
	var first *image.RGBA
	ui(func() {
		if !p.psiRow.Visible() || p.tempRow.Visible() || p.diffRows.Visible() {
			t.Error("a GAN shows other knobs than ψ")
		}
		first = p.gridImg
		if p.gridProv.N != 36 || p.gridProv.Checkpoint == "" {
			t.Errorf("grid provenance %+v", p.gridProv)
		}
		p.psi.SetValue(0.3) // as a drag does
	})
	waitFor(t, "the redraw at ψ 0.3", func() bool { return p.gridProv.Sampler.Truncation == 0.3 })
	ui(func() {
		if training.PixelDiff(first, p.gridImg) == 0 {
			t.Error("ψ 0.3 drew the same grid")
		}
		// Click sample 7 (row 1, column 1 of 6): A; then sample 2: B.
		sz := p.info.shape
		s.explorePick(image.Pt(training.GridGutter+1*(sz.Width+training.GridGutter)+3, training.GridGutter+1*(sz.Height+training.GridGutter)+3))
		s.ExplorePickSample(2)
		if p.a != 7 || p.b != 2 || p.interpBtn.Disabled() {
			t.Errorf("picked A %d, B %d", p.a, p.b)
		}
		p.frames.SetSelected("5")
		s.exploreInterpolate()
	})
	waitFor(t, "the interpolation", func() bool { return p.stripP != nil })
	ui(func() {
		if p.stripP.Kind != training.KindStrip || p.stripP.Frames != 5 || p.stripP.From.Index != 7 || p.stripP.To.Index != 2 {
			t.Errorf("strip %+v", p.stripP)
		}
		if p.saveGIF.Disabled() {
			t.Error("GIF export disabled for an interpolation")
		}
		// The strip's first frame is sample A of the grid.
		a := training.CellImage(p.gridImg, 7, 6, p.info.shape)
		if d := training.PixelDiff(a, training.CellImage(p.strip.Image().(*image.RGBA), 0, 5, p.info.shape)); d != 0 {
			t.Errorf("the path does not start at A: %d pixels differ", d)
		}
		p.stripP = nil
		s.exploreVariations()
	})
	waitFor(t, "the variations", func() bool { return p.stripP != nil })
	ui(func() {
		if p.stripP.Kind != training.KindVariations || p.stripP.N != 7 {
			t.Errorf("variations %+v", p.stripP)
		}
		s.explorePin()
	})
	var favs []string
	waitFor(t, "the pinned favourite", func() bool {
		favs, _ = training.Favourites(s.favouritesDir())
		return len(favs) == 1
	})
	prov, err := training.ReadProvenance(favs[0])
	if err != nil || prov.Kind != training.KindSample || *prov.Index != 7 || prov.Sampler.Truncation != 0.3 {
		t.Fatalf("favourite provenance %+v, %v", prov, err)
	}
	// It redraws to the pinned pixels.
	ckp, err := training.OpenProvenanceCheckpoint(prov, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ckp.Model.Close()
	opts, _ := prov.Sampler.Apply(ckp.Model)
	img, err := prov.Draw(ckp.Model, opts)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := training.ReadPNG(favs[0])
	if err != nil || training.PixelDiff(img, pinned) != 0 {
		t.Errorf("the favourite does not redraw to its pixels (%v)", err)
	}
}
