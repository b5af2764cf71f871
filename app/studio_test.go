package app

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

func newTestStudio(t *testing.T) *Studio {
	t.Helper()
	t.Setenv("GENSTUDIO_HOME", t.TempDir())
	t.Setenv("GENSTUDIO_NATIVE_DIALOGS", "0")
	a := test.NewTempApp(t)
	w := test.NewTempWindow(t, nil)
	w.Resize(fyne.NewSize(1280, 820))
	s := NewStudio(a, w)
	// Fyne's test driver runs fyne.Do at once on the calling goroutine; one
	// lock stands in for the single UI goroutine of the real driver.
	s.do = func(f func()) { uiMu.Lock(); defer uiMu.Unlock(); f() }
	s.doWait = s.do
	t.Cleanup(s.Close)
	return s
}

var uiMu sync.Mutex

// ui runs f as if on the UI goroutine.
func ui(f func()) { uiMu.Lock(); defer uiMu.Unlock(); f() }

func tap(b *widget.Button) { ui(func() { test.Tap(b) }) }

// waitFor polls ok on the UI goroutine.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var done bool
		ui(func() { done = ok() })
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func smallForm(s *Studio, steps string) {
	s.form.family.SetSelected(variants[0].Label) // the MLP GAN, not the default recipe
	s.form.input("g_hidden").entry.SetText("32, 64")
	s.form.input("d_hidden").entry.SetText("64, 32")
	s.form.batch.entry.SetText("16")
	s.form.steps.entry.SetText(steps)
	s.form.preview.entry.SetText("5")
}

func loadSmallMNIST(t *testing.T, s *Studio) {
	t.Helper()
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	s.setData(d.Subset(512))
}

func TestStudioTrainExportSaveLoad(t *testing.T) {
	s := newTestStudio(t)
	if !s.trainBtn.Disabled() {
		t.Fatal("Train is enabled without a data set")
	}
	loadSmallMNIST(t, s)
	if !strings.Contains(s.dataInfo.Text, "512 images") {
		t.Fatalf("data info %q", s.dataInfo.Text)
	}
	smallForm(s, "12")
	tap(s.trainBtn)
	waitFor(t, "training to finish", func() bool {
		return s.model != nil && s.worker == nil && s.step == 12 && s.stopBtn.Disabled() && !s.trainBtn.Disabled()
	})
	if s.grid.Image() == nil {
		t.Fatal("no preview shown")
	}
	if n := s.chart.Len("D loss"); n != 12 {
		t.Fatalf("chart has %d D loss points", n)
	}
	if !strings.Contains(s.status.Text, "Stopped at step 12") {
		t.Fatalf("status %q", s.status.Text)
	}
	if s.trainBtn.Disabled() || s.exportBtn.Disabled() || s.saveBtn.Disabled() || !s.stopBtn.Disabled() {
		t.Fatalf("controls not in the finished state: train %v export %v save %v stop %v", s.trainBtn.Disabled(), s.exportBtn.Disabled(), s.saveBtn.Disabled(), s.stopBtn.Disabled())
	}

	dir := t.TempDir()
	errs := make(chan error, 1)
	var gal *training.Gallery
	s.ExportGallery(filepath.Join(dir, "gallery"), func(g *training.Gallery, err error) { gal = g; errs <- err })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{gal.Grid}, gal.Images[0]) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		f.Close()
	}

	ck := filepath.Join(dir, "model") // the extension is added
	s.SaveCheckpoint(ck, func(err error) { errs <- err })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	tap(s.newBtn)
	if s.model != nil || !s.exportBtn.Disabled() {
		t.Fatal("New model kept the model")
	}
	s.LoadCheckpoint(ck+".safetensors", func(err error) { errs <- err })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if s.model == nil || s.step != 12 || s.form.input("g_hidden").text() != "32, 64" {
		t.Fatalf("loaded step %d, form %q", s.step, s.form.input("g_hidden").text())
	}
	// Train continues the loaded model up to the new step count.
	s.form.steps.entry.SetText("15")
	tap(s.trainBtn)
	waitFor(t, "continued training", func() bool { return s.worker == nil && s.step == 15 })
}

func TestStudioPauseResumeStop(t *testing.T) {
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	smallForm(s, "100000")
	tap(s.trainBtn)
	waitFor(t, "training", func() bool { return s.worker != nil && s.step >= 3 })
	tap(s.pauseBtn)
	waitFor(t, "pause", func() bool { return s.pauseBtn.Text == "Resume" })
	at := s.worker.Step()
	time.Sleep(150 * time.Millisecond)
	if s.worker.Step() != at {
		t.Fatal("paused run went on")
	}
	tap(s.pauseBtn)
	waitFor(t, "resume", func() bool { return s.pauseBtn.Text == "Pause" && s.worker.Step() > at })
	tap(s.stopBtn)
	waitFor(t, "stop", func() bool { return s.worker == nil && !s.trainBtn.Disabled() })
	cks, _ := filepath.Glob(filepath.Join(s.runDir, "checkpoints", "*.safetensors"))
	if len(cks) != 1 {
		t.Fatalf("stop wrote checkpoints %v", cks)
	}
}

func TestStudioFormValidation(t *testing.T) {
	s := newTestStudio(t)
	loadSmallMNIST(t, s)
	ui(func() { s.form.family.SetSelected(variants[0].Label) })
	for _, tc := range []struct {
		entry func() *widget.Entry
		text  string
	}{
		{func() *widget.Entry { return s.form.input("latent").entry }, "abc"},
		{func() *widget.Entry { return s.form.lr.entry }, "2"},
		{func() *widget.Entry { return s.form.input("g_hidden").entry }, "256, x"},
		{func() *widget.Entry { return s.form.batch.entry }, "0"},
	} {
		e := tc.entry()
		old := e.Text
		e.SetText(tc.text)
		if e.Validate() == nil {
			t.Fatalf("%q accepted", tc.text)
		}
		tap(s.trainBtn)
		if s.worker != nil || s.model != nil {
			t.Fatalf("training started with %q", tc.text)
		}
		if !strings.HasPrefix(s.status.Text, "Error:") {
			t.Fatalf("status %q", s.status.Text)
		}
		e.SetText(old)
	}
}

func TestStudioDropFolder(t *testing.T) {
	s := newTestStudio(t)
	dir := t.TempDir()
	// Write a few images from MNIST into two class folders, plus junk.
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		cls := filepath.Join(dir, []string{"even", "odd"}[i%2])
		os.MkdirAll(cls, 0o755)
		f, _ := os.Create(filepath.Join(cls, strings.Repeat("x", i+1)+".png"))
		png.Encode(f, d.Thumbnail(i))
		f.Close()
	}
	os.WriteFile(filepath.Join(dir, "odd", "broken.png"), []byte("nope"), 0o644)
	s.Dropped([]fyne.URI{storage.NewFileURI(dir)})
	waitFor(t, "folder load", func() bool { return s.data != nil })
	if s.data.Len() != 6 || len(s.data.Classes) != 2 {
		t.Fatalf("loaded %d images, classes %v", s.data.Len(), s.data.Classes)
	}
	if !strings.Contains(s.dataNote.Text, "1 files skipped") || !strings.Contains(s.dataNote.Text, "broken.png") {
		t.Fatalf("skip note %q", s.dataNote.Text)
	}
	// A folder with nothing usable keeps the current data set.
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "a.txt"), []byte("hi"), 0o644)
	s.Dropped([]fyne.URI{storage.NewFileURI(empty)})
	waitFor(t, "error", func() bool { return strings.HasPrefix(s.status.Text, "Error:") })
	if s.data.Len() != 6 {
		t.Fatal("failed load replaced the data set")
	}
}

// TestStudioTrainsEveryModel trains every model of the menu for a few
// steps through the window and checks its own loss names, preview and
// second view.
func TestStudioTrainsEveryModel(t *testing.T) {
	small := map[string]map[string]string{
		"gan/mlp":   {"g_hidden": "32", "d_hidden": "32"},
		"gan/conv":  {"g_features": "4", "d_features": "4"},
		"vae/mlp":   {"hidden": "32", "kl_warmup_steps": "4"},
		"vae/conv":  {"features": "4"},
		"ddpm/mlp":  {"hidden": "32", "t": "100", "sample_steps": "3"},
		"ddpm/conv": {"features": "4", "t": "100", "sample_steps": "2"},
	}
	losses := map[string][]string{"gan": {"D loss", "G loss"}, "vae": {"loss", "recon", "KL"}, "ddpm": {"MSE"}}
	for _, v := range variants {
		t.Run(v.Label, func(t *testing.T) {
			if _, ok := small[v.Name()]; !ok {
				t.Fatalf("no small settings for %s", v.Name())
			}
			if testing.Short() && v.Arch != "mlp" {
				t.Skip("conv models are slow")
			}
			s := newTestStudio(t)
			loadSmallMNIST(t, s)
			ui(func() {
				s.form.family.SetSelected(v.Label)
				for k, val := range small[v.Name()] {
					s.form.input(k).set(val)
				}
				s.form.batch.entry.SetText("8")
				s.form.steps.entry.SetText("3")
			})
			if s.form.forms[s.form.currentIndex()].Hidden {
				t.Fatal("the chosen model's fields are hidden")
			}
			tap(s.trainBtn)
			waitFor(t, "training", func() bool { return s.model != nil && s.worker == nil && s.step == 3 && !s.trainBtn.Disabled() })
			if s.model.Family() != v.Family {
				t.Fatalf("trained %s, menu says %s", s.model.Family(), v.Family)
			}
			for _, n := range losses[v.Family] {
				if s.chart.Len(n) != 3 {
					t.Fatalf("chart series %q has %d points", n, s.chart.Len(n))
				}
			}
			if s.grid.Image() == nil || (s.aux.Image() != nil) != (v.Family != "gan") {
				t.Fatalf("preview %v, second view %v", s.grid.Image() != nil, s.aux.Image() != nil)
			}
		})
	}
}

// TestProjectRoundTrip: train in a new project, close, reopen in a new
// window: data set, settings and the run's model are back.
func TestProjectRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my project")
	imgs := t.TempDir()
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		cls := filepath.Join(imgs, []string{"a", "b"}[i%2])
		os.MkdirAll(cls, 0o755)
		f, _ := os.Create(filepath.Join(cls, fmt.Sprintf("%02d.png", i)))
		png.Encode(f, d.Thumbnail(i))
		f.Close()
	}

	s := newTestStudio(t)
	s.Dropped([]fyne.URI{storage.NewFileURI(imgs)})
	waitFor(t, "folder", func() bool { return s.data != nil })
	errs := make(chan error, 1)
	ui(func() {
		s.form.family.SetSelected("VAE (MLP)")
		s.form.input("hidden").set("24")
		s.form.batch.entry.SetText("8")
		s.form.steps.entry.SetText("4")
		s.NewProject(dir, func(err error) { errs <- err })
	})
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if s.dirty || !strings.Contains(s.win.Title(), "my project") {
		t.Fatalf("title %q dirty %v after save", s.win.Title(), s.dirty)
	}
	ui(func() { s.form.seed.entry.SetText("7") })
	if !strings.HasSuffix(s.win.Title(), "•") {
		t.Fatalf("title %q shows no unsaved mark", s.win.Title())
	}
	ui(func() { s.SaveProject(func(err error) { errs <- err }) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	tap(s.trainBtn)
	waitFor(t, "training", func() bool { return s.worker == nil && s.step == 4 && !s.trainBtn.Disabled() })
	if !strings.HasPrefix(s.runDir, filepath.Join(dir, "runs")) {
		t.Fatalf("run folder %s is outside the project", s.runDir)
	}

	// Move the project: paths inside are relative.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	r := newTestStudio(t)
	ui(func() { r.OpenProject(moved) })
	waitFor(t, "reopen", func() bool { return r.data != nil && r.model != nil })
	if r.data.Len() != 40 || r.form.current() != "vae" || r.form.input("hidden").text() != "24" || r.form.seed.text() != "7" {
		t.Fatalf("reopened: %d images, family %s, hidden %s, seed %s", r.data.Len(), r.form.current(), r.form.input("hidden").text(), r.form.seed.text())
	}
	if r.step != 4 || r.model.Family() != "vae" {
		t.Fatalf("reopened model at step %d (%s)", r.step, r.model.Family())
	}
	if r.dirty {
		t.Fatal("a freshly opened project is marked unsaved")
	}

	// A broken project.json is refused and changes nothing.
	os.WriteFile(filepath.Join(moved, "project.json"), []byte(`{"version": 1, "na`), 0o644)
	q := newTestStudio(t)
	ui(func() { q.OpenProject(moved) })
	if q.proj != nil || !strings.HasPrefix(q.status.Text, "Error:") {
		t.Fatalf("broken project opened: status %q", q.status.Text)
	}
}

func TestDataBrowser(t *testing.T) {
	test.NewTempApp(t)
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	d = d.Subset(200)
	d.Skipped = []project.Skipped{{Path: "/x/broken.png", Reason: "corrupt image"}}
	b := newDataBrowser(d)
	w := test.NewTempWindow(t, b.content())
	w.Resize(fyne.NewSize(1100, 720))
	if b.pageLb.Text != "Page 1 of 3" || !b.prev.Disabled() {
		t.Fatalf("first page: %q", b.pageLb.Text)
	}
	first := b.thumbs[0].Image
	test.Tap(b.next)
	test.Tap(b.next)
	if b.pageLb.Text != "Page 3 of 3" || !b.next.Disabled() || b.thumbs[0].Image == first {
		t.Fatalf("last page: %q", b.pageLb.Text)
	}
	// 200 = 2×96 + 8: the last page shows 8 images.
	shown := 0
	for _, th := range b.thumbs {
		if th.Visible() {
			shown++
		}
	}
	if shown != 8 {
		t.Fatalf("last page shows %d thumbnails", shown)
	}
	counts := strings.Join(classCounts(d), ",")
	total := 0
	for _, c := range classCounts(d) {
		var n int
		fmt.Sscanf(c[strings.Index(c, ":")+1:], "%d", &n)
		total += n
	}
	if total != 200 || !strings.HasPrefix(counts, "0: ") {
		t.Fatalf("class counts %s (total %d)", counts, total)
	}
}
