// Package app is Gen Studio's window: the data set panel, the model form,
// the run controls, the live preview and loss chart, and the dialogs. It is
// the only package that knows both the widgets and the training library: it
// turns worker events into widget updates (inside fyne.Do) and user actions
// into worker commands.
package app

import (
	"context"
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/widgets"
)

const thumbCount = 16

// The tabs, in their order.
const (
	tabTrain = iota
	tabEvaluate
	tabCompare
	tabLab
	tabExplore
	tabRate
	tabRuns
)

// onTab reports whether tab i is the one shown.
func (s *Studio) onTab(i int) bool { return s.tabs != nil && s.tabs.SelectedIndex() == i }

// Studio is the main window and its state. Its fields are touched only on
// the UI goroutine; the worker reaches them through events and fyne.Do.
type Studio struct {
	app fyne.App
	win fyne.Window

	data    *project.Dataset
	model   models.Model // the current model (owned by the worker while one runs)
	step    int          // steps the current model has trained
	seed    uint64       // training seed of the current model
	worker  *training.Worker
	runDir  string
	runsDir string // where runs without a project go (default runsRoot())
	history map[string][]float64
	steps   []int
	loading context.CancelFunc
	// afterLoad, when set, runs once after the data set being loaded is in
	// place (the welcome's "Train on MNIST").
	afterLoad func()
	// exportCancel cancels the gallery export in progress (nil: none).
	exportCancel context.CancelFunc

	// data set panel
	dataName, dataInfo, dataNote *widget.Label
	thumbs                       []*canvas.Image
	loadBar                      *widget.ProgressBar
	openBtn, cancelLoad          *widget.Button
	browseBtn                    *widget.Button

	proj  *project.Project // the open project, nil when none
	dirty bool             // settings changed since the project was saved
	quiet bool             // the form is being filled from a project: no dirty mark, no reload

	form *modelForm

	trainBtn, pauseBtn, stopBtn, newBtn *widget.Button
	exportBtn, saveBtn, loadBtn         *widget.Button
	progress                            *widget.ProgressBar
	status                              *widget.Label
	grid, aux                           *widgets.SampleGrid
	auxTitle                            *widget.Label
	views                               *container.AppTabs
	chart                               *widgets.LossChart
	tabs                                *container.AppTabs // Train, Evaluate, Compare
	eval                                *evalPanel
	evalChart                           *widgets.LossChart // FID of the periodic evaluations
	chartTabs                           *container.AppTabs
	evalSteps                           []int
	evalFID                             []float64
	evaluator                           *training.Evaluator // the periodic evaluations' (loaded once)
	compare                             *comparePanel
	lab                                 *labPanel
	explore                             *explorePanel
	rate                                *ratePanel
	runs                                *runsPanel

	// the preview history under the live preview
	scrub         *widget.Slider
	scrubLabel    *widget.Label
	gifBtn        *widget.Button
	previews      []training.PreviewFile
	scrubLive     bool // the preview follows training (the slider is at the newest)
	lrChart       *widgets.LossChart
	lrSteps       []int
	lrValues      []float64
	smooth        *widget.Slider
	logScale      *widget.Check
	runStart      time.Time // when the current run (or its continuation) started
	stepsWanted   int       // the current run's target
	writeDialog   dialog.Dialog
	divergeDialog dialog.Dialog

	// do and doWait run a function on the UI goroutine (fyne.Do and
	// fyne.DoAndWait; tests serialise them, as Fyne's test driver does not).
	do, doWait func(func())

	// onEvent, when set (tests), sees every worker event after the UI has.
	onEvent func(training.Event)
	mu      sync.Mutex // guards onEvent
	// onApplied, when set (the UI benchmark), runs on the UI goroutine after
	// each update the window applied (merged progress counts as one).
	onApplied func(training.Event)
	uiPeriod  time.Duration // fixed least time between progress updates (0: paced, see uiPacer)
	pace      *uiPacer      // the pacing learnt so far (used by one run at a time)
}

// NewStudio builds the studio in win. Call it on the UI goroutine.
func NewStudio(a fyne.App, win fyne.Window) *Studio {
	s := &Studio{app: a, win: win, history: map[string][]float64{}, do: fyne.Do, doWait: fyne.DoAndWait}
	s.dataName = widget.NewLabelWithStyle(lang.L("No data set"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	s.dataInfo = widget.NewLabel("")
	s.dataInfo.Wrapping = fyne.TextWrapWord
	s.dataNote = widget.NewLabel(lang.L("Drop a folder of images anywhere on this window, or open one."))
	s.dataNote.Wrapping = fyne.TextWrapWord
	s.loadBar = widget.NewProgressBar()
	s.loadBar.Hide()
	s.cancelLoad = widget.NewButtonWithIcon(lang.L("Cancel loading"), theme.CancelIcon(), func() {
		if s.loading != nil {
			s.loading()
		}
	})
	s.cancelLoad.Hide()
	s.openBtn = widget.NewButtonWithIcon(lang.L("Open folder…"), theme.FolderOpenIcon(), func() {
		pickFolder(s.win, lang.L("Open a folder of images"), func(p string) { s.LoadDataset(p) })
	})
	mnistBtn := widget.NewButton(lang.L("MNIST"), func() { s.LoadDataset("mnist") })
	s.browseBtn = widget.NewButtonWithIcon(lang.L("Browse…"), theme.GridIcon(), s.BrowseData)
	thumbBox := container.NewGridWithColumns(8)
	for i := 0; i < thumbCount; i++ {
		img := canvas.NewImageFromImage(image.NewGray(image.Rect(0, 0, 28, 28)))
		img.ScaleMode = canvas.ImageScalePixels
		img.FillMode = canvas.ImageFillContain
		img.SetMinSize(fyne.NewSize(28, 28))
		s.thumbs = append(s.thumbs, img)
		thumbBox.Add(img)
	}
	dataCard := widget.NewCard(lang.L("Data set"), "", container.NewVBox(
		s.dataName, s.dataInfo, thumbBox, s.loadBar, s.cancelLoad, s.dataNote,
		container.NewGridWithColumns(3, s.openBtn, mnistBtn, s.browseBtn)))

	s.form = newModelForm()
	s.applyRunDefaults()
	s.form.onChange = s.markDirty
	reshape := func() {
		if s.quiet {
			return
		}
		s.markDirty()
		// A folder is read again at the new shape (colour kept); MNIST is
		// conformed when training starts.
		if s.data != nil && s.data.Source != project.MNISTSource && s.worker == nil {
			s.LoadDataset(s.data.Source)
		}
	}
	s.form.image.OnChanged = func(string) { reshape() }
	s.form.resize.OnChanged = func(string) { reshape() }
	s.form.flip.OnChanged = func(bool) { s.markDirty() }
	modelCard := widget.NewCard(lang.L("Model"), "", s.form.content)

	s.trainBtn = widget.NewButtonWithIcon(lang.L("Train"), theme.MediaPlayIcon(), s.Train)
	s.trainBtn.Importance = widget.HighImportance
	s.pauseBtn = widget.NewButtonWithIcon(lang.L("Pause"), theme.MediaPauseIcon(), s.TogglePause)
	s.stopBtn = widget.NewButtonWithIcon(lang.L("Stop"), theme.MediaStopIcon(), s.Stop)
	s.newBtn = widget.NewButtonWithIcon(lang.L("New model"), theme.ContentClearIcon(), s.NewModel)
	s.exportBtn = widget.NewButtonWithIcon(lang.L("Export gallery…"), theme.DownloadIcon(), func() {
		pickFolder(s.win, lang.L("Export the gallery into"), func(p string) { s.ExportGallery(p, nil) })
	})
	s.saveBtn = widget.NewButtonWithIcon(lang.L("Save checkpoint…"), theme.DocumentSaveIcon(), func() {
		pickSaveFile(s.win, lang.L("Save checkpoint"), training.CheckpointName(s.step), lang.L("Checkpoints"), []string{".safetensors"},
			func(p string) { s.SaveCheckpoint(p, nil) })
	})
	s.loadBtn = widget.NewButtonWithIcon(lang.L("Load checkpoint…"), theme.FolderOpenIcon(), func() {
		pickOpenFile(s.win, lang.L("Load checkpoint"), lang.L("Checkpoints"), []string{".safetensors"}, func(p string) { s.LoadCheckpoint(p, nil) })
	})
	s.progress = widget.NewProgressBar()
	s.status = widget.NewLabel(lang.L("Ready."))
	s.status.Truncation = fyne.TextTruncateEllipsis
	s.grid = widgets.NewSampleGrid()
	s.grid.SetPlaceholder(lang.L("Press Train: samples from fixed noise appear here"))
	s.chart = widgets.NewLossChart()

	controls := container.NewHBox(s.trainBtn, s.pauseBtn, s.stopBtn, s.newBtn, widget.NewSeparator(), s.exportBtn, s.saveBtn, s.loadBtn)
	top := container.NewVBox(controls, container.NewBorder(nil, nil, nil, nil, s.progress), s.status)
	s.aux = widgets.NewSampleGrid()
	s.aux.SetPlaceholder(lang.L("VAEs show reconstructions here, diffusion models their denoising path"))
	s.auxTitle = widget.NewLabel("")
	s.views = container.NewAppTabs(
		container.NewTabItem(lang.L("Samples (fixed noise)"), s.grid),
		container.NewTabItem(lang.L("Reconstruction / denoising"), container.NewBorder(s.auxTitle, nil, nil, nil, s.aux)))
	previewCard := widget.NewCard(lang.L("Preview"), "", container.NewBorder(nil, s.buildScrubber(), nil, nil, s.views))
	s.lrChart = widgets.NewLossChart()
	s.lrChart.SetPlaceholder(lang.L("The learning rate of each step appears here"))
	s.evalChart = widgets.NewLossChart()
	s.evalChart.SetPlaceholder(lang.L("Set \"Evaluate every\" in the form: FID over the steps appears here"))
	s.chartTabs = container.NewAppTabs(
		container.NewTabItem(lang.L("Losses"), s.chart),
		container.NewTabItem(lang.L("Learning rate"), s.lrChart),
		container.NewTabItem(lang.L("Evaluation"), s.evalChart))
	chartCard := widget.NewCard(lang.L("Training curves"), "", container.NewBorder(nil, s.buildChartOptions(), nil, nil, s.chartTabs))
	centre := container.NewHSplit(previewCard, chartCard)
	centre.Offset = 0.5
	left := container.NewVScroll(container.NewVBox(dataCard, modelCard))
	left.SetMinSize(fyne.NewSize(360, 0))
	main := container.NewBorder(top, nil, nil, nil, centre)
	split := container.NewHSplit(left, main)
	split.Offset = 0.28
	s.eval = s.buildEvalPanel()
	s.compare = s.buildComparePanel()
	s.lab = s.buildLabPanel()
	s.explore = s.buildExplorePanel()
	s.rate = s.buildRatePanel()
	s.buildRunsPanel()
	s.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon(lang.L("Train"), theme.MediaPlayIcon(), split),
		container.NewTabItemWithIcon(lang.L("Evaluate"), theme.InfoIcon(), s.eval.content),
		container.NewTabItemWithIcon(lang.L("Compare"), theme.ListIcon(), s.compare.content),
		container.NewTabItemWithIcon(lang.L("Lab"), theme.GridIcon(), s.lab.content),
		container.NewTabItemWithIcon(lang.L("Explore"), theme.SearchIcon(), s.explore.content),
		container.NewTabItemWithIcon(lang.L("Rate"), theme.ConfirmIcon(), s.rate.content),
		container.NewTabItemWithIcon(lang.L("Runs"), theme.HistoryIcon(), s.runs.content))
	s.tabs.OnSelected = func(t *container.TabItem) {
		switch slices.Index(s.tabs.Items, t) {
		case tabEvaluate:
			s.refreshEvalSources()
		case tabExplore:
			s.refreshExploreSources()
		case tabRate:
			s.refreshRateSources()
		case tabCompare:
			s.rateShowResults()
		case tabRuns:
			s.refreshRuns()
			s.watchRuns()
		}
	}
	win.Canvas().SetOnTypedKey(s.typedKey)
	win.SetContent(s.tabs)
	win.SetOnDropped(func(_ fyne.Position, uris []fyne.URI) { s.Dropped(uris) })
	s.updateControls()
	return s
}

// Dropped handles files or folders dropped on the window: the first one
// becomes the data set.
func (s *Studio) Dropped(uris []fyne.URI) {
	for _, u := range uris {
		if u.Scheme() == "file" {
			s.LoadDataset(u.Path())
			return
		}
	}
	s.showError(errors.New(lang.L("only local files and folders can be dropped here")))
}

func (s *Studio) showError(err error) {
	s.status.SetText(lang.L("Error: ") + firstLine(err.Error()))
	dialog.ShowError(err, s.win)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// LoadDataset loads "mnist" or a folder off the UI goroutine, with progress.
// A failed load keeps the current data set.
func (s *Studio) LoadDataset(src string) {
	if s.worker != nil {
		s.showError(errors.New(lang.L("stop training before changing the data set")))
		return
	}
	if s.loading != nil {
		s.loading()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.loading = cancel
	s.loadBar.SetValue(0)
	s.loadBar.Show()
	s.status.SetText(lang.L("Loading ") + src + " …")
	pre := s.form.preprocess()
	proj := s.proj
	s.cancelLoad.Show()
	go func() {
		var d *project.Dataset
		var err error
		progress := func(done, total int) {
			if total > 0 {
				v := float64(done) / float64(total)
				s.do(func() { s.loadBar.SetValue(v) })
			}
		}
		var cacheErr error
		switch {
		case src == project.MNISTSource:
			d, err = project.LoadMNIST()
		case proj != nil:
			d, _, err = project.CacheLoad(proj.CacheDir(), src, pre, func() (*project.Dataset, error) {
				return project.LoadSource(ctx, src, pre, progress)
			})
			if errors.Is(err, project.ErrCacheWrite) && d != nil {
				cacheErr, err = err, nil // the data set is good; only the cache failed
			}
		default:
			d, err = project.LoadSource(ctx, src, pre, progress)
		}
		s.do(func() {
			if ctx.Err() != nil {
				s.loading = nil
				s.loadBar.Hide()
				s.cancelLoad.Hide()
				s.afterLoad = nil
				s.status.SetText(lang.L("Loading cancelled; the data set is unchanged."))
				return
			}
			s.loading = nil
			s.loadBar.Hide()
			s.cancelLoad.Hide()
			if cacheErr != nil {
				dialog.ShowInformation(lang.L("Data set cache not written"), cacheErr.Error(), s.win)
			}
			if err != nil {
				msg := err
				if d != nil && len(d.Skipped) > 0 {
					msg = fmt.Errorf("%w\n\n%s", err, skippedText(d.Skipped, 10))
				}
				s.afterLoad = nil
				s.showError(msg)
				return
			}
			s.setData(d)
			if f := s.afterLoad; f != nil {
				s.afterLoad = nil
				f()
			}
		})
	}()
}

func skippedText(sk []project.Skipped, max int) string {
	var b strings.Builder
	for i, x := range sk {
		if i == max {
			fmt.Fprintf(&b, "… and %d more", len(sk)-max)
			break
		}
		fmt.Fprintf(&b, "%s: %s\n", filepath.Base(x.Path), x.Reason)
	}
	return strings.TrimSpace(b.String())
}

func (s *Studio) setData(d *project.Dataset) {
	if s.proj != nil && s.proj.DataSource() != d.Source {
		s.proj.SetDataset(d.Source, s.form.preprocess())
		s.markDirty()
	}
	s.data = d
	s.dataName.SetText(d.Name)
	info := fmt.Sprintf(lang.L("%d images, %s"), d.Len(), imageText(d.Width, d.C()))
	if counts := classCounts(d); len(counts) > 0 && len(counts) <= 12 {
		info += "\n" + strings.Join(counts, "  ")
	} else if len(d.Classes) > 0 {
		info += fmt.Sprintf(lang.L(", %d classes"), len(d.Classes))
	}
	s.dataInfo.SetText(info)
	for i, t := range s.thumbs {
		k := i * d.Len() / len(s.thumbs)
		if th := d.Thumbnail(k); th != nil {
			t.Image = th
		} else {
			t.Image = image.NewGray(image.Rect(0, 0, d.Width, d.Height))
		}
		t.Refresh()
	}
	if len(d.Skipped) > 0 {
		s.dataNote.SetText(fmt.Sprintf(lang.L("%d files skipped:\n%s"), len(d.Skipped), skippedText(d.Skipped, 5)))
	} else {
		s.dataNote.SetText(lang.L("Drop a folder of images anywhere on this window to use it instead."))
	}
	s.status.SetText(fmt.Sprintf(lang.L("Loaded %s: %d images. Press Train."), d.Name, d.Len()))
	s.updateControls()
}

func (s *Studio) updateControls() {
	if p := s.eval; p != nil && p.cancel == nil {
		if d := s.data; d != nil && d.Source != project.MNISTSource {
			p.trainEv.Enable()
		} else {
			p.trainEv.Disable()
		}
	}
	running := s.worker != nil
	paused := running && s.worker.State() == training.Paused
	set := func(b *widget.Button, on bool) {
		if on {
			b.Enable()
		} else {
			b.Disable()
		}
	}
	set(s.trainBtn, !running && s.data != nil)
	set(s.pauseBtn, running)
	set(s.stopBtn, running)
	set(s.newBtn, !running && s.model != nil)
	set(s.exportBtn, s.model != nil)
	set(s.saveBtn, s.model != nil)
	set(s.loadBtn, !running)
	set(s.openBtn, !running)
	set(s.browseBtn, s.data != nil)
	if !running && s.model != nil && s.step > 0 && s.runDir != "" {
		s.trainBtn.SetText(lang.L("Resume run"))
	} else {
		s.trainBtn.SetText(lang.L("Train"))
	}
	if paused {
		s.pauseBtn.SetText(lang.L("Resume"))
		s.pauseBtn.SetIcon(theme.MediaPlayIcon())
	} else {
		s.pauseBtn.SetText(lang.L("Pause"))
		s.pauseBtn.SetIcon(theme.MediaPauseIcon())
	}
	s.form.setEnabled(s.model == nil)
	s.form.steps.entry.Enable()
	s.form.preview.entry.Enable()
	if running {
		s.form.steps.entry.Disable()
		s.form.preview.entry.Disable()
	}
}

// runsRoot is where runs without a project keep their checkpoints and previews.
func runsRoot() string {
	if d := os.Getenv("GENSTUDIO_HOME"); d != "" {
		return filepath.Join(d, "runs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, "GenStudio", "runs")
	}
	return filepath.Join(os.TempDir(), "GenStudio", "runs")
}

// Train starts (or continues) training the current model, building one
// from the form when there is none.
func (s *Studio) Train() {
	if s.worker != nil || s.data == nil {
		return
	}
	set, err := s.form.read()
	if err != nil {
		s.showError(err)
		return
	}
	if s.model != nil && set.steps <= s.step {
		s.showError(fmt.Errorf(lang.L("the model has already trained %d steps: set Steps higher to continue"), s.step))
		return
	}
	s.trainBtn.Disable()
	s.status.SetText(lang.L("Building the model …"))
	fresh := s.model == nil
	data := s.data
	go func() {
		m := s.modelForTraining(fresh, set)
		var conformed *project.Dataset
		if m.err == nil {
			sh := m.model.Shape()
			conformed, m.err = data.Conform(sh.Width, sh.Channels)
		}
		if m.err != nil {
			if fresh && m.model != nil {
				m.model.Close()
			}
			s.do(func() { s.showError(m.err); s.updateControls() })
			return
		}
		s.do(func() { s.startWorker(m.model, conformed, set) })
	}()
}

type builtModel struct {
	model models.Model
	err   error
}

func (s *Studio) modelForTraining(fresh bool, set runSettings) builtModel {
	if !fresh {
		return builtModel{model: s.model}
	}
	m, err := set.build()
	return builtModel{model: m, err: err}
}

func (s *Studio) startWorker(m models.Model, data *project.Dataset, set runSettings) {
	if s.model == nil {
		s.model, s.step, s.seed = m, 0, set.seed
		s.history, s.steps = map[string][]float64{}, nil
		s.chart.Clear()
		s.evalSteps, s.evalFID = nil, nil
		s.evalChart.Clear()
		s.runDir = ""
	}
	if s.runDir == "" {
		s.runDir = s.newRunDir(s.model.Family(), set.steps)
	}
	opts := runOptions(set, s.seed, s.step, s.runDir, s.form.flip.Checked)
	var err error
	if set.evalEvery > 0 {
		opts.Evaluator, err = s.periodicEvaluator(data)
		opts.EvalN = min(1000, data.Len()) // all of a small data set
	}
	var w *training.Worker
	if err == nil {
		w, err = training.NewWorker(s.model, data, opts)
	}
	if err == nil {
		err = os.MkdirAll(s.runDir, 0o755)
	}
	if err != nil {
		s.showError(err)
		s.updateControls()
		return
	}
	s.worker = w
	s.runStart, s.stepsWanted, s.scrubLive = time.Now(), set.steps, true
	w.Start(context.Background())
	s.status.SetText(fmt.Sprintf(lang.L("Training on %s, run folder %s"), s.data.Name, s.runDir))
	s.updateControls()
	go s.listen(w)
}

// runOptions are the worker options of a run started from the window (the
// UI benchmark's headless runs use them too, so that both train alike).
func runOptions(set runSettings, seed uint64, start int, runDir string, flip bool) training.Options {
	return training.Options{
		Steps: set.steps, Seed: seed, StartStep: start, PreviewEvery: set.previewEvery, EvalEvery: set.evalEvery,
		CheckpointDir: filepath.Join(runDir, training.CkptFolder), CheckpointEvery: 5 * time.Minute,
		MetricsPath: filepath.Join(runDir, training.MetricsFile), Flip: flip,
		PreviewDir: filepath.Join(runDir, training.SamplesFolder), RunDir: runDir, OnWriteError: training.WriteFailPause,
	}
}

// listen forwards a worker's events to the UI goroutine. Progress events
// that come within the pacer's period (see uiPacer) of the last update are
// merged (their loss points concatenated) and applied together with the
// newest preview in one UI callback; any other event first flushes them,
// so the UI sees everything in order.
func (s *Studio) listen(w *training.Worker) {
	if s.pace == nil || s.pace.fixed != (s.uiPeriod > 0) || (s.uiPeriod > 0 && s.pace.period != s.uiPeriod) {
		s.pace = newUIPacer(s.uiPeriod)
	}
	pace := s.pace
	pace.restart()
	var (
		progress *training.ProgressEvent
		preview  *training.PreviewEvent
		merged   []training.Event // the worker's events not yet applied, for onEvent
		last     time.Time
		deadline <-chan time.Time
	)
	deliver := func(evs []training.Event, originals []training.Event) {
		s.doWait(func() {
			for _, ev := range evs {
				s.apply(w, ev)
				if s.onApplied != nil {
					s.onApplied(ev)
				}
			}
		})
		s.mu.Lock()
		hook := s.onEvent
		s.mu.Unlock()
		if hook != nil {
			for _, e := range originals {
				hook(e)
			}
		}
	}
	flush := func() {
		var evs []training.Event
		if progress != nil {
			evs = append(evs, *progress)
		}
		if preview != nil {
			evs = append(evs, *preview)
		}
		if len(evs) == 0 {
			return
		}
		orig := merged
		progress, preview, merged, deadline = nil, nil, nil, nil
		last = time.Now()
		deliver(evs, orig)
		pace.applied()
	}
	events := w.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				flush()
				return
			}
			switch e := ev.(type) {
			case training.ProgressEvent:
				if progress == nil {
					progress = &e
				} else {
					pts := append(slices.Clip(progress.Points), e.Points...)
					*progress = e
					progress.Points = pts
				}
			case training.PreviewEvent:
				preview = &e
			default:
				flush()
				deliver([]training.Event{ev}, []training.Event{ev})
				continue
			}
			merged = append(merged, ev)
			if wait := pace.period - time.Since(last); wait <= 0 {
				flush()
			} else if deadline == nil {
				deadline = time.After(wait)
			}
		case <-deadline:
			flush()
		}
	}
}

// apply renders one event. It runs on the UI goroutine.
func (s *Studio) apply(w *training.Worker, ev training.Event) {
	if w != s.worker {
		return
	}
	switch e := ev.(type) {
	case training.ProgressEvent:
		s.step = e.Step
		for _, p := range e.Points {
			s.steps = append(s.steps, p.Step)
			for i, n := range e.LossNames {
				s.history[n] = append(s.history[n], p.Losses[i])
			}
			if p.LR > 0 {
				s.lrSteps, s.lrValues = append(s.lrSteps, p.Step), append(s.lrValues, p.LR)
			}
		}
		if len(e.Points) > 0 {
			for _, n := range e.LossNames {
				s.chart.SetSeries(n, s.steps, s.history[n])
			}
			if len(s.lrSteps) > 0 {
				s.lrChart.SetSeries("learning rate", s.lrSteps, s.lrValues)
			}
		}
		if e.Total > 0 {
			s.progress.SetValue(float64(e.Step) / float64(e.Total))
		}
		text := progressText(e)
		if !s.runStart.IsZero() {
			text += " · elapsed " + time.Since(s.runStart).Round(time.Second).String()
		}
		s.status.SetText(text)
	case training.PreviewEvent:
		if s.scrubLive {
			s.grid.SetImage(e.Grid)
		}
		s.refreshScrubber()
		if e.Aux != nil {
			s.aux.SetImage(e.Aux)
		} else {
			s.aux.SetImage(nil)
		}
		s.auxTitle.SetText(e.AuxTitle)
	case training.StateEvent:
		s.updateControls()
	case training.EvalEvent:
		s.showPeriodicEval(e)
	case training.CheckpointEvent:
		if e.Err != nil {
			s.writeFailed("checkpoint", e.Step, e.Err, e.Paused)
		}
	case training.WriteErrorEvent:
		s.writeFailed(e.What, e.Step, e.Err, e.Paused)
	case training.DoneEvent:
		s.worker = nil
		s.step = e.Step
		if s.writeDialog != nil {
			s.writeDialog.Hide()
			s.writeDialog = nil
		}
		if e.Err != nil {
			if training.Diverged(e.Err) {
				// The weights may be half-updated: offer the last checkpoint.
				s.diverged(e.Step, e.Err)
			} else {
				s.showError(e.Err)
			}
		} else {
			s.status.SetText(fmt.Sprintf(lang.L("Stopped at step %d. Checkpoint in %s"), e.Step, filepath.Join(s.runDir, training.CkptFolder)))
		}
		s.scrubLive = true
		s.refreshScrubber()
		s.notifyDone(e.Step, e.Err)
		s.updateControls()
	}
}

func progressText(e training.ProgressEvent) string {
	var b strings.Builder
	if e.Total > 0 {
		fmt.Fprintf(&b, "Step %d / %d", e.Step, e.Total)
	} else {
		fmt.Fprintf(&b, "Step %d", e.Step)
	}
	fmt.Fprintf(&b, " · epoch %d", e.Epoch+1)
	if e.StepsPerSec > 0 {
		fmt.Fprintf(&b, " · %.1f steps/s", e.StepsPerSec)
	}
	if e.ETA > 0 {
		fmt.Fprintf(&b, " · ETA %s", e.ETA.Round(time.Second))
	}
	if n := len(e.Points); n > 0 {
		for i, name := range e.LossNames {
			fmt.Fprintf(&b, " · %s %.3f", name, e.Points[n-1].Losses[i])
		}
	}
	return b.String()
}

// TogglePause pauses a running worker or resumes a paused one.
func (s *Studio) TogglePause() {
	if s.worker == nil {
		return
	}
	if s.worker.State() == training.Paused {
		s.worker.Resume()
		s.status.SetText(lang.L("Resuming …"))
	} else {
		s.worker.Pause()
		s.status.SetText(lang.L("Pausing …"))
	}
}

// Stop ends the run; the worker writes a checkpoint and sends DoneEvent.
func (s *Studio) Stop() {
	if s.worker == nil {
		return
	}
	s.stopBtn.Disable()
	s.pauseBtn.Disable()
	s.status.SetText(lang.L("Stopping and writing a checkpoint …"))
	w := s.worker
	go w.Stop()
}

// NewModel discards the current model so the next Train builds a new one.
func (s *Studio) NewModel() {
	if s.worker != nil || s.model == nil {
		return
	}
	s.model.Close()
	s.model, s.step = nil, 0
	s.grid.SetImage(nil)
	s.aux.SetImage(nil)
	s.auxTitle.SetText("")
	s.chart.Clear()
	s.progress.SetValue(0)
	s.status.SetText(lang.L("New model: change the settings and press Train."))
	s.updateControls()
}

// withModel runs f with the current model off the UI goroutine: through the
// worker while one runs (it owns the model), directly otherwise.
func (s *Studio) withModel(f func(models.Model) error, done func(error)) {
	m, w := s.model, s.worker
	go func() {
		var err error
		if w != nil {
			w.Do(func(m models.Model) { err = f(m) })
		} else {
			err = f(m)
		}
		s.do(func() {
			if done != nil {
				done(err)
			}
		})
	}()
}

// ExportGallery writes 64 samples (grid and single PNGs) into dir. done, if
// set, gets the result on the UI goroutine.
func (s *Studio) ExportGallery(dir string, done func(*training.Gallery, error)) {
	if s.model == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	bar := widget.NewProgressBar()
	bar.Hide() // shown once a diffusion chain reports
	busy := widget.NewProgressBarInfinite()
	prog := dialog.NewCustom(lang.L("Exporting gallery"), lang.L("Cancel"), container.NewVBox(busy, bar), s.win)
	prog.SetOnClosed(cancel)
	prog.Show()
	s.exportCancel = cancel
	progress := func(done, total int) {
		s.do(func() {
			busy.Hide()
			bar.Show()
			bar.SetValue(float64(done) / float64(total))
		})
	}
	var g *training.Gallery
	seed := uint64(time.Now().UnixNano())
	info := training.CheckpointInfo{Step: s.step, Seed: s.seed}
	if s.data != nil {
		info.Dataset = s.data.Source
	}
	w, favs := s.worker, s.favouritesDir()
	s.withModel(func(m models.Model) error {
		if w != nil {
			info = w.Info()
		}
		var err error
		g, err = training.ExportModelGallery(ctx, dir, m, info, seed, 64, progress)
		if err == nil {
			_, err = training.CopyFavourites(favs, filepath.Join(dir, training.FavouritesDir))
		}
		return err
	}, func(err error) {
		cancelled := errors.Is(err, context.Canceled)
		s.exportCancel = nil
		prog.Hide()
		cancel()
		switch {
		case cancelled:
			g = nil
			s.status.SetText(lang.L("Export cancelled."))
		case err != nil:
			s.showError(err)
		default:
			s.status.SetText(fmt.Sprintf(lang.L("Exported %s and %d images"), g.Grid, len(g.Images)))
		}
		if done != nil {
			done(g, err)
		}
	})
}

// SaveCheckpoint writes the current model to path.
func (s *Studio) SaveCheckpoint(path string, done func(error)) {
	if s.model == nil {
		return
	}
	if filepath.Ext(path) == "" {
		path += ".safetensors"
	}
	info := training.CheckpointInfo{Step: s.step, Seed: s.seed}
	if s.data != nil {
		info.Dataset = s.data.Source
	}
	w := s.worker
	s.withModel(func(m models.Model) error {
		if w != nil {
			return w.SaveCheckpoint(path)
		}
		return training.SaveCheckpoint(path, m, info)
	}, func(err error) {
		if err != nil {
			s.showError(err)
		} else {
			s.status.SetText(lang.L("Saved checkpoint ") + path)
		}
		if done != nil {
			done(err)
		}
	})
}

// LoadCheckpoint replaces the current model with the one in path; Train
// then continues it, and Export samples from it.
func (s *Studio) LoadCheckpoint(path string, done func(error)) { s.loadCheckpointLR(path, 1, done) }

// loadCheckpointLR loads a checkpoint with its learning rates times f.
// A checkpoint inside a run folder brings the run with it: its history
// fills the charts and the preview scrubber, and Train continues that run.
func (s *Studio) loadCheckpointLR(path string, f float64, done func(error)) {
	if s.worker != nil {
		return
	}
	s.status.SetText(lang.L("Loading ") + path + " …")
	go func() {
		ck, err := training.LoadCheckpointLR(path, f)
		run := runOfCheckpoint(path)
		var hist runHistory
		if err == nil && run != "" {
			hist, _ = readRunHistory(run, ck.Info.Step, ck.Model.LossNames())
		}
		var grid *image.RGBA
		if err == nil {
			// The live preview's grid and noise (16 images for the U-Net,
			// whose sampler is slow, instead of 64 in 20 s).
			m := ck.Model
			if grid, _, _, err = training.Preview(m, training.PreviewNoise(m, training.PreviewSeed(ck.Info.Seed)), nil); err != nil {
				m.Close()
			}
		}
		s.do(func() {
			if err != nil {
				s.showError(err)
			} else {
				if s.model != nil {
					s.model.Close()
				}
				s.model, s.step, s.seed = ck.Model, ck.Info.Step, ck.Info.Seed
				s.runDir = run // "": a run folder is made when training starts
				s.showHistory(hist)
				s.form.show(ck.Model, ck.Info.Seed)
				if r := ck.Info.Run; r != nil && run != "" {
					if r.Steps > ck.Info.Step {
						s.form.steps.entry.SetText(fmt.Sprint(r.Steps))
					}
					if r.PreviewEvery > 0 {
						s.form.preview.entry.SetText(fmt.Sprint(r.PreviewEvery))
					}
					s.form.flip.SetChecked(r.Flip)
				}
				s.grid.SetImage(grid)
				s.scrubLive = true
				s.refreshScrubber()
				msg := fmt.Sprintf("Loaded %s (step %d). Train continues it; Export samples from it.", filepath.Base(path), ck.Info.Step)
				if run != "" {
					msg = fmt.Sprintf("Loaded run %s at step %d with its history. Resume run continues it.", filepath.Base(run), ck.Info.Step)
				}
				if f != 1 {
					msg = fmt.Sprintf("Rolled back to step %d with the learning rate ×%g.", ck.Info.Step, f)
				}
				s.status.SetText(msg)
				s.updateControls()
			}
			if done != nil {
				done(err)
			}
		})
	}()
}

// Close stops a run (writing its checkpoint) and releases the model.
func (s *Studio) Close() {
	if s.worker != nil {
		s.worker.Stop()
	}
	s.explore.close()
	if s.model != nil {
		s.model.Close()
	}
	if s.evaluator != nil {
		s.evaluator.Close()
	}
}
