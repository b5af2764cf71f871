package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/training"
)

// TestRunsTabWatchesATorchJob: a PyTorch job exported from the window runs
// under torchrun on two processes into the runs folder; the Runs tab shows
// it while it grows and when it has finished, and Open in Train goes on
// training it here from its newest checkpoint, in the same run folder.
func TestRunsTabWatchesATorchJob(t *testing.T) {
	if testing.Short() {
		t.Skip("torchrun")
	}
	torchrun, err := exec.LookPath("torchrun")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("torchrun is missing (make test installs python3-torch)")
		}
		t.Skip("no torchrun")
	}
	s, first := trainRun(t, "5")
	job := filepath.Join(t.TempDir(), "job")
	ui(func() { s.form.steps.entry.SetText("1200") })
	done := make(chan error, 1)
	ui(func() { s.ExportTorchJob(job, func(err error) { done <- err }) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(filepath.Dir(first), "torchjob")
	cmd := exec.Command(torchrun, "--redirects", "1", "--tee", "1", "--standalone", "--nproc_per_node", "2",
		"train.py", "--out", run, "--checkpoint-every", "400", "--preview-every", "200")
	cmd.Dir = job
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	ui(func() { s.tabs.SelectIndex(tabRuns) })
	find := func() (r training.RunSummary, i int) { // on the UI goroutine
		i = -1
		for k, x := range s.runs.runs {
			if x.Dir == run {
				r, i = x, k
			}
		}
		return r, i
	}
	// While it grows: the tab's own watch refreshes it every few seconds.
	waitFor(t, "the job's run, running", func() bool {
		r, i := find()
		return i >= 0 && r.State == training.RunRunning && r.Step > 0 && r.Step < 1200 && r.Family == "gan"
	})
	if err := <-exited; err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out.String())
	}
	waitFor(t, "the job's run, finished", func() bool {
		r, _ := find()
		return r.State == training.RunFinished && r.Step == 1200 && len(r.Checkpoints) == 3 && r.Previews == 7
	})
	ui(func() { _, i := find(); s.runs.list.Select(i) })
	waitFor(t, "its newest preview", func() bool { return strings.HasSuffix(s.runs.shown, training.PreviewName(1200)) })
	// Open in Train, and go on here for 10 steps.
	ui(s.openRun)
	waitFor(t, "the job's checkpoint in Train", func() bool { return s.runDir == run && s.step == 1200 && s.model != nil })
	ui(func() { s.form.steps.entry.SetText("1210") })
	tap(s.trainBtn)
	waitFor(t, "training on", func() bool { return s.worker == nil && s.step == 1210 && !s.trainBtn.Disabled() })
	recs, err := training.ReadMetrics(filepath.Join(run, training.MetricsFile))
	if err != nil || len(recs) != 1210 || recs[1209].Step != 1210 {
		t.Fatalf("%d metrics lines (%v)", len(recs), err)
	}
}
