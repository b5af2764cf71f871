package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// trainRun trains a small MLP GAN for steps in a new studio and returns the
// studio and the run folder.
func trainRun(t *testing.T, steps string) (*Studio, string) {
	t.Helper()
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	ui(func() { smallForm(s, steps) })
	tap(s.trainBtn)
	waitFor(t, "training to finish", func() bool { return s.worker == nil && s.model != nil && !s.trainBtn.Disabled() })
	return s, s.runDir
}

// TestReopenAndResumeTheSameRun: a run trained in one studio, opened in
// another (as after a restart) from its checkpoint, shows its history and
// previews; Resume run continues the same run folder, and its metrics
// hold every step once.
func TestReopenAndResumeTheSameRun(t *testing.T) {
	_, run := trainRun(t, "20")
	cks, _ := training.ListCheckpoints(filepath.Join(run, training.CkptFolder))
	if len(cks) != 1 {
		t.Fatalf("checkpoints %v", cks)
	}
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	errs := make(chan error, 1)
	ui(func() { s.LoadCheckpoint(cks[0], func(err error) { errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	var text string
	ui(func() { text = s.trainBtn.Text })
	if s.runDir != run || s.step != 20 || s.chart.Len("D loss") != 20 || text != "Resume run" {
		t.Fatalf("after loading: run %s (want %s), step %d, %d chart points, button %q", s.runDir, run, s.step, s.chart.Len("D loss"), text)
	}
	if len(s.previews) != 5 { // steps 0, 5, 10, 15, 20
		t.Fatalf("%d previews in the scrubber", len(s.previews))
	}
	// Scrub back to the first preview: the grid shows that file.
	ui(func() { s.ScrubTo(0) })
	want, _ := readRGBA(s.previews[0].Path)
	waitFor(t, "the scrubbed preview", func() bool {
		img, ok := s.grid.Image().(*image.RGBA)
		return ok && bytes.Equal(img.Pix, want.Pix)
	})
	ui(func() { s.form.steps.entry.SetText("30") })
	tap(s.trainBtn)
	waitFor(t, "the resumed run", func() bool { return s.worker == nil && s.step == 30 && !s.trainBtn.Disabled() })
	if s.runDir != run {
		t.Fatalf("the resume trained into %s, not %s", s.runDir, run)
	}
	if n := s.chart.Len("D loss"); n != 30 {
		t.Fatalf("chart has %d points after resuming", n)
	}
	recs, _ := training.ReadMetrics(filepath.Join(run, training.MetricsFile))
	if len(recs) != 30 {
		t.Fatalf("%d metrics lines, want 30", len(recs))
	}
	for i, r := range recs {
		if r.Step != i+1 || r.LR == 0 {
			t.Fatalf("metrics line %d: %+v", i, r)
		}
	}
	if s.lrChart.Len("learning rate") != 30 {
		t.Fatalf("learning-rate chart has %d points", s.lrChart.Len("learning rate"))
	}
	gif := filepath.Join(t.TempDir(), "progress.gif")
	ui(func() { s.SaveProgressGIF(gif, func(err error) { errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// TestRollBackAfterDivergence: a diverged run offers the roll-back; it
// loads the last checkpoint with the learning rate halved and goes on in
// the same run.
func TestRollBackAfterDivergence(t *testing.T) {
	s, run := trainRun(t, "10")
	cks, _ := training.ListCheckpoints(filepath.Join(run, training.CkptFolder))
	ui(func() {
		s.diverged(12, &models.NonFiniteLossError{Name: "D loss"})
	})
	if s.divergeDialog == nil || !strings.Contains(s.status.Text, "Diverged at step 13") {
		t.Fatalf("no roll-back offered; status %q", s.status.Text)
	}
	lr0 := configLR(t, s.model)
	ui(func() {
		s.divergeDialog.Hide()
		s.form.steps.entry.SetText("16")
		s.RollBack(cks[len(cks)-1], nil)
	})
	waitFor(t, "the rolled-back run", func() bool { return s.worker == nil && s.step == 16 && !s.trainBtn.Disabled() })
	if lr := configLR(t, s.model); lr != lr0*rollbackLR {
		t.Fatalf("learning rate %g after the roll-back, want %g", lr, lr0*rollbackLR)
	}
	if s.runDir != run {
		t.Fatalf("the roll-back trained into %s", s.runDir)
	}
}

func configLR(t *testing.T, m models.Model) float64 {
	t.Helper()
	b, _ := json.Marshal(m.Config())
	var c struct {
		LR float64 `json:"lr"`
	}
	json.Unmarshal(b, &c)
	return c.LR
}

// TestRunsTab lists a project's runs, overlays their curves, renames,
// pins and deletes.
func TestRunsTab(t *testing.T) {
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	dir := filepath.Join(t.TempDir(), "proj")
	errs := make(chan error, 1)
	ui(func() { smallForm(s, "6"); s.NewProject(dir, func(err error) { errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if i == 1 {
			tap(s.newBtn)
		}
		tap(s.trainBtn)
		waitFor(t, "a run", func() bool { return s.worker == nil && s.model != nil && s.step == 6 && !s.trainBtn.Disabled() })
	}
	ui(s.refreshRuns)
	waitFor(t, "the runs list", func() bool { return len(s.runs.runs) == 2 })
	r := s.runs.runs[0]
	if r.State != training.RunFinished || r.Step != 6 || r.Model != "gan/mlp" {
		t.Fatalf("run %+v", r)
	}
	ui(func() {
		s.runs.selected[s.runs.runs[0].ID] = true
		s.runs.selected[s.runs.runs[1].ID] = true
		s.overlayRuns()
	})
	waitFor(t, "two curves", func() bool { return len(s.runs.chart.SeriesNames()) == 2 })
	ui(func() {
		s.runs.list.Select(0)
		s.RenameRun(r.ID, "first try")
		s.pinNewest()
	})
	waitFor(t, "the renamed, pinned run", func() bool {
		return len(s.runs.runs) == 2 && s.runs.runs[0].Name == "first try" && len(s.runs.runs[0].Pinned) == 1
	})
	if !strings.Contains(runLine(s.runs.runs[0]), "first try") {
		t.Fatalf("row %q", runLine(s.runs.runs[0]))
	}
	ui(func() { s.DeleteRun(s.runs.runs[1]) })
	waitFor(t, "the deletion", func() bool { return len(s.runs.runs) == 1 })
	if _, err := os.Stat(r.Dir); err != nil {
		t.Fatal("the wrong run was deleted")
	}
	if len(s.proj.Runs) != 1 || s.proj.Runs[0].Name != "first try" {
		t.Fatalf("project runs %+v", s.proj.Runs)
	}
}

// TestWriteFailureDialog: a checkpoint the worker paused for offers to keep
// training or stop.
func TestWriteFailureDialog(t *testing.T) {
	s, _ := trainRun(t, "4")
	ui(func() { s.writeFailed("checkpoint", 4, errors.New("no space left on device"), true) })
	if s.writeDialog == nil || !strings.Contains(s.status.Text, "Paused: the checkpoint at step 4") {
		t.Fatalf("status %q", s.status.Text)
	}
}

// TestRunsTabWatchesAnotherWriter: a run folder that another process
// writes (here: a worker with no window) shows its progress and newest
// preview after a refresh.
func TestRunsTabWatchesAnotherWriter(t *testing.T) {
	s, run := trainRun(t, "5")
	ui(s.refreshRuns)
	waitFor(t, "the run", func() bool { return len(s.runs.runs) == 1 && s.runs.runs[0].Step == 5 })
	ui(func() { s.runs.list.Select(0) })
	waitFor(t, "its preview", func() bool { return strings.HasSuffix(s.runs.shown, training.PreviewName(5)) })
	// "Another process" continues the run.
	ck, err := training.LoadCheckpoint(filepath.Join(run, training.CkptFolder, training.CheckpointName(5)))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Model.Close()
	o := runOptions(runSettings{steps: 10, previewEvery: 5}, ck.Info.Seed, 5, run, false)
	d, _ := s.data.Conform(28, 1)
	w, err := training.NewWorker(ck.Model, d, o)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(t.Context())
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	for range w.Events() {
	}
	ui(s.refreshRuns)
	waitFor(t, "the new progress", func() bool {
		return len(s.runs.runs) == 1 && s.runs.runs[0].Step == 10 && strings.HasSuffix(s.runs.shown, training.PreviewName(10))
	})
}
