package app

import (
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"image"
	"image/draw"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/widgets"
)

// rollbackLR is the factor a roll-back after a diverged run applies to the
// learning rates.
const rollbackLR = 0.5

// longRun is how long a run must last for its end to raise a desktop
// notification.
const longRun = time.Minute

// runHistory is a run's loss and learning-rate history read from its
// metrics file, up to a step.
type runHistory struct {
	steps   []int
	losses  map[string][]float64
	lrSteps []int
	lrs     []float64
}

// readRunHistory reads runDir's metrics up to step upTo (all when < 0),
// naming the losses by the run's status file (or names when it has none).
func readRunHistory(runDir string, upTo int, names []string) (runHistory, error) {
	h := runHistory{losses: map[string][]float64{}}
	recs, err := training.ReadMetrics(filepath.Join(runDir, training.MetricsFile))
	if err != nil {
		return h, err
	}
	if st := training.ReadRunStatus(runDir); len(st.LossNames) > 0 {
		names = st.LossNames
	}
	for _, r := range recs {
		if r.Eval != nil || (upTo >= 0 && r.Step > upTo) {
			continue
		}
		h.steps = append(h.steps, r.Step)
		for i, v := range r.Losses {
			n := fmt.Sprintf("loss %d", i+1)
			if i < len(names) {
				n = names[i]
			}
			h.losses[n] = append(h.losses[n], v)
		}
		if r.LR > 0 {
			h.lrSteps, h.lrs = append(h.lrSteps, r.Step), append(h.lrs, r.LR)
		}
	}
	return h, nil
}

// runOfCheckpoint is the run folder a checkpoint lies in
// (<run>/checkpoints/step-N.safetensors), or "" for one elsewhere.
func runOfCheckpoint(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	d := filepath.Dir(abs)
	if filepath.Base(d) != training.CkptFolder {
		return ""
	}
	run := filepath.Dir(d)
	for _, f := range []string{training.MetricsFile, training.StatusFile, training.SamplesFolder} {
		if _, err := os.Stat(filepath.Join(run, f)); err == nil {
			return run
		}
	}
	return ""
}

// showHistory puts a run's history into the loss and learning-rate charts.
func (s *Studio) showHistory(h runHistory) {
	if h.losses == nil {
		h.losses = map[string][]float64{}
	}
	s.steps, s.history = h.steps, h.losses
	s.lrSteps, s.lrValues = h.lrSteps, h.lrs
	s.chart.Clear()
	names := make([]string, 0, len(h.losses))
	for n := range h.losses {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s.chart.SetSeries(n, s.steps, s.history[n])
	}
	s.lrChart.Clear()
	if len(s.lrSteps) > 0 {
		s.lrChart.SetSeries("learning rate", s.lrSteps, s.lrValues)
	}
}

// buildScrubber makes the preview history's slider, its label and the GIF
// button under the live preview.
func (s *Studio) buildScrubber() fyne.CanvasObject {
	s.scrub = widget.NewSlider(0, 0)
	s.scrub.Step = 1
	s.scrubLive = true
	s.scrubLabel = widget.NewLabel(lang.L("Preview history: none yet"))
	s.scrub.OnChanged = func(v float64) { s.scrubTo(int(v)) }
	s.gifBtn = widget.NewButtonWithIcon(lang.L("Save GIF…"), theme.MediaVideoIcon(), func() {
		pickSaveFile(s.win, lang.L("Save the training progress as a GIF"), "progress.gif", lang.L("GIF"), []string{".gif"},
			func(p string) { s.SaveProgressGIF(p, nil) })
	})
	s.gifBtn.Disable()
	return container.NewBorder(nil, nil, s.scrubLabel, s.gifBtn, s.scrub)
}

// refreshScrubber lists the run's saved previews; a scrubber at the newest
// one follows new ones.
func (s *Studio) refreshScrubber() {
	if s.runDir == "" {
		s.previews = nil
	} else {
		s.previews, _ = training.ListPreviews(filepath.Join(s.runDir, training.SamplesFolder))
	}
	n := len(s.previews)
	if n > 0 {
		s.gifBtn.Enable()
	} else {
		s.gifBtn.Disable()
	}
	s.scrub.Max = float64(max(0, n-1))
	if s.scrubLive {
		s.scrub.Value = s.scrub.Max
	}
	s.scrub.Refresh()
	s.updateScrubLabel()
}

func (s *Studio) updateScrubLabel() {
	n := len(s.previews)
	switch {
	case n == 0:
		s.scrubLabel.SetText(lang.L("Preview history: none yet"))
	case s.scrubLive:
		s.scrubLabel.SetText(fmt.Sprintf(lang.L("Live · %d saved"), n))
	default:
		i := min(int(s.scrub.Value), n-1)
		s.scrubLabel.SetText(fmt.Sprintf(lang.L("Step %d (%d/%d)"), s.previews[i].Step, i+1, n))
	}
}

// scrubTo shows saved preview i (the newest one means: follow training).
func (s *Studio) scrubTo(i int) {
	if i < 0 || i >= len(s.previews) {
		return
	}
	s.scrubLive = i == len(s.previews)-1 && s.worker != nil
	s.updateScrubLabel()
	path := s.previews[i].Path
	go func() {
		img, err := readRGBA(path)
		s.do(func() {
			if err != nil {
				s.status.SetText(lang.L("Error: ") + err.Error())
				return
			}
			s.grid.SetImage(img)
		})
	}()
}

// ScrubTo moves the preview history to saved preview i, as dragging the
// slider does.
func (s *Studio) ScrubTo(i int) { s.scrub.SetValue(float64(i)) }

// SaveProgressGIF writes the run's previews as an animated GIF, off the UI
// goroutine.
func (s *Studio) SaveProgressGIF(path string, done func(error)) {
	run := s.runDir
	go func() {
		n, err := training.WriteProgressGIF(run, path, 200, 20)
		s.do(func() {
			if err != nil {
				s.showError(fmt.Errorf(lang.L("the GIF was not written: %w"), err))
			} else {
				s.status.SetText(fmt.Sprintf(lang.L("Saved %s (%d frames)"), path, n))
			}
			if done != nil {
				done(err)
			}
		})
	}()
}

// readRGBA decodes a PNG file into the RGBA image a SampleGrid shows.
func readRGBA(path string) (*image.RGBA, error) {
	img, err := training.ReadPNG(path)
	if err != nil {
		return nil, err
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
	return out, nil
}

// buildChartOptions are the loss chart's smoothing slider and log-scale switch.
func (s *Studio) buildChartOptions() fyne.CanvasObject {
	smooth := widget.NewSlider(0, 0.99)
	smooth.Step = 0.01
	smoothLabel := widget.NewLabel(lang.L("Smoothing 0.00"))
	smooth.OnChanged = func(v float64) {
		smoothLabel.SetText(fmt.Sprintf(lang.L("Smoothing %.2f"), v))
		s.chart.SetSmoothing(v)
	}
	s.smooth = smooth
	s.logScale = widget.NewCheck(lang.L("Log scale"), func(on bool) {
		s.chart.SetLogScale(on)
		s.lrChart.SetLogScale(on)
	})
	return container.NewBorder(nil, nil, smoothLabel, s.logScale, smooth)
}

// writeFailed tells the user a file could not be written; when the worker
// paused for it, they choose to keep training or stop.
func (s *Studio) writeFailed(what string, step int, err error, paused bool) {
	msg := fmt.Sprintf(lang.L("The %s at step %d could not be written:\n%v\n\nThe previous checkpoint is intact."), tr(what), step, err)
	if !paused {
		s.status.SetText(lang.L("Warning: ") + firstLine(msg))
		return
	}
	s.status.SetText(fmt.Sprintf(lang.L("Paused: the %s at step %d could not be written"), tr(what), step))
	label := widget.NewLabel(msg + lang.L("\nFree some space (or fix the folder's permissions), then keep training; or stop the run."))
	label.Wrapping = fyne.TextWrapWord
	w := s.worker
	d := dialog.NewCustomConfirm(lang.L("Could not write the ")+tr(what), lang.L("Keep training"), lang.L("Stop"), label, func(keep bool) {
		if w != s.worker || w == nil {
			return
		}
		if keep {
			w.Resume()
		} else {
			s.Stop()
		}
	}, s.win)
	d.Resize(fyne.NewSize(560, 260))
	d.Show()
	s.writeDialog = d
}

// diverged offers to roll a diverged run back to its last checkpoint with
// lower learning rates.
func (s *Studio) diverged(step int, err error) {
	cks, _ := training.ListCheckpoints(filepath.Join(s.runDir, training.CkptFolder))
	if len(cks) == 0 {
		s.showError(fmt.Errorf(lang.L("%w\n\nThe run has no checkpoint to go back to: lower the learning rate and train a new model"), err))
		return
	}
	last := cks[len(cks)-1]
	s.status.SetText(fmt.Sprintf(lang.L("Diverged at step %d"), step+1))
	label := widget.NewLabel(fmt.Sprintf(lang.L("Training diverged at step %d:\n%v\n\nRoll back to %s and go on with the learning rate halved? The run keeps its history up to that checkpoint."),
		step+1, err, filepath.Base(last)))
	label.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm(lang.L("Training diverged"), lang.L("Roll back and go on"), lang.L("Close"), label, func(ok bool) {
		if ok {
			s.RollBack(last, nil)
		}
	}, s.win)
	d.Resize(fyne.NewSize(600, 280))
	d.Show()
	s.divergeDialog = d
}

// RollBack loads a checkpoint of the current run with the learning rates
// halved and continues the run from it.
func (s *Studio) RollBack(path string, done func(error)) {
	if s.worker != nil {
		return
	}
	s.loadCheckpointLR(path, rollbackLR, func(err error) {
		if err == nil {
			s.Train()
		}
		if done != nil {
			done(err)
		}
	})
}

// notifyDone raises a desktop notification when a long run ends.
func (s *Studio) notifyDone(step int, err error) {
	if s.runStart.IsZero() || time.Since(s.runStart) < longRun {
		return
	}
	title, body := lang.L("Training finished"), fmt.Sprintf(lang.L("Stopped at step %d."), step)
	if err != nil {
		title, body = lang.L("Training stopped on an error"), fmt.Sprintf(lang.L("Step %d: %s"), step, firstLine(err.Error()))
	} else if s.stepsWanted > 0 && step >= s.stepsWanted {
		body = fmt.Sprintf(lang.L("All %d steps are done."), step)
	}
	s.app.SendNotification(fyne.NewNotification(lang.L("Gen Studio: ")+title, body))
}

// runsPanel is the Runs tab: every run of the project (or of the runs
// folder), with its state, step, losses and last evaluation; rename,
// delete, pin, open, and the curves of the selected runs overlaid.
type runsPanel struct {
	list     *widget.List
	runs     []training.RunSummary
	selected map[string]bool
	current  int // the run the buttons act on (-1: none)
	chart    *widgets.LossChart
	preview  *widgets.SampleGrid // the selected run's newest preview
	shown    string              // the preview file it shows
	series   *widget.Select
	note     *widget.Label
	content  fyne.CanvasObject
	rename   *widget.Button
	del      *widget.Button
	pin      *widget.Button
	open     *widget.Button
	watching bool
	gen      int // refreshes started; only the newest one's result is shown
	curveGen int // likewise for the overlaid curves
}

func (s *Studio) buildRunsPanel() *runsPanel {
	p := &runsPanel{selected: map[string]bool{}, current: -1}
	p.note = widget.NewLabel("")
	p.note.Wrapping = fyne.TextWrapWord
	p.chart = widgets.NewLossChart()
	p.chart.SetPlaceholder(lang.L("Tick runs to overlay their curves"))
	p.series = widget.NewSelect(nil, func(string) { s.overlayRuns() })
	p.list = widget.NewList(func() int { return len(p.runs) },
		func() fyne.CanvasObject {
			check := widget.NewCheck("", nil)
			return container.NewBorder(nil, nil, check, nil, widget.NewLabel(lang.L("run")))
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i >= len(p.runs) {
				return
			}
			r := p.runs[i]
			c := o.(*fyne.Container)
			label := c.Objects[0].(*widget.Label)
			check := c.Objects[1].(*widget.Check)
			label.SetText(runLine(r))
			id := r.ID
			check.OnChanged = nil
			check.SetChecked(p.selected[id])
			check.OnChanged = func(on bool) {
				p.selected[id] = on
				s.overlayRuns()
			}
		})
	p.list.OnSelected = func(i widget.ListItemID) { p.current = i; s.runsButtons(); s.showRunPreview() }
	p.preview = widgets.NewSampleGrid()
	p.preview.SetPlaceholder(lang.L("Select a run: its newest preview appears here"))
	p.rename = widget.NewButtonWithIcon(lang.L("Rename…"), theme.DocumentCreateIcon(), func() { s.renameRunDialog() })
	p.del = widget.NewButtonWithIcon(lang.L("Delete…"), theme.DeleteIcon(), func() { s.deleteRunDialog() })
	p.pin = widget.NewButtonWithIcon(lang.L("Pin newest checkpoint"), theme.ContentAddIcon(), func() { s.pinNewest() })
	p.open = widget.NewButtonWithIcon(lang.L("Open in Train"), theme.MediaPlayIcon(), func() { s.openRun() })
	refresh := widget.NewButtonWithIcon(lang.L("Refresh"), theme.ViewRefreshIcon(), s.refreshRuns)
	buttons := container.NewHBox(p.open, p.rename, p.pin, p.del, widget.NewSeparator(), refresh)
	curves := container.NewBorder(container.NewBorder(nil, nil, widget.NewLabel(lang.L("Curve")), nil, p.series), nil, nil, nil, p.chart)
	right := container.NewVSplit(curves, p.preview)
	right.Offset = 0.6
	split := container.NewHSplit(container.NewBorder(nil, nil, nil, nil, p.list), right)
	split.Offset = 0.55
	p.content = container.NewBorder(container.NewVBox(buttons, p.note), nil, nil, nil, split)
	s.runs = p
	s.runsButtons()
	return p
}

// runLine is a run's row in the Runs list.
func runLine(r training.RunSummary) string {
	name := r.ID
	if r.Name != "" {
		name = r.Name + " (" + r.ID + ")"
	}
	step := fmt.Sprint(r.Step)
	if r.Steps > 0 {
		step += "/" + fmt.Sprint(r.Steps)
	}
	var ls []string
	for _, n := range r.LossNames {
		if v, ok := r.Losses[n]; ok {
			ls = append(ls, fmt.Sprintf("%s %.3f", n, v))
		}
	}
	out := fmt.Sprintf("%s · %s · %s · step %s", name, orNone(r.Model), r.State, step)
	if len(ls) > 0 {
		out += " · " + strings.Join(ls, ", ")
	}
	if r.LastEval != nil {
		out += fmt.Sprintf(" · FID %.1f (N %d)", r.LastEval.FID, r.LastEval.N)
	}
	if len(r.Pinned) > 0 {
		out += fmt.Sprintf(" · %d pinned", len(r.Pinned))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return lang.L("no checkpoint")
	}
	return s
}

// runFolders are the run folders the Runs tab lists: the project's runs,
// or the runs folder's sub-folders without a project.
func (s *Studio) runFolders() (dirs, names []string) {
	if s.proj != nil {
		for _, r := range s.proj.AllRuns() {
			dirs, names = append(dirs, s.proj.RunDir(r.ID)), append(names, r.Name)
		}
		return
	}
	entries, _ := os.ReadDir(s.runsFolder())
	for _, e := range entries {
		if e.IsDir() {
			dirs, names = append(dirs, filepath.Join(s.runsFolder(), e.Name())), append(names, "")
		}
	}
	return
}

// refreshRuns re-reads the run folders off the UI goroutine. Runs another
// process is writing (genstudio train on the same project) show their
// progress as it comes.
func (s *Studio) refreshRuns() {
	dirs, names := s.runFolders()
	s.runs.gen++
	gen := s.runs.gen
	go func() {
		var runs []training.RunSummary
		for i, d := range dirs {
			r, err := training.SummarizeRun(d)
			if err != nil {
				continue
			}
			r.Name = names[i]
			runs = append(runs, r)
		}
		s.do(func() {
			p := s.runs
			if gen != p.gen {
				return // a newer refresh is under way
			}
			p.runs = runs
			if p.current >= len(runs) {
				p.current = -1
			}
			where := s.runsFolder()
			if s.proj != nil {
				where = s.proj.Dir()
			}
			p.note.SetText(fmt.Sprintf(lang.L("%d runs in %s. Tick runs to overlay their curves; select one to open, rename, pin or delete it. The list follows runs other processes are writing."), len(runs), where))
			p.list.Refresh()
			s.runsButtons()
			s.overlayRuns()
			s.showRunPreview()
		})
	}()
}

// watchRuns refreshes the Runs tab every few seconds while it is shown.
func (s *Studio) watchRuns() {
	if s.runs.watching {
		return
	}
	s.runs.watching = true
	go func() {
		for {
			time.Sleep(3 * time.Second)
			var visible bool
			s.doWait(func() { visible = s.onTab(tabRuns) })
			if !visible {
				s.doWait(func() { s.runs.watching = false })
				return
			}
			s.doWait(s.refreshRuns)
		}
	}()
}

func (s *Studio) runsButtons() {
	p := s.runs
	on := p.current >= 0 && p.current < len(p.runs)
	for _, b := range []*widget.Button{p.rename, p.del, p.pin, p.open} {
		if on {
			b.Enable()
		} else {
			b.Disable()
		}
	}
	if on && s.proj == nil {
		p.rename.Disable() // names live in project.json
	}
	if on && (len(p.runs[p.current].Checkpoints) == 0 || s.worker != nil) {
		p.open.Disable()
	}
	if on && len(p.runs[p.current].Checkpoints) == 0 {
		p.pin.Disable()
	}
	if on && s.worker != nil && p.runs[p.current].Dir == s.runDir {
		p.del.Disable()
	}
}

// overlayRuns draws the chosen curve of every ticked run.
func (s *Studio) overlayRuns() {
	p := s.runs
	var picked []training.RunSummary
	names := map[string]bool{}
	for _, r := range p.runs {
		if p.selected[r.ID] {
			picked = append(picked, r)
			for _, n := range r.LossNames {
				names[n] = true
			}
		}
	}
	opts := []string{lang.L("learning rate")}
	for n := range names {
		opts = append(opts, n)
	}
	slices.Sort(opts[1:])
	p.series.Options = opts
	if p.series.Selected == "" && len(opts) > 1 {
		p.series.Selected = opts[1]
	}
	p.series.Refresh()
	curve := p.series.Selected
	p.curveGen++
	gen := p.curveGen
	go func() {
		type line struct {
			name   string
			steps  []int
			values []float64
		}
		var lines []line
		for _, r := range picked {
			h, err := readRunHistory(r.Dir, -1, r.LossNames)
			if err != nil {
				continue
			}
			label := r.ID
			if r.Name != "" {
				label = r.Name
			}
			if curve == lang.L("learning rate") {
				lines = append(lines, line{label, h.lrSteps, h.lrs})
			} else if v, ok := h.losses[curve]; ok {
				lines = append(lines, line{label, h.steps, v})
			}
		}
		s.do(func() {
			if gen != p.curveGen {
				return
			}
			p.chart.Clear()
			for _, l := range lines {
				p.chart.SetSeries(l.name, l.steps, l.values)
			}
		})
	}()
}

// showRunPreview shows the selected run's newest preview grid (loaded off
// the UI goroutine, and only when it changed).
func (s *Studio) showRunPreview() {
	r, ok := s.currentRun()
	if !ok {
		return
	}
	go func() {
		prev, _ := training.ListPreviews(filepath.Join(r.Dir, training.SamplesFolder))
		if len(prev) == 0 {
			return
		}
		path := prev[len(prev)-1].Path
		var same bool
		s.doWait(func() { same = s.runs.shown == path })
		if same {
			return
		}
		img, err := readRGBA(path)
		if err != nil {
			return
		}
		s.do(func() { s.runs.preview.SetImage(img); s.runs.shown = path })
	}()
}

func (s *Studio) currentRun() (training.RunSummary, bool) {
	p := s.runs
	if p.current < 0 || p.current >= len(p.runs) {
		return training.RunSummary{}, false
	}
	return p.runs[p.current], true
}

func (s *Studio) renameRunDialog() {
	r, ok := s.currentRun()
	if !ok || s.proj == nil {
		return
	}
	entry := widget.NewEntry()
	entry.SetText(r.Name)
	entry.SetPlaceHolder(r.ID)
	dialog.ShowForm("Rename run", "Rename", "Cancel", []*widget.FormItem{widget.NewFormItem(lang.L("Name"), entry)}, func(ok bool) {
		if ok {
			s.RenameRun(r.ID, entry.Text)
		}
	}, s.win)
}

// RenameRun names a project's run.
func (s *Studio) RenameRun(id, name string) {
	if s.proj == nil {
		return
	}
	if err := s.proj.RenameRun(id, name); err != nil {
		s.showError(err)
		return
	}
	s.refreshRuns()
}

func (s *Studio) deleteRunDialog() {
	r, ok := s.currentRun()
	if !ok {
		return
	}
	dialog.ShowConfirm(lang.L("Delete run"), fmt.Sprintf(lang.L("Delete run %s and its %d checkpoints, %d previews and metrics? This cannot be undone."),
		r.ID, len(r.Checkpoints), r.Previews), func(ok bool) {
		if ok {
			s.DeleteRun(r)
		}
	}, s.win)
}

// DeleteRun deletes a run folder (and its entry in the project).
func (s *Studio) DeleteRun(r training.RunSummary) {
	if s.worker != nil && r.Dir == s.runDir {
		s.showError(errors.New(lang.L("stop the run before deleting it")))
		return
	}
	var err error
	if s.proj != nil {
		err = s.proj.DeleteRun(r.ID)
	} else {
		err = os.RemoveAll(r.Dir)
	}
	if err != nil {
		s.showError(err)
	}
	if r.Dir == s.runDir {
		s.runDir = ""
		s.refreshScrubber()
	}
	delete(s.runs.selected, r.ID)
	s.runs.current = -1
	s.runs.list.UnselectAll()
	s.refreshRuns()
}

// pinNewest pins the selected run's newest checkpoint, so that pruning
// never removes it.
func (s *Studio) pinNewest() {
	r, ok := s.currentRun()
	if !ok || len(r.Checkpoints) == 0 {
		return
	}
	ck := r.Checkpoints[len(r.Checkpoints)-1]
	if err := training.PinCheckpoint(ck, true); err != nil {
		s.showError(err)
		return
	}
	s.status.SetText(lang.L("Pinned ") + ck)
	s.refreshRuns()
}

// openRun loads the selected run's newest checkpoint into the Train tab,
// with its history: Train then continues that run.
func (s *Studio) openRun() {
	r, ok := s.currentRun()
	if !ok || len(r.Checkpoints) == 0 || s.worker != nil {
		return
	}
	s.LoadCheckpoint(r.Checkpoints[len(r.Checkpoints)-1], func(err error) {
		if err == nil {
			s.tabs.SelectIndex(0)
		}
	})
}
