package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/genstudio/genstudio/app"
	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// buildBinary builds genstudio once into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "genstudio")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startXvfb starts a virtual display and returns its DISPLAY value.
func startXvfb(t *testing.T) string {
	t.Helper()
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Xvfb is not installed (make test installs it)")
		}
		t.Skip("Xvfb is not installed; run make test to install it")
	}
	for n := 90; n < 140; n++ {
		lock, sock := fmt.Sprintf("/tmp/.X%d-lock", n), fmt.Sprintf("/tmp/.X11-unix/X%d", n)
		if staleXLock(lock) { // a killed server's leftovers
			os.Remove(lock)
			os.Remove(sock)
		}
		if _, err := os.Stat(sock); err == nil {
			continue
		}
		if _, err := os.Stat(lock); err == nil {
			continue
		}
		disp := fmt.Sprintf(":%d", n)
		cmd := exec.Command(xvfb, disp, "-screen", "0", "1400x900x24", "-nolisten", "tcp")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// SIGTERM lets Xvfb remove its lock and socket; SIGKILL would leave them.
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
				return disp
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("Xvfb %s did not start", disp)
	}
	t.Fatal("no free X display number")
	return ""
}

// staleXLock reports whether an X lock file names a process that is gone.
func staleXLock(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// runSelftest runs the binary's window self-test into out and returns its
// report, failing on a self-test error.
func runSelftest(t *testing.T, env []string, bin, out string) app.SelftestReport {
	t.Helper()
	run(t, env, bin, "--selftest", out)
	b, err := os.ReadFile(filepath.Join(out, "selftest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep app.SelftestReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Error != "" {
		t.Fatalf("self-test failed: %s", rep.Error)
	}
	return rep
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func run(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestEndToEnd starts the real binary under Xvfb, lets its self-test press
// Train, Pause, Resume, wait for 30 steps, Export gallery and Save
// checkpoint in the real window, then samples from that checkpoint and runs
// the headless train command.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin := buildBinary(t)
	disp := startXvfb(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "selftest")
	env := []string{"DISPLAY=" + disp, "GENSTUDIO_HOME=" + filepath.Join(dir, "home"), "GENSTUDIO_SELFTEST_STEPS=30", "GENSTUDIO_NATIVE_DIALOGS=0"}
	rep := runSelftest(t, env, bin, out)
	if rep.Steps != 30 || rep.Images != 64 || rep.Previews < 2 {
		t.Fatalf("self-test report %+v", rep)
	}
	if rep.Eval == nil || rep.Eval.N != 256 || rep.Eval.Step != 30 || len(rep.Eval.ClassHistogram) != 10 {
		t.Fatalf("the Evaluate tab's report: %+v", rep.Eval)
	}
	if strings.Join(rep.States, ",") != "running,paused,running,finished" {
		t.Fatalf("states %v", rep.States)
	}
	grid := decodePNG(t, rep.Gallery)
	if grid.Bounds().Dx() != 8*28+9*2 {
		t.Fatalf("grid is %v", grid.Bounds())
	}
	singles, _ := filepath.Glob(filepath.Join(out, "gallery", "sample-*.png"))
	if len(singles) != 64 {
		t.Fatalf("%d single images", len(singles))
	}
	for _, p := range singles[:4] {
		if b := decodePNG(t, p).Bounds(); b.Dx() != 28 || b.Dy() != 28 {
			t.Fatalf("%s is %v", p, b)
		}
	}
	// The run folder got the automatic checkpoint written on finishing.
	cks, _ := filepath.Glob(filepath.Join(dir, "home", "runs", "*", "checkpoints", "step-00000030.safetensors"))
	if len(cks) != 1 {
		t.Fatalf("run checkpoints %v", cks)
	}

	// genstudio sample draws from the window's checkpoint.
	sample := filepath.Join(dir, "sample.png")
	run(t, nil, bin, "sample", "--checkpoint", rep.Checkpoint, "--n", "16", "--seed", "2", "--out", sample)
	if b := decodePNG(t, sample).Bounds(); b.Dx() != 4*28+5*2 {
		t.Fatalf("sample grid %v", b)
	}

	// Headless training, then continuing it from its checkpoint.
	tr := filepath.Join(dir, "train")
	log := run(t, nil, bin, "train", "--data", "mnist", "--steps", "12", "--seed", "3", "--out", tr, "--preview-every", "6", "--g-hidden", "64,128", "--d-hidden", "128,64")
	if !strings.Contains(log, "done at step 12") {
		t.Fatalf("train output:\n%s", log)
	}
	ck := filepath.Join(tr, "checkpoints", "step-00000012.safetensors")
	log = run(t, nil, bin, "train", "--resume", ck, "--steps", "18", "--out", tr)
	if !strings.Contains(log, "done at step 18") {
		t.Fatalf("resume output:\n%s", log)
	}
	// A project's settings drive headless training, and the run is recorded.
	pdir := filepath.Join(dir, "proj")
	p, err := project.Create(pdir, "proj")
	if err != nil {
		t.Fatal(err)
	}
	p.Model = project.ModelRef{Family: "vae", Arch: "mlp", Config: []byte(`{"hidden":16,"batch":8}`)}
	p.Training = project.TrainingSettings{Steps: 5, Seed: 4}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	log = run(t, nil, bin, "train", "--project", pdir)
	if !strings.Contains(log, "training vae") || !strings.Contains(log, "done at step 5") {
		t.Fatalf("project train output:\n%s", log)
	}
	if p, err = project.Open(pdir); err != nil || len(p.Runs) != 1 {
		t.Fatalf("runs after a headless run: %v %v", p, err)
	}
	if cks, _ := training.ListCheckpoints(filepath.Join(p.RunDir(p.Runs[0].ID), "checkpoints")); len(cks) != 1 {
		t.Fatalf("project run checkpoints %v", cks)
	}

	previews, _ := filepath.Glob(filepath.Join(tr, "samples", "preview-*.png"))
	if len(previews) < 3 {
		t.Fatalf("previews %v", previews)
	}
	decodePNG(t, previews[len(previews)-1])
}

// TestSampleRejectsBadCheckpoint: a wrong file gives a clear error, not a panic.
func TestSampleRejectsBadCheckpoint(t *testing.T) {
	bin := buildBinary(t)
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(bad, []byte("this is not a checkpoint at all"), 0o644)
	cmd := exec.Command(bin, "sample", "--checkpoint", bad, "--out", filepath.Join(t.TempDir(), "x.png"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("a bad checkpoint was accepted")
	}
	if !strings.Contains(string(out), "not a checkpoint") || strings.Contains(string(out), "panic") {
		t.Fatalf("unclear error:\n%s", out)
	}
}

// TestEvalCommand: `genstudio eval --json` prints one line with every
// field the issue names, with the numbers the library (and so the Evaluate
// tab, see app.TestEvaluateTabMatchesEval) gives for the same checkpoint,
// seed and N; --images scores any set of images; bad input is refused.
func TestEvalCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	m, err := models.New("vae", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ck := filepath.Join(dir, "vae.safetensors")
	if err := training.SaveCheckpoint(ck, m, training.CheckpointInfo{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "eval", "--checkpoint", ck, "--n", "256", "--seed", "3", "--json").Output()
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	var fields map[string]any
	if err := json.Unmarshal([]byte(last), &fields); err != nil {
		t.Fatalf("eval --json printed %q: %v", last, err)
	}
	for _, k := range []string{"n", "evaluator", "fid", "kid", "kid_std", "is", "is_std", "ms_ssim", "ms_ssim_real", "precision",
		"recall", "density", "coverage", "class_coverage", "confident", "class_kl", "memorized", "seconds"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("eval --json lacks %q", k)
		}
	}
	var got training.Report
	json.Unmarshal([]byte(last), &got)

	ev, err := training.MNISTEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	train, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	want, err := training.EvaluateModel(t.Context(), m, nil, training.EvalOptions{N: 256, Seed: 3, Evaluator: ev, Train: train})
	if err != nil {
		t.Fatal(err)
	}
	if got.FID != want.FID || got.IS != want.IS || got.Recall != want.Recall || got.ClassCoverage != want.ClassCoverage || got.MSSSIM != want.MSSSIM {
		t.Errorf("eval printed FID %v IS %v recall %v classes %d MS-SSIM %v; the library gives %v %v %v %d %v",
			got.FID, got.IS, got.Recall, got.ClassCoverage, got.MSSSIM, want.FID, want.IS, want.Recall, want.ClassCoverage, want.MSSSIM)
	}

	// --images: a folder of PNGs written from the test set.
	test, err := project.LoadMNISTTest()
	if err != nil {
		t.Fatal(err)
	}
	imgDir := filepath.Join(dir, "images")
	if _, err := training.ExportGallery(imgDir, training.Pixels01(test.Pixels[:300*784]), 300, models.ImageShape{Width: 28, Height: 28, Channels: 1}, nil); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "eval", "--images", imgDir, "--json").Output()
	if err != nil {
		t.Fatalf("eval --images: %v", err)
	}
	var img training.Report
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &img); err != nil {
		t.Fatal(err)
	}
	// the folder holds grid.png too: 301 images, all of them scored
	if img.N != 301 || img.ClassCoverage < 9 || img.IS < 5 {
		t.Errorf("real test digits from a folder: N %d, %d classes, IS %.2f", img.N, img.ClassCoverage, img.IS)
	}
	// An evaluator for another data set: a folder with one sub-folder per
	// class, then --evaluator and --against with it.
	classes := filepath.Join(dir, "classes")
	for c := 0; c < 2; c++ {
		var px []float32
		for i := 0; len(px) < 150*784; i++ {
			if test.Labels[i] == c {
				px = append(px, training.Pixels01(test.Pixels[i*784:(i+1)*784])...)
			}
		}
		if _, err := training.ExportGallery(filepath.Join(classes, fmt.Sprint(c)), px, 150, models.ImageShape{Width: 28, Height: 28, Channels: 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	evFile := filepath.Join(dir, "ev.safetensors")
	if out, err := exec.Command(bin, "evaluator", "train", "--data", classes, "--epochs", "2", "--batch", "16", "--out", evFile).CombinedOutput(); err != nil {
		t.Fatalf("evaluator train --data: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "eval", "--images", classes, "--against", classes, "--evaluator", evFile, "--json").Output()
	if err != nil {
		t.Fatalf("eval with a trained evaluator: %v", err)
	}
	var own training.Report
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &own); err != nil || !strings.HasPrefix(own.Evaluator, "classes@") || own.Classes != 2 {
		t.Errorf("eval with the folder's evaluator: %+v (%v)", own, err)
	}
	for _, bad := range [][]string{{"eval"}, {"eval", "--checkpoint", filepath.Join(dir, "missing.safetensors")}, {"eval", "--checkpoint", ck, "--n", "10"}} {
		if out, err := exec.Command(bin, bad...).CombinedOutput(); err == nil {
			t.Errorf("%v succeeded: %s", bad, out)
		}
	}
}

// TestChineseWindow starts the window in Simplified Chinese (LANG=zh_CN)
// under Xvfb: the texts of every menu and tab are translated, the theme
// uses a system CJK font (make test installs fonts-noto-cjk), and that font
// has every character the window shows. A screenshot of the screen goes to
// $GENSTUDIO_SCREENSHOTS when set (look at it).
func TestChineseWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin := buildBinary(t)
	disp := startXvfb(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "selftest")
	env := []string{"DISPLAY=" + disp, "LANG=zh_CN.UTF-8", "LANGUAGE=", "LC_ALL=", "LC_MESSAGES=",
		"GENSTUDIO_HOME=" + filepath.Join(dir, "home"), "HOME=" + filepath.Join(dir, "userhome"),
		"GENSTUDIO_SELFTEST_STEPS=8", "GENSTUDIO_SELFTEST_TAB=0", "GENSTUDIO_SELFTEST_HOLD=2",
		"GENSTUDIO_NATIVE_DIALOGS=0"}
	shot := make(chan error, 1)
	go func() {
		for i := 0; i < 2400; i++ {
			if _, err := os.Stat(filepath.Join(out, "holding")); err == nil {
				if _, err := exec.LookPath("import"); err != nil {
					shot <- nil
					return
				}
				shot <- exec.Command("import", "-display", disp, "-window", "root", filepath.Join(dir, "zh.png")).Run()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		shot <- fmt.Errorf("the self-test never held the window")
	}()
	rep := runSelftest(t, env, bin, out)
	t.Logf("language %s, font %s, %d texts, missing %q", rep.Language, rep.Font, rep.Texts, rep.MissingGlyphs)
	if rep.Language != "zh-Hans" {
		t.Fatalf("LANG=zh_CN gives a %q window", rep.Language)
	}
	if _, err := exec.LookPath("fc-match"); err == nil && !strings.Contains(rep.Font, "CJK") && !strings.Contains(rep.Font, "wqy") &&
		!strings.Contains(rep.Font, "Droid") {
		t.Errorf("the Chinese window uses %s, not a CJK font", rep.Font)
	}
	if rep.Texts < 200 {
		t.Errorf("only %d texts found in the window", rep.Texts)
	}
	if len(rep.MissingGlyphs) > 0 {
		t.Errorf("the font lacks %q", rep.MissingGlyphs)
	}
	if err := <-shot; err != nil {
		t.Fatal(err)
	}
	if p := filepath.Join(dir, "zh.png"); fileExists(p) {
		img := decodePNG(t, p)
		if img.Bounds().Dx() < 1000 {
			t.Errorf("screenshot %v", img.Bounds())
		}
		if d := os.Getenv("GENSTUDIO_SCREENSHOTS"); d != "" {
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(d, "window-zh-Hans.png"), b, 0o644)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
