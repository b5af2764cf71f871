package training_test

import (
	"math"
	"testing"
	"time"

	"github.com/genstudio/genstudio/training"
)

func TestHYPERoundScore(t *testing.T) {
	// 10 real and 10 fake images; the user is wrong on 3 fakes and 1 real.
	var ts []training.Trial
	for i := 0; i < 10; i++ {
		said := 1 // "real" for a real image: right
		if i == 0 {
			said = 0
		}
		ts = append(ts, training.Trial{RealIndex: i, Score: said})
		said = 0 // "fake" for a fake: right
		if i < 3 {
			said = 1
		}
		ts = append(ts, training.Trial{RealIndex: -1, Sample: &training.Latent{Seed: 1, Index: i}, Score: said})
	}
	r := &training.Round{Kind: training.RoundHYPE, Seed: 7, Trials: ts}
	s, err := r.Summarise()
	if err != nil {
		t.Fatal(err)
	}
	if s.Score != 0.2 || !(s.Lo < 0.2 && s.Hi > 0.2 && s.Lo >= 0 && s.Hi <= 1) || s.Trials != 20 {
		t.Fatalf("HYPE∞ %+v, want 0.2 inside its interval", s)
	}
	// The interval is that of a binomial share: about ±1.96·√(p(1−p)/n).
	if w := s.Hi - s.Lo; math.Abs(w-2*1.96*math.Sqrt(0.2*0.8/20)) > 0.1 {
		t.Errorf("interval width %g", w)
	}
}

func TestStaircase(t *testing.T) {
	if training.NextExposure(500, true) != 400 || training.NextExposure(100, true) != 100 ||
		training.NextExposure(300, false) != 400 || training.NextExposure(500, false) != 500 {
		t.Fatal("staircase steps")
	}
	// 500 ✓ 400 ✓ 300 ✗ 400 ✓ 300 ✓ 200 ✗ 300: reversals at 300, 400 and 200.
	var ts []training.Trial
	ms := 500
	for _, ok := range []bool{true, true, false, true, true, false} {
		ts = append(ts, training.Trial{ExposureMS: ms})
		ms = training.NextExposure(ms, ok)
	}
	ts = append(ts, training.Trial{ExposureMS: ms})
	if got := training.StaircaseThreshold(ts); got != 300 {
		t.Errorf("threshold %g ms, want 300", got)
	}
}

func TestSaveRoundsNeverOverwrite(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	var paths []string
	for _, score := range []int{5, 2} {
		r := &training.Round{Kind: training.RoundRate, Started: at, Model: "m.safetensors", Trials: []training.Trial{{Score: score, RealIndex: -1}}}
		p, err := training.SaveRound(dir, r)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if paths[0] == paths[1] {
		t.Fatal("the second round overwrote the first")
	}
	rs, err := training.Rounds(dir)
	if err != nil || len(rs) != 2 || rs[0].Summary.Score+rs[1].Summary.Score != 7 {
		t.Fatalf("%d rounds read back, %v", len(rs), err)
	}
	if d := rs[0].Describe(); d == "" {
		t.Error("no description")
	}
}
