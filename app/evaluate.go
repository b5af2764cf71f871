package app

import (
	"context"
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/widgets"
)

// currentModel is the Evaluate tab's choice of the model in the Train tab.
const currentModel = "Current model (Train tab)"

// evalNs are the sample counts offered; FID is biased at small N, so the
// N is shown beside every number.
var evalNs = []string{"1000", "2000", "5000", "10000"}

// evalPanel is the Evaluate tab: pick a model, N and seed, score it, read
// metric cards beside the real-data reference, the class histogram and the
// samples closest to the training set.
type evalPanel struct {
	source    *widget.Select
	pickBtn   *widget.Button
	n         *widget.Select
	seed      *widget.Entry
	runBtn    *widget.Button
	cancelBtn *widget.Button
	trainEv   *widget.Button // trains an evaluator on a data set that is not MNIST
	bar       *widget.ProgressBar
	status    *widget.Label
	cards     []*widgets.MetricCard
	hist      *widgets.BarChart
	pairs     *widgets.SampleGrid
	pairsNote *widget.Label
	content   fyne.CanvasObject

	cancel context.CancelFunc
	last   *training.Report // the latest result
	real   *training.Report // its reference row (nil when there is none)

	mu   sync.Mutex
	refs map[string]*training.Report // reference rows by evaluator, N and seed
}

func (s *Studio) buildEvalPanel() *evalPanel {
	p := &evalPanel{refs: map[string]*training.Report{}}
	p.source = widget.NewSelect([]string{tr(currentModel)}, nil)
	p.source.SetSelected(tr(currentModel))
	p.pickBtn = widget.NewButtonWithIcon(lang.L("Checkpoint…"), theme.FolderOpenIcon(), func() {
		pickOpenFile(s.win, lang.L("Evaluate checkpoint"), lang.L("Checkpoints"), []string{".safetensors"}, func(path string) {
			p.addSource(path)
			p.source.SetSelected(path)
		})
	})
	p.n = widget.NewSelect(evalNs, nil)
	p.n.SetSelected("2000")
	p.seed = widget.NewEntry()
	p.seed.SetText("1")
	p.runBtn = widget.NewButtonWithIcon(lang.L("Evaluate"), theme.MediaPlayIcon(), func() { s.evaluateSelected() })
	p.runBtn.Importance = widget.HighImportance
	p.cancelBtn = widget.NewButtonWithIcon(lang.L("Cancel"), theme.CancelIcon(), func() {
		if p.cancel != nil {
			p.cancel()
		}
	})
	p.cancelBtn.Disable()
	p.trainEv = widget.NewButtonWithIcon(lang.L("Train evaluator"), theme.ComputerIcon(), func() { s.TrainEvaluator(nil) })
	p.bar = widget.NewProgressBar()
	p.status = widget.NewLabel(lang.L("Pick a model and press Evaluate. Each number is computed on N samples with the evaluator named under it, beside the real test set scored the same way."))
	p.status.Wrapping = fyne.TextWrapWord
	grid := container.NewGridWithColumns(3)
	for _, m := range training.Metrics {
		c := widgets.NewMetricCard(tr(m.Title), tr(m.Help))
		p.cards = append(p.cards, c)
		grid.Add(c)
	}
	p.hist = widgets.NewBarChart()
	p.hist.SetPlaceholder(lang.L("The class histogram of the samples appears here"))
	p.pairs = widgets.NewSampleGrid()
	p.pairs.SetPlaceholder(lang.L("The samples closest to a training image appear here"))
	p.pairsNote = widget.NewLabel(lang.L("Top row: the samples nearest to the training set; bottom row: their nearest training image."))
	p.pairsNote.Wrapping = fyne.TextWrapWord
	form := container.NewBorder(nil, nil, widget.NewLabel(lang.L("Model")), p.pickBtn, p.source)
	opts := container.NewHBox(widget.NewLabel(lang.L("N")), p.n, widget.NewLabel(lang.L("Seed")), container.NewGridWrap(fyne.NewSize(90, p.seed.MinSize().Height), p.seed), p.runBtn, p.cancelBtn, widget.NewSeparator(), p.trainEv)
	top := container.NewVBox(form, opts, p.bar, p.status)
	histCard := widget.NewCard(lang.L("Classes"), lang.L("share of samples by predicted class, beside the real data"), p.hist)
	pairCard := widget.NewCard(lang.L("Novelty"), "", container.NewBorder(p.pairsNote, nil, nil, nil, p.pairs))
	side := container.NewVScroll(container.NewVBox(histCard, pairCard))
	split := container.NewHSplit(container.NewVScroll(grid), side)
	split.Offset = 0.66
	p.content = container.NewBorder(top, nil, nil, nil, split)
	return p
}

// addSource adds a checkpoint to the model choices once.
func (p *evalPanel) addSource(path string) {
	for _, o := range p.source.Options {
		if o == path {
			return
		}
	}
	p.source.Options = append(p.source.Options, path)
	p.source.Refresh()
}

// refreshEvalSources lists the checkpoints of the open project's runs and
// of the current run.
func (s *Studio) refreshEvalSources() {
	for _, c := range s.runCheckpoints() {
		s.eval.addSource(c)
	}
}

// runCheckpoints are the checkpoints of the open project's runs and of the
// current run.
func (s *Studio) runCheckpoints() []string {
	var dirs, out []string
	if s.proj != nil {
		for _, r := range s.proj.Runs {
			dirs = append(dirs, s.proj.RunDir(r.ID))
		}
	}
	if s.runDir != "" {
		dirs = append(dirs, s.runDir)
	}
	for _, d := range dirs {
		cks, err := training.ListCheckpoints(filepath.Join(d, "checkpoints"))
		if err == nil {
			out = append(out, cks...)
		}
	}
	return out
}

// evaluateSelected reads the tab's choices and starts Evaluate.
func (s *Studio) evaluateSelected() {
	p := s.eval
	n, _ := strconv.Atoi(p.n.Selected)
	seed, err := strconv.ParseUint(p.seed.Text, 10, 64)
	if err != nil {
		s.showError(fmt.Errorf(lang.L("the seed must be a whole number ≥ 0, not %q"), p.seed.Text))
		return
	}
	src := p.source.Selected
	if src == tr(currentModel) {
		src = ""
	}
	s.Evaluate(src, n, seed, nil)
}

// Evaluate scores n samples of the checkpoint at path ("" = the current
// model, through the worker while one trains) drawn with seed, off the UI
// goroutine, with the built-in evaluator, against the training set (the
// current data set, or MNIST), and the real test set as the reference row.
// done, when set, gets the result on the UI goroutine.
func (s *Studio) Evaluate(path string, n int, seed uint64, done func(*training.Report, error)) {
	p := s.eval
	if p.cancel != nil {
		return
	}
	if path == "" && s.model == nil {
		s.showError(errors.New(lang.L("there is no current model: train one, load a checkpoint, or pick a checkpoint to evaluate")))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.runBtn.Disable()
	p.cancelBtn.Enable()
	p.bar.SetValue(0)
	p.status.SetText(lang.L("Evaluating…"))
	data, model, w := s.data, s.model, s.worker
	progress := func(stage string, done, total int) {
		// sampling, features, metrics: thirds of the bar
		base := map[string]float64{"sampling": 0, "features": 1, "metrics": 2}[stage]
		v := (base + float64(done)/float64(max(1, total))) / 3
		s.do(func() {
			p.bar.SetValue(v)
			p.status.SetText(fmt.Sprintf(lang.L("%s %d/%d"), stage, done, total))
		})
	}
	go func() {
		r, real, err := s.runEvaluation(ctx, path, model, w, data, n, seed, progress)
		s.do(func() {
			cancel()
			p.cancel = nil
			p.runBtn.Enable()
			p.cancelBtn.Disable()
			if err != nil {
				p.bar.SetValue(0)
				if errors.Is(err, context.Canceled) {
					p.status.SetText(lang.L("Evaluation cancelled."))
				} else {
					p.status.SetText(lang.L("Evaluation failed: ") + firstLine(err.Error()))
					s.showError(err)
				}
			} else {
				p.bar.SetValue(1)
				s.showReport(r, real)
				s.recordEval(path, r)
				if real != nil && !slices.Contains(s.compare.rows, real) {
					s.compare.add(real) // the real-data row, once per evaluator, N and seed
				}
			}
			if done != nil {
				done(r, err)
			}
		})
	}()
}

// runEvaluation does Evaluate's work off the UI goroutine.
func (s *Studio) runEvaluation(ctx context.Context, path string, model models.Model, w *training.Worker, data *project.Dataset,
	n int, seed uint64, progress func(string, int, int)) (*training.Report, *training.Report, error) {
	mnist := data == nil || data.Source == project.MNISTSource
	var ev *training.Evaluator
	var err error
	if mnist {
		ev, err = training.MNISTEvaluator()
		if err == nil && data == nil {
			data, err = project.LoadMNIST()
		}
	} else {
		// another data set: its own evaluator, trained in this tab
		ev, err = training.LoadEvaluator(s.evaluatorPath(data))
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf(lang.L("%s needs an evaluator of its own: press \"Train evaluator\" (a classifier of its class sub-folders, or an autoencoder when it has none) — the built-in one knows MNIST digits only"), data.Name)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	defer ev.Close()
	opts := training.EvalOptions{N: n, Seed: seed, Evaluator: ev, Train: data, Progress: progress}
	var r *training.Report
	var source string
	if path != "" {
		ck, err := training.LoadCheckpoint(path)
		if err != nil {
			return nil, nil, err
		}
		defer ck.Model.Close()
		if r, err = training.EvaluateModel(ctx, ck.Model, nil, opts); err != nil {
			return nil, nil, err
		}
		// the same words as genstudio eval
		source = fmt.Sprintf("checkpoint %s (%s, step %d)", path, ck.Model.Family(), ck.Info.Step)
		r.Step = ck.Info.Step
	} else {
		var images []float32
		var shape models.ImageShape
		var name string
		var step int
		sample := func(m models.Model) {
			shape, name, step = m.Shape(), training.ModelName(m), m.OptimizerStep()
			images, err = training.SampleForEval(ctx, m, nil, n, seed, progress)
		}
		if w != nil {
			w.Do(sample)
		} else {
			sample(model)
		}
		if err != nil {
			return nil, nil, err
		}
		if r, err = training.EvaluateImages(ctx, images, shape, opts); err != nil {
			return nil, nil, err
		}
		r.Model, r.Step = name, step
		source = fmt.Sprintf("current model (%s, step %d)", name, step)
	}
	r.Source = source
	if !mnist {
		return r, nil, nil // no held-out real set to score beside it
	}
	real, err := s.referenceRow(ctx, ev, data, n, seed)
	return r, real, err
}

// referenceRow is the real MNIST test set scored like the samples (cached).
func (s *Studio) referenceRow(ctx context.Context, ev *training.Evaluator, train *project.Dataset, n int, seed uint64) (*training.Report, error) {
	p := s.eval
	key := fmt.Sprintf("%s/%d/%d", ev.ID(), n, seed)
	p.mu.Lock()
	r := p.refs[key]
	p.mu.Unlock()
	if r != nil {
		return r, nil
	}
	test, err := project.LoadMNISTTest()
	if err != nil {
		return nil, err
	}
	opts := training.EvalOptions{N: min(n, test.Len()), Seed: seed, Evaluator: ev, Train: train}
	shape := models.ImageShape{Width: test.Width, Height: test.Height, Channels: test.C()}
	if r, err = training.EvaluateImages(ctx, training.Pixels01(test.Pixels[:opts.N*test.ImageSize()]), shape, opts); err != nil {
		return nil, fmt.Errorf("reference row: %w", err)
	}
	r.Source = "real test set (" + project.MNISTTestSource + ")"
	p.mu.Lock()
	p.refs[key] = r
	p.mu.Unlock()
	return r, nil
}

// showReport fills the cards, the histogram and the novelty pairs.
func (s *Studio) showReport(r, real *training.Report) {
	p := s.eval
	p.last, p.real = r, real
	caption := fmt.Sprintf(lang.L("N = %d · %s · seed %d"), r.N, r.Evaluator, r.Seed)
	for i, m := range training.Metrics {
		c := p.cards[i]
		if m.Std != nil {
			c.SetValueStd(m.Value(r), m.Std(r))
		} else {
			c.SetValue(m.Value(r))
		}
		switch {
		case real != nil:
			c.SetReferenceLabel(lang.L("real test set"))
			c.SetReference(m.Value(real))
		case m.Key == "ms_ssim":
			c.SetReferenceLabel(lang.L("real pairs"))
			c.SetReference(r.MSSSIMReal)
		default:
			c.SetReference(math.NaN())
		}
		c.SetCaption(caption)
	}
	labels := make([]string, len(r.ClassHistogram))
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	p.hist.SetData(labels, []string{lang.L("samples"), lang.L("real data")}, [][]float64{r.ClassHistogram, r.RealHistogram})
	p.pairs.SetImage(pairsImage(r))
	if len(r.Closest) > 0 {
		p.pairsNote.SetText(fmt.Sprintf(lang.L("Top: the %d samples nearest to a training image; bottom: that image. Closest RMS distance %.3f, median over all samples %.3f; %.1f %% are near-copies (RMS < %.2f)."),
			len(r.Closest), r.Closest[0].RMS, r.NoveltyMedian, 100*r.Memorized, r.MemorizedThreshold))
	}
	p.status.SetText(fmt.Sprintf(lang.L("%s: FID %s, IS %s, %d/%d classes, in %.1f s."), r.Source,
		training.FormatNumber(r.FID), training.FormatNumber(r.IS), r.ClassCoverage, r.Classes, r.Seconds))
}

// pairsImage lays the closest pairs out in two rows with a gutter.
func pairsImage(r *training.Report) *image.RGBA {
	if len(r.Closest) == 0 {
		return nil
	}
	shape := r.Shape
	cols := len(r.Closest)
	w, h := shape.Width, shape.Height
	img := image.NewRGBA(image.Rect(0, 0, cols*(w+2)+2, 2*(h+2)+2))
	for i := range img.Pix {
		img.Pix[i] = 0x40
	}
	for i, pr := range r.Closest {
		for row, px := range [][]float32{pr.Sample, pr.Train} {
			one := training.SampleImage(px, 0, shape)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					img.Set(2+i*(w+2)+x, 2+row*(h+2)+y, one.At(x, y))
				}
			}
		}
	}
	return img
}

// recordEval appends r to the evaluations file of its run (the folder
// above the checkpoint's, or the current run's) and to the Compare view.
func (s *Studio) recordEval(path string, r *training.Report) {
	dir := s.runDir
	if path != "" {
		dir = filepath.Dir(filepath.Dir(path))
		if filepath.Base(filepath.Dir(path)) != "checkpoints" {
			dir = ""
		}
	}
	if dir != "" {
		if _, err := os.Stat(dir); err == nil {
			if err := training.AppendEval(filepath.Join(dir, training.EvalsFile), r); err != nil {
				s.showError(err)
			}
		}
	}
	s.compare.add(r)
}

// periodicEvaluator is the evaluator of the "Evaluate every" field: the
// built-in MNIST one, for MNIST data only.
func (s *Studio) periodicEvaluator(data *project.Dataset) (*training.Evaluator, error) {
	if data == nil || data.Source != project.MNISTSource {
		return nil, errors.New(lang.L(`"Evaluate every" needs the MNIST data set: the built-in evaluator knows digits only (set it to 0 for other data)`))
	}
	if s.evaluator == nil {
		ev, err := training.MNISTEvaluator()
		if err != nil {
			return nil, err
		}
		s.evaluator = ev
	}
	return s.evaluator, nil
}

// showPeriodicEval charts a periodic evaluation's FID over the steps and
// adds it to the Compare view.
func (s *Studio) showPeriodicEval(e training.EvalEvent) {
	if e.Err != nil {
		s.status.SetText(fmt.Sprintf(lang.L("Evaluation at step %d failed: %s"), e.Step, firstLine(e.Err.Error())))
		return
	}
	r := e.Report
	s.evalSteps = append(s.evalSteps, e.Step)
	s.evalFID = append(s.evalFID, r.FID)
	s.evalChart.SetSeries(fmt.Sprintf("FID (N = %d)", r.N), s.evalSteps, s.evalFID)
	s.compare.add(r)
	s.status.SetText(fmt.Sprintf(lang.L("Step %d evaluated: FID %s, IS %s, %d/%d classes, recall %s (N = %d)"), e.Step,
		training.FormatNumber(r.FID), training.FormatNumber(r.IS), r.ClassCoverage, r.Classes, training.FormatNumber(r.Recall), r.N))
}

// evaluatorPath is where the evaluator of data is cached: in the project's
// cache folder, or beside the runs without a project, named by the data's
// fingerprint (so it is retrained when the data change).
func (s *Studio) evaluatorPath(data *project.Dataset) string {
	dir := filepath.Join(filepath.Dir(s.runsFolder()), "evaluators")
	if s.proj != nil {
		dir = s.proj.CacheDir()
	}
	return filepath.Join(dir, "evaluator-"+training.DataFingerprint(data)+".safetensors")
}

// TrainEvaluator trains an evaluator on the current data set — a
// classifier when it has at least two class sub-folders, an autoencoder
// otherwise; a tenth of it is held out for the accuracy or the
// reconstruction error — off the UI goroutine, with the progress bar and Cancel, and
// caches it for Evaluate. done, when set, gets the result on the UI
// goroutine.
func (s *Studio) TrainEvaluator(done func(*training.Evaluator, error)) {
	p := s.eval
	fail := func(err error) {
		s.showError(err)
		if done != nil {
			done(nil, err)
		}
	}
	switch {
	case p.cancel != nil:
		return
	case s.data == nil:
		fail(errors.New(lang.L("load a data set first")))
		return
	case s.data.Source == project.MNISTSource:
		fail(errors.New(lang.L("MNIST has its evaluator built in")))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.runBtn.Disable()
	p.trainEv.Disable()
	p.cancelBtn.Enable()
	p.bar.SetValue(0)
	data, path := s.data, s.evaluatorPath(s.data)
	tr := training.DefaultEvaluatorTraining()
	tr.Name = data.Name
	tr.Batch = min(tr.Batch, max(1, data.Len()*9/10/4))
	tr.Progress = func(step, steps int, loss float64) {
		s.do(func() {
			p.bar.SetValue(float64(step) / float64(steps))
			p.status.SetText(fmt.Sprintf(lang.L("Training the evaluator on %s: step %d/%d, loss %.4f"), data.Name, step, steps, loss))
		})
	}
	go func() {
		train, test := training.HoldOut(data, 10)
		ev, err := training.TrainEvaluator(ctx, train, test, tr)
		if err == nil {
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				err = ev.Save(path)
			}
		}
		s.do(func() {
			cancel()
			p.cancel = nil
			p.runBtn.Enable()
			p.trainEv.Enable()
			p.cancelBtn.Disable()
			switch {
			case errors.Is(err, context.Canceled):
				p.status.SetText(lang.L("Evaluator training cancelled."))
			case err != nil:
				p.status.SetText(lang.L("Evaluator training failed: ") + firstLine(err.Error()))
				s.showError(err)
			default:
				p.bar.SetValue(1)
				quality := fmt.Sprintf("%.1f %% accuracy", 100*ev.Info.Accuracy)
				if ev.Classes() == 0 {
					quality = fmt.Sprintf(lang.L("an autoencoder (no classes), reconstruction MSE %.4f"), ev.Info.TestMSE)
				}
				p.status.SetText(fmt.Sprintf(lang.L("Evaluator %s: %s on %d held-out images, %.0f s. Evaluate now scores %s with it."),
					ev.ID(), quality, ev.Info.TestN, ev.Info.Seconds, data.Name))
			}
			if done != nil {
				done(ev, err)
			}
		})
	}()
}

// runsFolder is where runs without a project go.
func (s *Studio) runsFolder() string {
	if s.runsDir != "" {
		return s.runsDir
	}
	return runsRoot()
}
