package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// digitFolder writes n MNIST digits as PNG files into a new folder: a
// small data set that loads in milliseconds.
func digitFolder(t *testing.T, n int) string {
	t.Helper()
	ds, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		copy(img.Pix, ds.Image(i))
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("d%03d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

// small is a fast model for the headless tests.
var small = []string{"--family", "gan", "--g-hidden", "32", "--d-hidden", "32", "--batch", "16"}

// onlyRun is the project's single run folder.
func onlyRun(t *testing.T, pdir string) string {
	t.Helper()
	p, err := project.Open(pdir)
	if err != nil {
		t.Fatalf("the project does not open: %v", err)
	}
	if len(p.Runs) != 1 {
		t.Fatalf("project runs %+v, want one", p.Runs)
	}
	return p.RunDir(p.Runs[0].ID)
}

// metricSteps reads a run's loss lines' steps, failing on a line that is
// not JSON except a torn last one.
func metricSteps(t *testing.T, run string, tornOK bool) []int {
	t.Helper()
	f, err := os.Open(filepath.Join(run, training.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []int
	sc := bufio.NewScanner(f)
	var bad string
	for sc.Scan() {
		if bad != "" {
			t.Fatalf("a corrupt line is not the last: %q", bad)
		}
		var r training.MetricsRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad = sc.Text()
			continue
		}
		if r.Eval == nil {
			steps = append(steps, r.Step)
		}
	}
	if bad != "" && !tornOK {
		t.Fatalf("torn metrics line %q", bad)
	}
	return steps
}

// checkSteps fails unless steps are 1, 2, …, len(steps).
func checkSteps(t *testing.T, steps []int) {
	t.Helper()
	for i, s := range steps {
		if s != i+1 {
			t.Fatalf("metrics steps go %v at line %d: history repeated or lost", steps[max(0, i-2):min(len(steps), i+3)], i+1)
		}
	}
}

// TestHeadlessProjectRunResumeAndStop: train --project creates the
// project, --resume latest continues the same run with its history, runs
// lists it, gif animates it, and SIGTERM stops with a checkpoint and
// status 143.
func TestHeadlessProjectRunResumeAndStop(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	bin := buildBinary(t)
	data := digitFolder(t, 64)
	pdir := filepath.Join(t.TempDir(), "proj")
	args := append([]string{"train", "--project", pdir, "--data", data, "--steps", "20", "--checkpoint-every", "10", "--preview-every", "5"}, small...)
	log := run(t, nil, bin, args...)
	if !strings.Contains(log, "created project") || !strings.Contains(log, "done at step 20") {
		t.Fatalf("train output:\n%s", log)
	}
	rd := onlyRun(t, pdir)
	log = run(t, nil, bin, "train", "--project", pdir, "--resume", "latest", "--steps", "30")
	if !strings.Contains(log, "steps 20..30") || !strings.Contains(log, "done at step 30") {
		t.Fatalf("resume output:\n%s", log)
	}
	if onlyRun(t, pdir) != rd {
		t.Fatal("the resume made a new run")
	}
	checkSteps(t, metricSteps(t, rd, false))
	var runs []training.RunSummary
	if err := json.Unmarshal([]byte(run(t, nil, bin, "runs", "--project", pdir, "--json")), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].State != training.RunFinished || runs[0].Step != 30 || runs[0].Model != "gan/mlp" || runs[0].Losses["G loss"] == 0 {
		t.Fatalf("runs: %+v", runs)
	}
	if table := run(t, nil, bin, "runs", "--project", pdir); !strings.Contains(table, "finished") || !strings.Contains(table, "30/30") {
		t.Fatalf("runs table:\n%s", table)
	}
	gifPath := filepath.Join(t.TempDir(), "progress.gif")
	if log := run(t, nil, bin, "gif", "--run", rd, "--out", gifPath); !strings.Contains(log, "7 frames") {
		t.Fatalf("gif output: %s", log)
	}

	// SIGTERM: a checkpoint at the step it stopped, status 143, state stopped.
	cmd := exec.Command(bin, "train", "--project", pdir, "--resume", "latest", "--steps", "100000000")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "training ") {
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	for sc.Scan() {
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	st := training.ReadRunStatus(rd)
	if st.State != training.RunStopped || st.Step <= 30 {
		t.Fatalf("status after SIGTERM: %+v", st)
	}
	if _, err := training.LoadCheckpoint(filepath.Join(rd, training.CkptFolder, training.CheckpointName(st.Step))); err != nil {
		t.Fatalf("the stop's checkpoint: %v", err)
	}
	checkSteps(t, metricSteps(t, rd, false))
}

// TestKilledTrainingLosesAtMostOneInterval kills a headless training
// process with SIGKILL at 20 random moments (checkpoints are written every
// 5 steps, so many kills land inside a checkpoint write). After each kill
// the project opens, every checkpoint loads, the newest is at most one
// interval behind the last step logged, and resuming continues the same
// history with each step once.
func TestKilledTrainingLosesAtMostOneInterval(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	if testing.Short() {
		t.Skip("kills 20 processes")
	}
	const every = 5
	bin := buildBinary(t)
	data := digitFolder(t, 64)
	pdir := filepath.Join(t.TempDir(), "proj")
	args := append([]string{"train", "--project", pdir, "--data", data, "--steps", "5", "--checkpoint-every", fmt.Sprint(every), "--preview-every", "7"}, small...)
	run(t, nil, bin, args...)
	rd := onlyRun(t, pdir)
	rng := rand.New(rand.NewPCG(20, 26))
	kills := 0
	for kills < 20 {
		cmd := exec.Command(bin, "train", "--project", pdir, "--resume", "latest", "--steps", "100000000")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "training ") {
		}
		go func() {
			for sc.Scan() {
			}
		}()
		time.Sleep(time.Duration(50+rng.IntN(700)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		kills++

		if onlyRun(t, pdir) != rd {
			t.Fatal("a resume made a new run")
		}
		cks, err := training.ListCheckpoints(filepath.Join(rd, training.CkptFolder))
		if err != nil || len(cks) == 0 {
			t.Fatalf("after kill %d: checkpoints %v, %v", kills, cks, err)
		}
		var newest training.CheckpointInfo
		for _, c := range cks {
			ck, err := training.LoadCheckpoint(c)
			if err != nil {
				t.Fatalf("after kill %d: %v", kills, err)
			}
			newest = ck.Info
			ck.Model.Close()
		}
		steps := metricSteps(t, rd, true)
		checkSteps(t, steps)
		if last := len(steps); last-newest.Step > every {
			t.Fatalf("after kill %d: logged step %d, newest checkpoint %d: more than one interval lost", kills, last, newest.Step)
		}
		if b, err := os.ReadFile(filepath.Join(rd, training.StatusFile)); err == nil && !json.Valid(b) {
			t.Fatalf("after kill %d: status.json is corrupt: %q", kills, b)
		}
		prev, _ := training.ListPreviews(filepath.Join(rd, training.SamplesFolder))
		for _, p := range prev {
			f, err := os.Open(p.Path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(f); err != nil {
				t.Fatalf("after kill %d: preview %s is corrupt: %v", kills, p.Path, err)
			}
			f.Close()
		}
	}
	s, err := training.SummarizeRun(rd)
	if err != nil || s.State != training.RunInterrupted {
		t.Fatalf("summary after the last kill: %+v, %v", s, err)
	}
}
