package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"image"
	"image/color"
	"math/rand/v2"
	"path/filepath"
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

// lane runs jobs one at a time on its own goroutine. A new job cancels
// the one running (through its context) and replaces any still waiting:
// the newest request wins, as a slider being dragged needs.
type lane struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	next   func()
	wake   chan struct{}
}

func newLane() *lane {
	l := &lane{wake: make(chan struct{}, 1)}
	go func() {
		for range l.wake {
			l.mu.Lock()
			job := l.next
			l.next = nil
			l.mu.Unlock()
			if job != nil {
				job()
			}
		}
	}()
	return l
}

// submit queues job, cancelling the running one and dropping a waiting one.
func (l *lane) submit(job func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	if l.cancel != nil {
		l.cancel()
	}
	l.cancel = cancel
	l.next = func() { job(ctx); cancel() }
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// stop cancels the running job and drops a waiting one.
func (l *lane) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
	l.next = nil
}

// exploreInfo is what the window knows of the model the Explore tab holds.
type exploreInfo struct {
	path                          string
	family, arch                  string
	step                          int
	shape                         models.ImageShape
	truncates, tempered, diffuses bool
	t                             int // a diffusion model's T
	classes                       int // a conditional model's classes (0: none)
	def                           training.SamplerSettings
}

// The colours of the two picked samples.
var (
	pickA = color.RGBA{240, 160, 40, 255}
	pickB = color.RGBA{60, 170, 240, 255}
)

// explorePanel is the Explore tab: a trained model's samples from a seed,
// redrawn live as the sampler settings move, with interpolation,
// variations, favourites and each sample's nearest training images.
type explorePanel struct {
	source             *widget.Select
	pickBtn            *widget.Button
	seed               *widget.Entry
	prevBtn, nextBtn   *widget.Button
	randBtn            *widget.Button
	n                  *widget.Select
	psi, temp          *widget.Slider
	steps, eta         *widget.Slider
	guidance           *widget.Slider
	guidanceVal        *widget.Label
	class              *widget.Select
	condRows           fyne.CanvasObject
	sampler            *widget.Select
	psiRow, tempRow    fyne.CanvasObject
	diffRows           fyne.CanvasObject
	psiVal, tempVal    *widget.Label
	stepsVal, etaVal   *widget.Label
	bar                *widget.ProgressBar
	status             *widget.Label
	grid               *widgets.SampleGrid
	strip              *widgets.SampleGrid
	stripNote          *widget.Label
	frames             *widget.Select
	distance           *widget.Slider
	interpBtn, varyBtn *widget.Button
	savePNG, saveGIF   *widget.Button
	pinBtn             *widget.Button
	favs               *widgets.SampleGrid
	nearest            *widgets.SampleGrid
	nearestNote        *widget.Label
	content            fyne.CanvasObject

	// UI goroutine state
	info     *exploreInfo
	applying bool                 // widgets being set from the model: no redraws
	gridProv *training.Provenance // the grid shown
	gridImg  *image.RGBA          // unmarked
	a, b     int                  // picked samples (-1: none)
	stripP   *training.Provenance // the strip shown
	stripX   []float32
	varSeed  uint64

	// the explorer's side: the loaded model, used by the lanes in turn
	mu     sync.Mutex
	ck     *training.Checkpoint
	ckPath string                  // the file ck came from
	index  *training.TrainingIndex // nearest training images (built on first use)
	gridL  *lane
	// stopBtn cancels the drawing in progress (a diffusion grid takes a while).
	stopBtn *widget.Button
	stripL  *lane // interpolations and variations
	nearL   *lane // nearest training images
}

var exploreNs = []string{"16", "36", "64"}

func (s *Studio) buildExplorePanel() *explorePanel {
	p := &explorePanel{a: -1, b: -1, gridL: newLane(), stripL: newLane(), nearL: newLane(), varSeed: 1}
	s.explore = p // the widgets' callbacks reach it through s
	p.source = widget.NewSelect(nil, func(path string) { s.exploreOpen(path) })
	p.source.PlaceHolder = "(a checkpoint of this project's runs)"
	p.pickBtn = widget.NewButtonWithIcon(lang.L("Checkpoint…"), theme.FolderOpenIcon(), func() {
		pickOpenFile(s.win, lang.L("Explore checkpoint"), lang.L("Checkpoints"), []string{".safetensors"}, func(path string) {
			addOption(p.source, path)
			p.source.SetSelected(path)
		})
	})
	p.seed = widget.NewEntry()
	p.seed.SetText("1")
	p.seed.OnSubmitted = func(string) { s.exploreRedraw() }
	step := func(d int64) func() {
		return func() {
			v, _ := strconv.ParseInt(p.seed.Text, 10, 64)
			p.seed.SetText(strconv.FormatInt(max(0, v+d), 10))
			s.exploreRedraw()
		}
	}
	p.prevBtn = widget.NewButtonWithIcon("", theme.NavigateBackIcon(), step(-1))
	p.nextBtn = widget.NewButtonWithIcon("", theme.NavigateNextIcon(), step(1))
	p.randBtn = widget.NewButtonWithIcon(lang.L("Random"), theme.ViewRefreshIcon(), func() {
		p.seed.SetText(strconv.FormatUint(rand.Uint64N(1_000_000), 10))
		s.exploreRedraw()
	})
	p.n = widget.NewSelect(exploreNs, func(string) { s.exploreRedraw() })
	p.n.SetSelected("36")
	slider := func(lo, hi, stepv float64, val **widget.Label) *widget.Slider {
		sl := widget.NewSlider(lo, hi)
		sl.Step = stepv
		*val = widget.NewLabel("")
		sl.OnChanged = func(float64) { s.exploreSliderMoved() }
		return sl
	}
	p.psi = slider(0.05, 1, 0.05, &p.psiVal)
	p.temp = slider(0.05, 2, 0.05, &p.tempVal)
	p.steps = slider(1, 1000, 1, &p.stepsVal)
	p.eta = slider(0, 1, 0.05, &p.etaVal)
	p.guidance = slider(0, 10, 0.25, &p.guidanceVal)
	p.class = widget.NewSelect(nil, func(string) { s.exploreSliderMoved() })
	p.sampler = widget.NewSelect([]string{models.SamplerDDIM, models.SamplerDDPM}, func(string) { s.exploreSliderMoved() })
	row := func(label string, sl *widget.Slider, val *widget.Label) fyne.CanvasObject {
		return container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(110, 36), widget.NewLabel(label)),
			container.NewGridWrap(fyne.NewSize(60, 36), val), sl)
	}
	p.psiRow = row(lang.L("Truncation ψ"), p.psi, p.psiVal)
	p.tempRow = row(lang.L("Temperature"), p.temp, p.tempVal)
	p.diffRows = container.NewVBox(
		container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(110, 36), widget.NewLabel(lang.L("Sampler"))), nil, p.sampler),
		row(lang.L("Steps"), p.steps, p.stepsVal), row(lang.L("DDIM η"), p.eta, p.etaVal))
	p.condRows = container.NewVBox(row(lang.L("Guidance"), p.guidance, p.guidanceVal),
		container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(110, 36), widget.NewLabel(lang.L("Class"))), nil, p.class))
	p.bar = widget.NewProgressBar()
	p.status = widget.NewLabel(lang.L("Pick a checkpoint: its samples appear here. Click a sample to pick it (A), click another for B."))
	p.status.Wrapping = fyne.TextWrapWord
	p.grid = widgets.NewSampleGrid()
	p.grid.SetPlaceholder(lang.L("Pick a trained model's checkpoint above"))
	p.grid.OnTappedPixel = func(pt image.Point) { s.explorePick(pt) }
	p.strip = widgets.NewSampleGrid()
	p.strip.SetPlaceholder(lang.L("Interpolations and variations appear here"))
	p.stripNote = widget.NewLabel("")
	p.frames = widget.NewSelect([]string{"5", "8", "10", "16"}, nil)
	p.frames.SetSelected("8")
	p.distance = widget.NewSlider(0.05, 1)
	p.distance.Step = 0.05
	p.distance.SetValue(0.3)
	p.interpBtn = widget.NewButton(lang.L("Interpolate A → B"), func() { s.exploreInterpolate() })
	p.varyBtn = widget.NewButton(lang.L("Variations of A"), func() { p.varSeed++; s.exploreVariations() })
	p.savePNG = widget.NewButtonWithIcon(lang.L("Strip PNG…"), theme.DocumentSaveIcon(), func() { s.exploreSaveStrip(false) })
	p.saveGIF = widget.NewButtonWithIcon(lang.L("GIF…"), theme.DocumentSaveIcon(), func() { s.exploreSaveStrip(true) })
	p.pinBtn = widget.NewButtonWithIcon(lang.L("Pin A"), theme.ContentAddIcon(), func() { s.explorePin() })
	p.favs = widgets.NewSampleGrid()
	p.favs.SetPlaceholder(lang.L("Pinned samples appear here"))
	p.nearest = widgets.NewSampleGrid()
	p.nearest.SetPlaceholder(lang.L("Pick a sample to see its nearest training images"))
	for _, g := range []*widgets.SampleGrid{p.strip, p.favs, p.nearest} {
		g.SetMinSide(90)
	}
	p.nearestNote = widget.NewLabel("")
	p.nearestNote.Wrapping = fyne.TextWrapWord

	model := container.NewBorder(nil, nil, widget.NewLabel(lang.L("Model")), p.pickBtn, p.source)
	seedRow := container.NewHBox(widget.NewLabel(lang.L("Seed")), container.NewGridWrap(fyne.NewSize(110, p.seed.MinSize().Height), p.seed),
		p.prevBtn, p.nextBtn, p.randBtn, widget.NewSeparator(), widget.NewLabel(lang.L("Samples")), p.n)
	knobs := container.NewGridWithColumns(2, container.NewVBox(p.psiRow, p.tempRow, p.condRows), p.diffRows)
	p.stopBtn = widget.NewButtonWithIcon(lang.L("Cancel"), theme.CancelIcon(), func() {
		p.gridL.stop()
		p.stripL.stop()
		p.bar.SetValue(0)
		p.status.SetText(lang.L("Sampling cancelled."))
		p.stripNote.SetText("")
		p.stopBtn.Disable()
	})
	p.stopBtn.Disable()
	top := container.NewVBox(model, seedRow, knobs, container.NewBorder(nil, nil, nil, p.stopBtn, p.bar), p.status)
	pathRow := container.NewGridWithColumns(2,
		container.NewBorder(nil, nil, p.interpBtn, nil, container.NewBorder(nil, nil, widget.NewLabel(lang.L("frames")), nil, p.frames)),
		container.NewBorder(nil, nil, p.varyBtn, nil, container.NewBorder(nil, nil, widget.NewLabel(lang.L("distance")), nil, p.distance)))
	p.stripNote.Wrapping = fyne.TextWrapWord
	saveRow := container.NewHBox(p.savePNG, p.saveGIF)
	stripCard := widget.NewCard(lang.L("Paths"), "", container.NewBorder(container.NewVBox(pathRow, saveRow, p.stripNote), nil, nil, nil, p.strip))
	nearCard := widget.NewCard(lang.L("Nearest training images"), "", container.NewBorder(p.nearestNote, nil, nil, nil, p.nearest))
	favCard := widget.NewCard(lang.L("Favourites"), "", container.NewBorder(p.pinBtn, nil, nil, nil, p.favs))
	side := container.NewVSplit(nearCard, favCard)
	right := container.NewVSplit(stripCard, side)
	split := container.NewHSplit(p.grid, right)
	split.Offset = 0.5
	p.content = container.NewBorder(top, nil, nil, nil, split)
	s.exploreShowKnobs()
	return p
}

// addOption adds an entry to a select once.
func addOption(sel *widget.Select, o string) {
	for _, have := range sel.Options {
		if have == o {
			return
		}
	}
	sel.Options = append(sel.Options, o)
	sel.Refresh()
}

// refreshExploreSources lists the checkpoints of the project's runs.
func (s *Studio) refreshExploreSources() {
	for _, c := range s.runCheckpoints() {
		addOption(s.explore.source, c)
	}
	s.exploreShowFavourites()
}

// exploreShowKnobs shows the sliders the model has.
func (s *Studio) exploreShowKnobs() {
	p := s.explore
	show := func(o fyne.CanvasObject, on bool) {
		if on {
			o.Show()
		} else {
			o.Hide()
		}
	}
	i := p.info
	show(p.psiRow, i != nil && i.truncates)
	show(p.tempRow, i != nil && (i.tempered || i.diffuses))
	show(p.diffRows, i != nil && i.diffuses)
	show(p.condRows, i != nil && i.classes > 0)
	p.guidanceVal.SetText(fmt.Sprintf(lang.L("%.2f"), p.guidance.Value))
	p.psiVal.SetText(fmt.Sprintf(lang.L("%.2f"), p.psi.Value))
	p.tempVal.SetText(fmt.Sprintf(lang.L("%.2f"), p.temp.Value))
	p.stepsVal.SetText(fmt.Sprintf(lang.L("%.0f"), p.steps.Value))
	p.etaVal.SetText(fmt.Sprintf(lang.L("%.2f"), p.eta.Value))
	on := i != nil
	for _, b := range []*widget.Button{p.prevBtn, p.nextBtn, p.randBtn} {
		setEnabled(b, on)
	}
	setEnabled(p.interpBtn, on && p.a >= 0 && p.b >= 0)
	setEnabled(p.varyBtn, on && p.a >= 0)
	setEnabled(p.pinBtn, on && p.a >= 0)
	setEnabled(p.savePNG, p.stripP != nil)
	setEnabled(p.saveGIF, p.stripP != nil && p.stripP.Kind == training.KindStrip)
}

func setEnabled(w fyne.Disableable, on bool) {
	if on {
		w.Enable()
	} else {
		w.Disable()
	}
}

// exploreSettings are the sampler settings the knobs show, for the
// settings the model has.
func (s *Studio) exploreSettings() training.SamplerSettings {
	p, i := s.explore, s.explore.info
	var set training.SamplerSettings
	if i == nil {
		return set
	}
	if i.truncates {
		set.Truncation = p.psi.Value
	}
	if i.tempered || i.diffuses {
		set.Temperature = p.temp.Value
	}
	if i.diffuses {
		eta := p.eta.Value
		set.Sampler, set.Steps, set.Eta = p.sampler.Selected, int(p.steps.Value), &eta
	}
	if i.classes > 0 {
		g := p.guidance.Value
		set.Guidance = &g
		if k := p.class.SelectedIndex(); k > 0 {
			c := k - 1
			set.Class = &c
		}
	}
	return set
}

// exploreSliderMoved redraws for a knob that moved (not while the knobs
// are being set from a newly loaded model).
func (s *Studio) exploreSliderMoved() {
	if s.explore.applying {
		return
	}
	s.exploreShowKnobs()
	s.exploreRedraw()
}

// exploreOpen loads a checkpoint into the Explore tab (off the UI
// goroutine) and draws its grid.
func (s *Studio) exploreOpen(path string) {
	if path == "" {
		return
	}
	p := s.explore
	p.status.SetText(lang.L("Loading ") + path + " …")
	p.gridL.submit(func(ctx context.Context) {
		p.mu.Lock()
		info, err := p.load(path)
		p.mu.Unlock()
		s.do(func() {
			if err != nil {
				p.status.SetText(lang.L("Could not open the checkpoint."))
				s.showError(err)
				return
			}
			p.info = info
			p.a, p.b, p.stripP = -1, -1, nil
			p.applying = true
			d := info.def
			if info.truncates {
				p.psi.SetValue(d.Truncation)
			}
			if d.Temperature != 0 {
				p.temp.SetValue(d.Temperature)
			}
			if info.classes > 0 {
				opts := []string{lang.L("every class")}
				for c := 0; c < info.classes; c++ {
					opts = append(opts, strconv.Itoa(c))
				}
				p.class.SetOptions(opts)
				p.class.SetSelectedIndex(0)
				if d.Guidance != nil {
					p.guidance.SetValue(*d.Guidance)
				}
			}
			if info.diffuses {
				p.steps.Max = float64(info.t)
				p.steps.SetValue(float64(max(1, d.Steps)))
				p.sampler.SetSelected(d.Sampler)
				if d.Eta != nil {
					p.eta.SetValue(*d.Eta)
				}
			}
			p.applying = false
			s.exploreShowKnobs()
			s.exploreRedraw()
		})
	})
}

// load replaces the explorer's model by the checkpoint at path (p.mu held).
func (p *explorePanel) load(path string) (*exploreInfo, error) {
	ck, err := training.LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	if p.ck != nil {
		p.ck.Model.Close()
	}
	p.ck, p.ckPath = ck, path
	m := ck.Model
	i := &exploreInfo{path: path, family: m.Family(), step: ck.Info.Step, shape: m.Shape(), def: training.CurrentSettings(m, nil)}
	_, i.truncates = m.(models.Truncater)
	if lt, ok := m.(models.LabelledTrainer); ok {
		i.classes = lt.Classes()
	}
	_, i.tempered = m.(models.Tempered)
	if _, ok := m.(models.Diffuser); ok {
		i.diffuses = true
		var c struct {
			T int `json:"t"`
		}
		if b, err := json.Marshal(m.Config()); err == nil {
			_ = json.Unmarshal(b, &c)
		}
		i.t = max(1, c.T)
	}
	return i, nil
}

// exploreRedraw draws the grid of the seed with the knobs' settings; a
// newer redraw cancels it.
func (s *Studio) exploreRedraw() {
	p := s.explore
	if p.info == nil {
		return
	}
	seed, err := strconv.ParseUint(p.seed.Text, 10, 64)
	if err != nil {
		p.status.SetText(lang.L("The seed must be a whole number ≥ 0."))
		return
	}
	n, _ := strconv.Atoi(p.n.Selected)
	set, info := s.exploreSettings(), *p.info
	p.bar.SetValue(0)
	p.stopBtn.Enable()
	p.gridL.submit(func(ctx context.Context) {
		prov, x, err := p.draw(ctx, info, training.KindGrid, set, func(q *training.Provenance) {
			q.Seed, q.N, q.Cols = seed, n, training.GridCols(n)
		}, func(f float64) { s.do(func() { p.bar.SetValue(f) }) })
		if ctx.Err() != nil {
			return // a newer request replaced this one
		}
		s.do(func() {
			p.stopBtn.Disable()
			if err != nil {
				p.status.SetText(lang.L("Sampling failed: ") + err.Error())
				return
			}
			p.gridProv = prov
			p.gridImg = training.GridImage(x, n, prov.Cols, info.shape)
			if p.a >= n {
				p.a = -1
			}
			if p.b >= n {
				p.b = -1
			}
			p.bar.SetValue(1)
			p.status.SetText(fmt.Sprintf(lang.L("%s/%s at step %d, seed %d: %d samples. Click a sample to pick A, another for B."),
				prov.Family, prov.Arch, prov.Step, seed, n))
			s.exploreShowGrid()
		})
	})
}

// draw samples what fill describes (kind, settings) from the loaded model
// on the calling lane; progress sees the share of a diffusion chain done.
func (p *explorePanel) draw(ctx context.Context, info exploreInfo, kind string, set training.SamplerSettings,
	fill func(*training.Provenance), progress func(float64)) (*training.Provenance, []float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ck == nil || ctx.Err() != nil {
		return nil, nil, errors.New("no model")
	}
	if p.ckPath != info.path {
		return nil, nil, errors.New("another checkpoint was opened meanwhile")
	}
	m := p.ck.Model
	opts, err := set.Apply(m)
	if err != nil {
		return nil, nil, err
	}
	prov, err := training.NewProvenance(kind, m, info.path, info.step, opts)
	if err != nil {
		return nil, nil, err
	}
	fill(prov)
	x, err := prov.Samples(m, opts, func(t int, _ []float32) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if progress != nil && info.t > 0 {
			progress(1 - float64(t)/float64(info.t))
		}
		return nil
	})
	return prov, x, err
}

// exploreShowGrid shows the grid with the picked samples framed.
func (s *Studio) exploreShowGrid() {
	p := s.explore
	if p.gridImg == nil {
		return
	}
	img := image.NewRGBA(p.gridImg.Bounds())
	copy(img.Pix, p.gridImg.Pix)
	if p.a >= 0 {
		training.MarkCell(img, p.a, p.gridProv.Cols, p.info.shape, pickA)
	}
	if p.b >= 0 {
		training.MarkCell(img, p.b, p.gridProv.Cols, p.info.shape, pickB)
	}
	p.grid.SetImage(img)
	s.exploreShowKnobs()
}

// explorePick picks the sample under a click: A first, then B; a third
// click starts over with A.
func (s *Studio) explorePick(pt image.Point) {
	p := s.explore
	if p.gridProv == nil {
		return
	}
	i := training.GridCell(pt, p.gridProv.N, p.gridProv.Cols, p.info.shape)
	if i < 0 {
		return
	}
	s.ExplorePickSample(i)
}

// ExplorePickSample picks sample i of the grid as A (or as B when only A
// is picked) and looks up its nearest training images.
func (s *Studio) ExplorePickSample(i int) {
	p := s.explore
	switch {
	case p.a < 0 || p.b >= 0:
		p.a, p.b = i, -1
		s.exploreNearest(i)
	case i != p.a:
		p.b = i
	}
	s.exploreShowGrid()
}

// exploreLatent is sample i of the grid shown, as a latent.
func (p *explorePanel) latent(i int) *training.Latent {
	return &training.Latent{Seed: p.gridProv.Seed, Index: i}
}

// exploreInterpolate draws the spherical path from A to B.
func (s *Studio) exploreInterpolate() {
	p := s.explore
	if p.a < 0 || p.b < 0 || p.gridProv == nil {
		return
	}
	frames, _ := strconv.Atoi(p.frames.Selected)
	from, to := p.latent(p.a), p.latent(p.b)
	s.exploreStrip(training.KindStrip, func(q *training.Provenance) {
		q.From, q.To, q.Frames, q.Seed = from, to, frames, from.Seed
	}, fmt.Sprintf(lang.L("From A (seed %d, #%d) to B (#%d) in %d frames along the sphere."), from.Seed, from.Index+1, to.Index+1, frames))
}

// exploreVariations draws A and its neighbours at the chosen distance.
func (s *Studio) exploreVariations() {
	p := s.explore
	if p.a < 0 || p.gridProv == nil {
		return
	}
	from, d, seed := p.latent(p.a), p.distance.Value, p.varSeed
	s.exploreStrip(training.KindVariations, func(q *training.Provenance) {
		q.From, q.N, q.Distance, q.Seed = from, 7, d, seed
	}, fmt.Sprintf(lang.L("A (left) and 7 neighbours at distance %.2f (0: copies, 1: fresh samples). Press again for others."), d))
}

func (s *Studio) exploreStrip(kind string, fill func(*training.Provenance), note string) {
	p := s.explore
	set, info := s.exploreSettings(), *p.info
	p.stripNote.SetText(lang.L("Drawing …"))
	p.stopBtn.Enable()
	p.stripL.submit(func(ctx context.Context) {
		prov, x, err := p.draw(ctx, info, kind, set, fill, nil)
		if ctx.Err() != nil {
			return
		}
		s.do(func() {
			p.stopBtn.Disable()
			if err != nil {
				p.stripNote.SetText(lang.L("Failed: ") + err.Error())
				return
			}
			p.stripP, p.stripX = prov, x
			k := prov.Frames
			if kind == training.KindVariations {
				k = prov.N + 1
			}
			p.strip.SetImage(training.GridImage(x, k, k, info.shape))
			p.stripNote.SetText(note)
			s.exploreShowKnobs()
		})
	})
}

// exploreSaveStrip saves the strip shown as PNG, or the interpolation as
// an animated GIF.
func (s *Studio) exploreSaveStrip(asGIF bool) {
	p := s.explore
	prov, x, info := p.stripP, p.stripX, p.info
	if prov == nil || info == nil {
		return
	}
	name, ext := "strip.png", ".png"
	if asGIF {
		name, ext = "walk.gif", ".gif"
	}
	pickSaveFile(s.win, lang.L("Save ")+name, name, lang.L("Images"), []string{ext}, func(path string) {
		if filepath.Ext(path) == "" {
			path += ext
		}
		go func() {
			var err error
			if asGIF {
				w := *prov
				w.Kind = training.KindWalk
				err = training.WriteGIF(path, training.WalkGIF(x, prov.Frames, info.shape, 4, 10), &w)
			} else {
				img, derr := p.stripImage(prov, x, info.shape)
				if err = derr; err == nil {
					err = training.WritePNGWith(path, img, prov)
				}
			}
			s.do(func() {
				if err != nil {
					s.showError(err)
					return
				}
				p.stripNote.SetText(lang.L("Saved ") + path)
			})
		}()
	})
}

// stripImage is the strip p describes, laid out as Provenance.Draw does.
func (p *explorePanel) stripImage(prov *training.Provenance, x []float32, s models.ImageShape) (image.Image, error) {
	switch prov.Kind {
	case training.KindStrip:
		return training.GridImage(x, prov.Frames, prov.Frames, s), nil
	case training.KindVariations:
		return training.GridImage(x, prov.N+1, prov.N+1, s), nil
	}
	return nil, fmt.Errorf("no strip to save")
}

// favouritesDir is where pinned samples go: the project's folder, or the
// runs folder when no project is open.
func (s *Studio) favouritesDir() string {
	if s.proj != nil {
		return filepath.Join(s.proj.Dir(), training.FavouritesDir)
	}
	return filepath.Join(s.runsFolder(), training.FavouritesDir)
}

// explorePin pins sample A: it is saved, with its provenance, among the
// favourites.
func (s *Studio) explorePin() {
	p := s.explore
	if p.a < 0 || p.gridProv == nil {
		return
	}
	prov := p.gridProv.ForSample(p.a)
	img := training.CellImage(p.gridImg, p.a, p.gridProv.Cols, p.info.shape)
	dir := s.favouritesDir()
	go func() {
		path, err := training.PinFavourite(dir, img, prov)
		s.do(func() {
			if err != nil {
				s.showError(err)
				return
			}
			p.status.SetText(lang.L("Pinned ") + path)
			s.exploreShowFavourites()
		})
	}()
}

// exploreShowFavourites shows the pinned samples in a strip.
func (s *Studio) exploreShowFavourites() {
	p := s.explore
	dir := s.favouritesDir()
	go func() {
		paths, err := training.Favourites(dir)
		var imgs []image.Image
		for _, f := range paths {
			if img, err := training.ReadPNG(f); err == nil {
				imgs = append(imgs, img)
			}
		}
		s.do(func() {
			if err != nil || len(imgs) == 0 {
				p.favs.SetImage(nil)
				return
			}
			p.favs.SetImage(training.TileImages(imgs, 8))
		})
	}()
}

// exploreNearest shows the three training images nearest to sample i in
// the evaluator's feature space (indexing the data set first, once).
func (s *Studio) exploreNearest(i int) {
	p := s.explore
	data, info := s.data, p.info
	one := training.ImagePixels(training.CellImage(p.gridImg, i, p.gridProv.Cols, info.shape), info.shape)
	if data == nil || data.Source != project.MNISTSource {
		p.nearest.SetImage(nil)
		p.nearestNote.SetText(lang.L("Load the MNIST data set on the Train tab to see the training images nearest to a sample (the built-in evaluator knows digits only)."))
		return
	}
	if data.Width != info.shape.Width || data.Height != info.shape.Height || max(1, data.Channels) != info.shape.Channels {
		p.nearestNote.SetText(lang.L("The model's images are not the data set's size."))
		return
	}
	p.nearestNote.SetText(lang.L("Finding the nearest training images …"))
	ev, err := s.periodicEvaluator(data)
	if err != nil {
		p.nearestNote.SetText(err.Error())
		return
	}
	p.nearL.submit(func(ctx context.Context) {
		if p.index == nil || p.index.Data() != data {
			s.do(func() { p.nearestNote.SetText(lang.L("Indexing the training images with the evaluator (once) …")) })
			idx, err := training.NewTrainingIndex(ctx, ev, data, nil)
			if err != nil {
				if ctx.Err() == nil {
					s.do(func() { p.nearestNote.SetText(err.Error()) })
				}
				return
			}
			p.index = idx
		}
		near, err := p.index.Nearest(ctx, one, 3)
		if err != nil || ctx.Err() != nil {
			return
		}
		row := append([]float32(nil), one...)
		for _, j := range near[0] {
			row = append(row, training.Pixels01(data.Pixels[j*info.shape.Size():(j+1)*info.shape.Size()])...)
		}
		img := training.GridImage(row, 4, 4, info.shape)
		s.do(func() {
			p.nearest.SetImage(img)
			p.nearestNote.SetText(fmt.Sprintf(lang.L("Sample #%d (left) and its three nearest of %d training images, by the evaluator's features."), i+1, len(data.Pixels)/info.shape.Size()))
		})
	})
}

// close releases the explorer's model.
func (p *explorePanel) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ck != nil {
		p.ck.Model.Close()
		p.ck = nil
	}
}
