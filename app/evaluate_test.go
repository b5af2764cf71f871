package app

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/widgets"
)

// savedVAE writes an untrained MLP VAE checkpoint into a run folder.
func savedVAE(t *testing.T) string {
	t.Helper()
	m, err := models.New("vae", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := filepath.Join(t.TempDir(), "run", "checkpoints")
	path := filepath.Join(dir, training.CheckpointName(0))
	if err := training.SaveCheckpoint(path, m, training.CheckpointInfo{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEvaluateTabMatchesEval: the Evaluate tab scores a checkpoint with the
// numbers the library function behind `genstudio eval` gives for the same
// checkpoint, seed and N (e2e_test.go checks the command against the same
// function), shows them on the cards with the real test set beside them,
// records the evaluation in the run folder and in the Compare view.
func TestEvaluateTabMatchesEval(t *testing.T) {
	s := newTestStudio(t)
	ck := savedVAE(t)
	const n, seed = 256, 3
	errs := make(chan error, 1)
	var got *training.Report
	ui(func() { s.Evaluate(ck, n, seed, func(r *training.Report, err error) { got = r; errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	ev, err := training.MNISTEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	train, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	c, err := training.LoadCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Model.Close()
	want, err := training.EvaluateModel(t.Context(), c.Model, nil, training.EvalOptions{N: n, Seed: seed, Evaluator: ev, Train: train})
	if err != nil {
		t.Fatal(err)
	}
	strip := func(r *training.Report) string {
		x := *r
		x.Seconds, x.Source, x.Step = 0, "", 0
		b, _ := json.Marshal(x)
		return string(b)
	}
	if strip(got) != strip(want) {
		t.Fatalf("the tab and eval differ:\ntab  %s\neval %s", strip(got), strip(want))
	}

	var value, ref string
	ui(func() { value, ref = s.eval.cards[0].Text() })
	if value != widgets.FormatMetric(want.FID) {
		t.Errorf("FID card shows %q, FID is %v", value, want.FID)
	}
	if ref == "" || s.eval.real == nil || s.eval.real.ClassCoverage != 10 {
		t.Errorf("no real test set reference beside the FID card (%q)", ref)
	}
	if s.eval.pairs.Image() == nil || len(s.eval.hist.Labels()) != 10 {
		t.Error("no novelty pairs or class histogram shown")
	}
	recorded, err := training.ReadEvals(filepath.Join(filepath.Dir(filepath.Dir(ck)), training.EvalsFile))
	if err != nil || len(recorded) != 1 || recorded[0].FID != got.FID {
		t.Fatalf("run folder records %d evaluations (%v)", len(recorded), err)
	}
	if len(s.compare.rows) != 2 { // the evaluation and the real test set
		t.Fatalf("Compare view has %d rows", len(s.compare.rows))
	}

	// The Compare view sorts and exports what it shows.
	s.compare.add(&training.Report{Source: "other", N: n, FID: got.FID + 1})
	ui(func() { s.compare.sort(5, true) }) // FID, descending
	if s.compare.rows[0].Source != "other" {
		t.Errorf("sorted by FID descending, first row is %q", s.compare.rows[0].Source)
	}
	var buf bytes.Buffer
	if err := s.compare.writeCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 4 || recs[0][6] != "fid" {
		t.Fatalf("CSV: %d records, header %v (%v)", len(recs), recs[0], err)
	}
}

// TestEvaluateRefusesWithoutModel: with no model and no checkpoint, the
// tab says what to do instead of scoring nothing.
func TestEvaluateRefusesWithoutModel(t *testing.T) {
	s := newTestStudio(t)
	ui(func() { s.evaluateSelected() })
	if s.eval.cancel != nil {
		t.Fatal("an evaluation started without a model")
	}
}

// TestPeriodicEvaluationInWindow: "Evaluate every" charts FID over the
// steps and fills the Compare view while training runs.
func TestPeriodicEvaluationInWindow(t *testing.T) {
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	smallForm(s, "6")
	s.form.evalEvery.entry.SetText("3")
	tap(s.trainBtn)
	waitFor(t, "training to finish", func() bool { return s.model != nil && s.worker == nil && s.step == 6 })
	var steps []int
	var rows int
	ui(func() { steps, rows = append([]int(nil), s.evalSteps...), len(s.compare.rows) })
	if len(steps) != 2 || steps[0] != 3 || steps[1] != 6 || rows != 2 {
		t.Fatalf("evaluations at steps %v, %d Compare rows; want [3 6] and 2", steps, rows)
	}
	if n := s.evalChart.Len(s.evalChart.SeriesNames()[0]); n != 2 {
		t.Fatalf("evaluation chart has %d points", n)
	}
}

// TestEvaluatorForAFolder: a data set other than MNIST gets an evaluator
// of its own from the Evaluate tab (trained on its class folders, cached
// under its fingerprint), which Evaluate then uses.
func TestEvaluatorForAFolder(t *testing.T) {
	s := newTestStudio(t)
	test, err := project.LoadMNISTTest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for c := 0; c < 2; c++ {
		var px []float32
		for i := 0; len(px) < 160*784; i++ {
			if test.Labels[i] == c {
				px = append(px, training.Pixels01(test.Pixels[i*784:(i+1)*784])...)
			}
		}
		if _, err := training.ExportGallery(filepath.Join(dir, strconv.Itoa(c)), px, 160, models.ImageShape{Width: 28, Height: 28, Channels: 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	d, err := project.LoadSource(t.Context(), dir, project.Preprocess{Size: 28, Channels: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ck := savedVAE(t)
	errs := make(chan error, 1)
	ui(func() {
		s.setData(d)
		s.Evaluate(ck, 256, 1, func(_ *training.Report, err error) { errs <- err })
	})
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "Train evaluator") {
		t.Fatalf("evaluating without an evaluator for the folder: %v", err)
	}
	if s.eval.trainEv.Disabled() {
		t.Fatal("Train evaluator is disabled for a folder with classes")
	}
	var ev *training.Evaluator
	ui(func() { s.TrainEvaluator(func(e *training.Evaluator, err error) { ev = e; errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if ev.Classes() != 2 || ev.Info.TestN != 32 {
		t.Fatalf("evaluator of %d classes tested on %d images", ev.Classes(), ev.Info.TestN)
	}
	var r *training.Report
	ui(func() { s.Evaluate(ck, 256, 1, func(rep *training.Report, err error) { r = rep; errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if r.Evaluator != ev.ID() || s.eval.real != nil {
		t.Fatalf("scored with %s (want %s), reference row %v", r.Evaluator, ev.ID(), s.eval.real)
	}
}
