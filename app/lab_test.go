package app

import (
	"testing"

	"github.com/genstudio/genstudio/training"
)

// TestLabTab trains the 2-D GAN from the Lab tab: the live view updates,
// and the result is the protocol's, the same as `genstudio lab` gives
// for the same technique, seed and steps.
func TestLabTab(t *testing.T) {
	s := newTestStudio(t)
	ui(func() {
		s.lab.data.SetSelected("grid25")
		s.lab.technique.SetSelected("pacgan2")
		s.lab.steps.SetText("200")
		s.lab.seed.SetText("2")
	})
	errs := make(chan error, 1)
	var got *training.LabResult
	ui(func() { s.TrainLab(func(r *training.LabResult, err error) { got = r; errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	cfg, err := training.LabConfig("pacgan2", 2)
	if err != nil {
		t.Fatal(err)
	}
	want, err := training.RunLab(t.Context(), training.Grid25, cfg, 200, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Modes != want.Modes || got.HighQuality != want.HighQuality {
		t.Errorf("the tab got %d modes, %.3f high quality; lab gives %d, %.3f", got.Modes, got.HighQuality, want.Modes, want.HighQuality)
	}
	if s.lab.bar.Value != 1 || s.lab.trainBtn.Disabled() || !s.lab.stopBtn.Disabled() {
		t.Error("the tab is not in its finished state")
	}
}
