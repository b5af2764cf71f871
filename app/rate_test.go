package app

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"

	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

func fakeData(n int) *project.Dataset {
	d := &project.Dataset{Name: "test digits", Source: project.MNISTSource, Width: 28, Height: 28, Channels: 1, Pixels: make([]uint8, n*784)}
	for i := range d.Pixels {
		d.Pixels[i] = uint8(i * 7)
	}
	return d
}

// startRound picks the kind and models and starts a round, waiting for
// its first image.
func startRound(t *testing.T, s *Studio, label, a, b, trials string) {
	t.Helper()
	done := make(chan error, 1)
	ui(func() {
		s.tabs.SelectIndex(5) // Rate
		p := s.rate
		p.kind.SetSelected(label)
		addOption(p.modelA, a)
		addOption(p.modelB, b)
		p.modelA.SetSelected(a)
		if b != "" {
			p.modelB.SetSelected(b)
		}
		p.trials.SetSelected(trials)
		s.StartRound(func(err error) { done <- err })
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRateHYPETimed plays a timed real-or-generated quiz by keyboard,
// always answering "real": every real image is right, every fake wrong.
func TestRateHYPETimed(t *testing.T) {
	s := newTestStudio(t)
	ui(func() { s.data = fakeData(50) })
	ck := smallGANCheckpoint(t)
	startRound(t, s, rateKinds[3].label, ck, "", "10")
	var exposures []int
	for i := 0; i < 10; i++ {
		ui(func() {
			exposures = append(exposures, s.rate.exposure)
			s.typedKey(&fyne.KeyEvent{Name: fyne.KeyR})
		})
	}
	rs, err := training.Rounds(s.ratingsDir())
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d rounds saved, %v", len(rs), err)
	}
	r := rs[0]
	real := 0
	for i, tr := range r.Trials {
		if tr.RealIndex >= 0 {
			real++
		}
		if tr.ExposureMS != exposures[i] {
			t.Errorf("trial %d saved exposure %d, shown %d", i, tr.ExposureMS, exposures[i])
		}
	}
	if real != 5 || r.Summary.Score != 0.5 || r.Kind != training.RoundHYPETime || r.Summary.ThresholdMS == 0 {
		t.Errorf("%d real of %d, summary %+v", real, len(r.Trials), r.Summary)
	}
	var human string
	ui(func() {
		s.rateShowResults()
		human = s.compare.human.Text
	})
	if !strings.Contains(human, "HYPE_time") {
		t.Errorf("Compare shows %q", human)
	}
}

// TestRatePairAndRatings: a pair round by arrow keys counts wins for the
// model picked, whichever side it was on; a rating round saves the mean.
func TestRatePairAndRatings(t *testing.T) {
	s := newTestStudio(t)
	a, b := smallGANCheckpoint(t), smallGANCheckpoint(t)
	startRound(t, s, rateKinds[1].label, a, b, "10")
	for i := 0; i < 10; i++ {
		ui(func() {
			// Always pick model A's side.
			key := fyne.KeyName(fyne.KeyRight)
			if s.rate.items[s.rate.at].trial.Left {
				key = fyne.KeyLeft
			}
			s.typedKey(&fyne.KeyEvent{Name: key})
		})
	}
	startRound(t, s, rateKinds[0].label, a, "", "10")
	for i := 0; i < 10; i++ {
		ui(func() { s.typedKey(&fyne.KeyEvent{Name: fyne.KeyName([]string{"4", "2"}[i%2])}) })
	}
	rs, err := training.Rounds(s.ratingsDir())
	if err != nil || len(rs) != 2 {
		t.Fatalf("%d rounds, %v", len(rs), err)
	}
	if rs[0].Kind != training.RoundPair || rs[0].Summary.Score != 1 {
		t.Errorf("pair round %+v", rs[0].Summary)
	}
	if rs[1].Kind != training.RoundRate || rs[1].Summary.Score != 3 {
		t.Errorf("rating round %+v", rs[1].Summary)
	}
}
