package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"fyne.io/fyne/v2"

	"github.com/genstudio/genstudio/training"
)

// selftestDir finds "--selftest DIR" in args. The self-test drives the real
// window as a user would (Train, Pause, Resume, wait, Export gallery, Save
// checkpoint), writes what it saw to DIR/selftest.json and a capture of the
// window to DIR/window.png, then quits. The end-to-end test uses it.
func selftestDir(args []string) (string, bool) {
	for i, a := range args {
		if a == "--selftest" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func selftestSteps() int {
	if n, err := strconv.Atoi(os.Getenv("GENSTUDIO_SELFTEST_STEPS")); err == nil && n > 0 {
		return n
	}
	return 40
}

// SelftestReport is what the self-test writes to selftest.json.
type SelftestReport struct {
	Steps      int      `json:"steps"`
	Previews   int      `json:"previews"`
	States     []string `json:"states"`
	Gallery    string   `json:"gallery"`
	Images     int      `json:"images"`
	Checkpoint string   `json:"checkpoint"`
	Window     string   `json:"window"`
	// Eval is the Evaluate tab's scoring of the trained model.
	Eval *training.Report `json:"eval,omitempty"`
	// Language is the window's language, Font its text font, Texts the
	// number of texts in its menus and tabs, and MissingGlyphs the
	// characters of those texts the font lacks.
	Language      string   `json:"language"`
	Font          string   `json:"font"`
	Texts         int      `json:"texts"`
	MissingGlyphs []string `json:"missing_glyphs"`
	Error         string   `json:"error,omitempty"`
	Seconds       float64  `json:"seconds"`
}

func (s *Studio) selftest(dir string) {
	start := time.Now()
	rep := SelftestReport{}
	err := s.runSelftest(dir, &rep)
	if err != nil {
		rep.Error = err.Error()
	}
	rep.Seconds = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(rep, "", "  ")
	os.WriteFile(filepath.Join(dir, "selftest.json"), b, 0o644)
	s.do(func() { s.app.Quit() })
}

func (s *Studio) runSelftest(dir string, rep *SelftestReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	waitUI := func(what string, ok func() bool) error { return waitUI(s, what, 5*time.Minute, ok) }
	if err := waitUI("MNIST", func() bool { return s.data != nil }); err != nil {
		return err
	}
	s.doWait(func() {
		texts := windowTexts(s.win)
		th := s.app.Settings().Theme()
		rep.Language, rep.Font, rep.Texts = uiLanguage(), th.Font(fyne.TextStyle{}).Name(), len(texts)
		rep.MissingGlyphs = missingGlyphs(th, texts)
	})
	events, untap := s.tapEvents()
	defer untap()
	steps := selftestSteps()
	s.doWait(func() {
		if fam := os.Getenv("GENSTUDIO_SELFTEST_FAMILY"); fam != "" {
			if i := variantIndex(fam, os.Getenv("GENSTUDIO_SELFTEST_ARCH")); i >= 0 {
				s.form.family.SetSelected(variants[i].Label)
			}
		}
		if img := os.Getenv("GENSTUDIO_SELFTEST_IMAGE"); img != "" {
			s.form.image.SetSelected(img)
		}
		s.form.steps.entry.SetText(strconv.Itoa(steps))
		s.form.preview.entry.SetText("10")
		s.trainBtn.OnTapped()
	})
	paused, resumed := false, false
	for done := false; !done; {
		select {
		case e := <-events:
			switch e := e.(type) {
			case training.PreviewEvent:
				rep.Previews++
			case training.StateEvent:
				rep.States = append(rep.States, e.State.String())
				if e.State == training.Paused && !resumed {
					resumed = true
					s.doWait(func() { s.pauseBtn.OnTapped() })
				}
			case training.ProgressEvent:
				if !paused && e.Step >= steps/4 {
					paused = true
					s.doWait(func() { s.pauseBtn.OnTapped() })
				}
			case training.DoneEvent:
				if e.Err != nil {
					return e.Err
				}
				rep.Steps = e.Step
				done = true
			}
		case <-time.After(5 * time.Minute):
			return errors.New("timed out waiting for training to finish")
		}
	}
	gallery := filepath.Join(dir, "gallery")
	ch := make(chan error, 2)
	s.doWait(func() {
		s.ExportGallery(gallery, func(g *training.Gallery, err error) {
			if err == nil {
				rep.Gallery, rep.Images = g.Grid, len(g.Images)
			}
			ch <- err
		})
	})
	if err := <-ch; err != nil {
		return err
	}
	rep.Checkpoint = filepath.Join(dir, "checkpoint.safetensors")
	s.doWait(func() { s.SaveCheckpoint(rep.Checkpoint, func(err error) { ch <- err }) })
	if err := <-ch; err != nil {
		return err
	}
	// The Evaluate tab scores the trained model (N from
	// GENSTUDIO_SELFTEST_EVAL, default 256), as a user would.
	n := 256
	if v, err := strconv.Atoi(os.Getenv("GENSTUDIO_SELFTEST_EVAL")); err == nil && v > 0 {
		n = v
	}
	evals := make(chan *training.Report, 1)
	s.doWait(func() {
		s.tabs.SelectIndex(1)
		s.eval.n.SetSelected(strconv.Itoa(n))
		s.Evaluate("", n, 1, func(r *training.Report, err error) { evals <- r; ch <- err })
	})
	if err := <-ch; err != nil {
		return err
	}
	rep.Eval = <-evals
	// GENSTUDIO_SELFTEST_HOLD keeps the window up this many seconds (for a
	// screenshot of the whole screen).
	// GENSTUDIO_SELFTEST_LAB trains the Lab tab's GAN this many steps.
	if v, err := strconv.Atoi(os.Getenv("GENSTUDIO_SELFTEST_LAB")); err == nil && v > 0 {
		s.doWait(func() {
			s.tabs.SelectIndex(3)
			if d := os.Getenv("GENSTUDIO_SELFTEST_LAB_DATA"); d != "" {
				s.lab.data.SetSelected(d)
			}
			if tq := os.Getenv("GENSTUDIO_SELFTEST_LAB_TECHNIQUE"); tq != "" {
				s.lab.technique.SetSelected(tq)
			}
			s.lab.steps.SetText(strconv.Itoa(v))
			s.TrainLab(func(_ *training.LabResult, err error) { ch <- err })
		})
		if err := <-ch; err != nil {
			return err
		}
	}
	// GENSTUDIO_SELFTEST_EXPLORE opens this checkpoint in the Explore tab,
	// picks two samples, interpolates between them and pins the first.
	if ck := os.Getenv("GENSTUDIO_SELFTEST_EXPLORE"); ck != "" {
		p := s.explore
		s.doWait(func() {
			s.tabs.SelectIndex(4)
			addOption(p.source, ck)
			p.source.SetSelected(ck)
		})
		if err := s.waitUI(func() bool { return p.gridProv != nil }); err != nil {
			return fmt.Errorf("explore: %w", err)
		}
		s.doWait(func() {
			s.ExplorePickSample(3)
			s.ExplorePickSample(10)
			s.exploreInterpolate()
			s.explorePin()
		})
		if err := s.waitUI(func() bool { return p.stripP != nil }); err != nil {
			return fmt.Errorf("explore: %w", err)
		}
	}
	// GENSTUDIO_SELFTEST_RATE starts a real-or-generated quiz of this
	// checkpoint in the Rate tab and answers its first
	// GENSTUDIO_SELFTEST_RATE_ANSWERS images (default 3; 20 ends the round).
	if ck := os.Getenv("GENSTUDIO_SELFTEST_RATE"); ck != "" {
		ready := make(chan error, 1)
		s.doWait(func() {
			s.tabs.SelectIndex(5)
			p := s.rate
			p.kind.SetSelected(rateKinds[2].label)
			addOption(p.modelA, ck)
			p.modelA.SetSelected(ck)
			s.StartRound(func(err error) { ready <- err })
		})
		if err := <-ready; err != nil {
			return fmt.Errorf("rate: %w", err)
		}
		answers := 3
		if v, err := strconv.Atoi(os.Getenv("GENSTUDIO_SELFTEST_RATE_ANSWERS")); err == nil && v >= 0 {
			answers = v
		}
		s.doWait(func() {
			for k := 0; k < answers; k++ {
				s.RateAnswer(k % 2)
			}
		})
	}
	// GENSTUDIO_SELFTEST_TAB picks the tab shown then (0 Train, 1 Evaluate, 2 Compare, 3 Lab, 4 Explore, 5 Rate, 6 Runs).
	if v, err := strconv.Atoi(os.Getenv("GENSTUDIO_SELFTEST_TAB")); err == nil && v >= 0 && v < len(s.tabs.Items) {
		s.doWait(func() { s.tabs.SelectIndex(v) })
		if v == tabRuns {
			// Tick every run, so their curves overlay.
			if err := s.waitUI(func() bool { return len(s.runs.runs) > 0 }); err == nil {
				s.doWait(func() {
					for _, r := range s.runs.runs {
						s.runs.selected[r.ID] = true
					}
					s.runs.list.Refresh()
					s.runs.list.Select(0)
					s.overlayRuns()
				})
			}
		}
	}
	if v, err := strconv.Atoi(os.Getenv("GENSTUDIO_SELFTEST_HOLD")); err == nil && v > 0 {
		// A screenshot taker waits for this file.
		os.WriteFile(filepath.Join(dir, "holding"), nil, 0o644)
		time.Sleep(time.Duration(v) * time.Second)
	}
	time.Sleep(300 * time.Millisecond) // let the last frame render
	rep.Window = filepath.Join(dir, "window.png")
	var capErr error
	s.doWait(func() {
		img := s.win.Canvas().Capture()
		f, err := os.Create(rep.Window)
		if err != nil {
			capErr = err
			return
		}
		defer f.Close()
		capErr = png.Encode(f, img)
	})
	return capErr
}

// waitUI polls ok on the UI goroutine for up to a minute.
func (s *Studio) waitUI(ok func() bool) error {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var done bool
		s.doWait(func() { done = ok() })
		if done {
			return nil
		}
	}
	return errors.New("timed out")
}
