package training_test

import (
	"context"
	"errors"
	"image/gif"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/genstudio/genstudio/training"
)

// fullDisk fails every write to a checkpoint as a full disk does, after
// a few bytes.
type fullDisk struct {
	w io.Writer
	n int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if f.n+len(p) > 100 {
		return 0, syscall.ENOSPC
	}
	f.n += len(p)
	return f.w.Write(p)
}

func failCheckpoints(path string, w io.Writer) io.Writer {
	if strings.HasSuffix(path, ".safetensors") {
		return &fullDisk{w: w}
	}
	return w
}

// TestFullDiskPausesAndKeepsTheCheckpoint: under WriteFailPause a
// checkpoint that cannot be written pauses the run and says why, the
// previous checkpoint stays intact and no temporary file is left; resumed,
// the run goes on and finishes once the disk has room again.
func TestFullDiskPausesAndKeepsTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ckDir := filepath.Join(dir, training.CkptFolder)
	m := smallGAN(t, 3)
	var w *training.Worker
	var restore func()
	defer func() {
		if restore != nil {
			restore()
		}
	}()
	w, err := training.NewWorker(m, loadMNIST(t).Subset(512), training.Options{Steps: 20, Seed: 3, CheckpointDir: ckDir, CheckpointSteps: 5,
		OnWriteError: training.WriteFailPause, RunDir: dir,
		AfterStep: func(step int) {
			if step == 6 {
				restore = training.InjectWriter(failCheckpoints) // the disk fills up after the first checkpoint
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	good := filepath.Join(ckDir, training.CheckpointName(5))
	var before []byte
	var failed, paused bool
	var done training.DoneEvent
	for ev := range w.Events() {
		switch e := ev.(type) {
		case training.CheckpointEvent:
			if e.Err == nil {
				continue
			}
			if !errors.Is(e.Err, syscall.ENOSPC) || !e.Paused || e.Step != 10 {
				t.Fatalf("failed checkpoint event %+v", e)
			}
			failed = true
			if before, err = os.ReadFile(good); err != nil {
				t.Fatal(err)
			}
			if _, err := training.LoadCheckpoint(good); err != nil {
				t.Fatalf("the previous checkpoint does not load: %v", err)
			}
			left, _ := filepath.Glob(filepath.Join(ckDir, ".*tmp*"))
			if len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		case training.StateEvent:
			if failed && e.State == training.Paused && !paused {
				paused = true
				restore() // the user frees space and presses Resume
				restore = nil
				w.Resume()
			}
		case training.DoneEvent:
			done = e
		}
	}
	if !failed || !paused || done.Err != nil || done.Step != 20 {
		t.Fatalf("failed %v, paused %v, done %+v", failed, paused, done)
	}
	after, _ := os.ReadFile(good)
	if string(after) != string(before) {
		t.Fatal("the previous checkpoint changed")
	}
	cks, _ := training.ListCheckpoints(ckDir)
	if len(cks) == 0 || filepath.Base(cks[len(cks)-1]) != training.CheckpointName(20) {
		t.Fatalf("checkpoints after the run: %v", cks)
	}
}

// TestFailedWritesStopOrContinue: a preview folder that became a file
// (a real OS error) ends a run under WriteFailStop with the error, and
// under WriteFailContinue is reported and the run finishes.
func TestFailedWritesStopOrContinue(t *testing.T) {
	for _, policy := range []training.WriteFailure{training.WriteFailStop, training.WriteFailContinue} {
		dir := t.TempDir()
		prev := filepath.Join(dir, "samples")
		w, err := training.NewWorker(smallGAN(t, 3), loadMNIST(t).Subset(512), training.Options{Steps: 12, Seed: 3, PreviewDir: prev, PreviewEvery: 4,
			OnWriteError: policy, AfterStep: func(step int) {
				if step == 2 {
					os.RemoveAll(prev)
					os.WriteFile(prev, []byte("not a folder"), 0o644)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		w.Start(context.Background())
		var reported int
		var done training.DoneEvent
		for ev := range w.Events() {
			switch e := ev.(type) {
			case training.WriteErrorEvent:
				if e.What != "preview" || e.Err == nil {
					t.Fatalf("write error event %+v", e)
				}
				reported++
			case training.DoneEvent:
				done = e
			}
		}
		switch policy {
		case training.WriteFailStop:
			if done.Err == nil || done.Step != 4 {
				t.Fatalf("stop policy: done %+v", done)
			}
		case training.WriteFailContinue:
			if done.Err != nil || done.Step != 12 || reported != 3 {
				t.Fatalf("continue policy: done %+v after %d reports", done, reported)
			}
		}
	}
}

// TestPinnedCheckpointsSurvivePruning: with Keep 2, the newest two and the
// pinned ones remain.
func TestPinnedCheckpointsSurvivePruning(t *testing.T) {
	dir := t.TempDir()
	w, err := training.NewWorker(smallGAN(t, 1), loadMNIST(t).Subset(512), training.Options{Steps: 30, Seed: 1, CheckpointDir: dir, CheckpointSteps: 5, Keep: 2,
		AfterStep: func(step int) {
			if step == 6 {
				if err := training.PinCheckpoint(filepath.Join(dir, training.CheckpointName(5)), true); err != nil {
					t.Error(err)
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	if _, _, _, done := drain(w); done.Err != nil {
		t.Fatal(done.Err)
	}
	cks, _ := training.ListCheckpoints(dir)
	var names []string
	for _, c := range cks {
		names = append(names, filepath.Base(c))
	}
	want := []string{training.CheckpointName(5), training.CheckpointName(25), training.CheckpointName(30)}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("checkpoints %v, want %v", names, want)
	}
	if err := training.PinCheckpoint(filepath.Join(dir, "step-00000999.safetensors"), true); err == nil {
		t.Fatal("pinned a checkpoint that does not exist")
	}
}

// TestRunFolderSummaryAndGIF: a run's status, summary and progress GIF.
func TestRunFolderSummaryAndGIF(t *testing.T) {
	dir := t.TempDir()
	o := training.Options{Steps: 16, Seed: 2, PreviewEvery: 4, RunDir: dir, PreviewDir: filepath.Join(dir, training.SamplesFolder),
		CheckpointDir: filepath.Join(dir, training.CkptFolder), MetricsPath: filepath.Join(dir, training.MetricsFile)}
	w, err := training.NewWorker(smallGAN(t, 2), loadMNIST(t).Subset(512), o)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	if _, _, _, done := drain(w); done.Err != nil {
		t.Fatal(done.Err)
	}
	s, err := training.SummarizeRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != training.RunFinished || s.Step != 16 || s.Steps != 16 || s.Model != "gan/mlp" || s.Previews != 5 ||
		len(s.Checkpoints) != 1 || len(s.Losses) != 2 || s.Losses["D loss"] == 0 {
		t.Fatalf("summary %+v", s)
	}
	// A run whose process died while running reads as interrupted.
	if err := training.WriteRunStatus(dir, training.RunStatus{State: training.RunRunning, Step: 8, PID: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if s, _ := training.SummarizeRun(dir); s.State != training.RunInterrupted {
		t.Fatalf("state %q, want interrupted", s.State)
	}
	out := filepath.Join(dir, "progress.gif")
	n, err := training.WriteProgressGIF(dir, out, 3, 10)
	if err != nil || n != 3 {
		t.Fatalf("%d frames, %v", n, err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil || len(g.Image) != 3 || g.Delay[0] != 10 || g.Delay[2] != 40 {
		t.Fatalf("GIF: %v, %d frames, delays %v", err, len(g.Image), g.Delay)
	}
	// The caption band is above the grid: the first frame's grid is the
	// step-0 preview's pixels.
	if _, err := training.WriteProgressGIF(t.TempDir(), out, 3, 10); err == nil {
		t.Fatal("a run without previews made a GIF")
	}
}

// TestTruncateRun drops the history after a step and a torn last line.
func TestTruncateRun(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, training.MetricsFile)
	os.WriteFile(p, []byte(`{"step":1,"losses":[1]}
{"step":2,"losses":[2]}
{"step":2,"eval":{"n":10}}
{"step":3,"losses":[3]}
{"step":4,"los`), 0o644)
	os.MkdirAll(filepath.Join(dir, "s"), 0o755)
	for _, s := range []int{0, 2, 3} {
		os.WriteFile(filepath.Join(dir, "s", training.PreviewName(s)), nil, 0o644)
	}
	if err := training.TruncateRun(p, filepath.Join(dir, "s"), 2); err != nil {
		t.Fatal(err)
	}
	recs, _ := training.ReadMetrics(p)
	if len(recs) != 3 || recs[2].Eval == nil {
		t.Fatalf("records %+v", recs)
	}
	prev, _ := training.ListPreviews(filepath.Join(dir, "s"))
	if len(prev) != 2 || prev[1].Step != 2 {
		t.Fatalf("previews %+v", prev)
	}
}
