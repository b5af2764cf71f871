package app

import (
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"image"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/widgets"
)

// The Rate tab's round kinds, as its menu names them.
var rateKinds = []struct{ label, kind string }{
	{"Rate samples 1–5", training.RoundRate},
	{"Which is better? (model A or B)", training.RoundPair},
	{"Real or generated? (HYPE∞)", training.RoundHYPE},
	{"Real or generated, timed (HYPE_time)", training.RoundHYPETime},
}

// rateItem is one image (or pair) of a round, ready to show.
type rateItem struct {
	trial training.Trial
	img   *image.RGBA
}

// ratePanel is the Rate tab: human evaluation rounds whose results are
// saved in the project and listed beside the automatic metrics.
type ratePanel struct {
	kind       *widget.Select
	modelA     *widget.Select
	modelB     *widget.Select
	pickA      *widget.Button
	pickB      *widget.Button
	trials     *widget.Select
	startBtn   *widget.Button
	status     *widget.Label
	keys       *widget.Label
	view       *widgets.SampleGrid
	answers    *fyne.Container
	results    *widget.Label
	content    fyne.CanvasObject
	round      *training.Round
	items      []rateItem
	at         int       // the item shown
	shown      time.Time // when it appeared
	exposure   int       // the timed quiz's exposure now (ms)
	generation int       // counts shown items, so a stale mask timer does nothing
}

func (s *Studio) buildRatePanel() *ratePanel {
	p := &ratePanel{}
	s.rate = p
	var labels []string
	for _, k := range rateKinds {
		labels = append(labels, tr(k.label))
	}
	p.kind = widget.NewSelect(labels, func(string) { s.rateShowKind() })
	p.modelA = widget.NewSelect(nil, nil)
	p.modelA.PlaceHolder = "(model A: a checkpoint)"
	p.modelB = widget.NewSelect(nil, nil)
	p.modelB.PlaceHolder = "(model B)"
	pick := func(sel *widget.Select) func() {
		return func() {
			pickOpenFile(s.win, lang.L("Checkpoint to rate"), lang.L("Checkpoints"), []string{".safetensors"}, func(path string) {
				addOption(s.rate.modelA, path)
				addOption(s.rate.modelB, path)
				sel.SetSelected(path)
			})
		}
	}
	p.pickA = widget.NewButtonWithIcon("", theme.FolderOpenIcon(), pick(p.modelA))
	p.pickB = widget.NewButtonWithIcon("", theme.FolderOpenIcon(), pick(p.modelB))
	p.trials = widget.NewSelect([]string{"10", "20", "40", "100"}, nil)
	p.trials.SetSelected("20")
	p.startBtn = widget.NewButtonWithIcon(lang.L("Start round"), theme.MediaPlayIcon(), func() { s.StartRound(nil) })
	p.startBtn.Importance = widget.HighImportance
	p.status = widget.NewLabel(lang.L("Pick a kind of round and a model, then Start. Answers are saved in the project, one file per round."))
	p.status.Wrapping = fyne.TextWrapWord
	p.keys = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	p.view = widgets.NewSampleGrid()
	p.view.SetPlaceholder(lang.L("The images to judge appear here"))
	p.answers = container.NewHBox()
	p.results = widget.NewLabel("")
	p.results.Wrapping = fyne.TextWrapWord
	p.kind.SetSelected(labels[2])
	models := container.NewGridWithColumns(2,
		container.NewBorder(nil, nil, widget.NewLabel(lang.L("A")), p.pickA, p.modelA),
		container.NewBorder(nil, nil, widget.NewLabel(lang.L("B")), p.pickB, p.modelB))
	top := container.NewVBox(container.NewHBox(widget.NewLabel(lang.L("Round")), container.NewGridWrap(fyne.NewSize(330, p.kind.MinSize().Height), p.kind), widget.NewLabel(lang.L("Trials")), p.trials, p.startBtn),
		models, p.status)
	bottom := container.NewVBox(container.NewCenter(p.answers), p.keys,
		widget.NewCard(lang.L("Results"), lang.L("every round of this project"), p.results))
	p.content = container.NewBorder(top, bottom, nil, nil, p.view)
	return p
}

func (p *ratePanel) kindName() string {
	if i := p.kind.SelectedIndex(); i >= 0 && i < len(rateKinds) {
		return rateKinds[i].kind
	}
	return training.RoundHYPE
}

// rateShowKind enables model B for pair rounds only.
func (s *Studio) rateShowKind() {
	p := s.rate
	if p.kindName() == training.RoundPair {
		p.modelB.Enable()
		p.pickB.Enable()
	} else {
		p.modelB.Disable()
		p.pickB.Disable()
	}
}

// ratingsDir is where rounds are saved: the project's folder, or the runs
// folder when no project is open.
func (s *Studio) ratingsDir() string {
	if s.proj != nil {
		return filepath.Join(s.proj.Dir(), training.RatingsDir)
	}
	return filepath.Join(s.runsFolder(), training.RatingsDir)
}

// refreshRateSources lists the runs' checkpoints and the saved results.
func (s *Studio) refreshRateSources() {
	for _, c := range s.runCheckpoints() {
		addOption(s.rate.modelA, c)
		addOption(s.rate.modelB, c)
	}
	s.rateShowResults()
}

// rateShowResults lists the saved rounds.
func (s *Studio) rateShowResults() {
	text := s.humanResults()
	s.rate.results.SetText(text)
	if s.compare != nil {
		s.compare.human.SetText(text)
	}
}

// humanResults describes every saved round, newest last.
func (s *Studio) humanResults() string {
	rs, err := training.Rounds(s.ratingsDir())
	if err != nil {
		return err.Error()
	}
	if len(rs) == 0 {
		return lang.L("No rounds yet.")
	}
	var out string
	for _, r := range rs {
		out += r.Started.Local().Format("2006-01-02 15:04") + "  " + r.Describe() + "\n"
	}
	return out
}

// StartRound prepares a round off the UI goroutine (drawing the samples,
// picking real images) and shows its first image; ready, if set, runs on
// the UI goroutine once it is shown or failed.
func (s *Studio) StartRound(ready func(error)) {
	p := s.rate
	kind := p.kindName()
	n, _ := strconv.Atoi(p.trials.Selected)
	a, b := p.modelA.Selected, p.modelB.Selected
	data := s.data
	fail := func(err error) {
		s.showError(err)
		if ready != nil {
			ready(err)
		}
	}
	switch {
	case a == "":
		fail(errors.New(lang.L("pick model A: a checkpoint of a trained model")))
		return
	case kind == training.RoundPair && b == "":
		fail(errors.New(lang.L("a pair round needs model B too")))
		return
	case (kind == training.RoundHYPE || kind == training.RoundHYPETime) && data == nil:
		fail(errors.New(lang.L("the real-or-generated quiz mixes in real images: load the training data set on the Train tab first")))
		return
	}
	seed := rand.Uint64N(1 << 40)
	p.startBtn.Disable()
	p.status.SetText(lang.L("Drawing the samples …"))
	go func() {
		items, err := prepareRound(kind, a, b, data, n, seed)
		s.do(func() {
			p.startBtn.Enable()
			if err != nil {
				p.status.SetText(lang.L("Could not start the round."))
				fail(err)
				return
			}
			p.round = &training.Round{Kind: kind, Started: time.Now(), Model: a, Seed: seed}
			if kind == training.RoundPair {
				p.round.ModelB = b
			}
			if data != nil && kind != training.RoundRate && kind != training.RoundPair {
				p.round.Data = data.Name
			}
			p.items, p.at, p.exposure = items, 0, training.Staircase[0]
			s.rateShowAnswers()
			s.rateShow()
			if ready != nil {
				ready(nil)
			}
		})
	}()
}

// prepareRound draws a round's images: n samples of model a (rate), n
// pairs of a and b in random sides (pair), or n images half real, half
// generated, in random order (quizzes).
func prepareRound(kind, a, b string, data *project.Dataset, n int, seed uint64) ([]rateItem, error) {
	draw := func(path string, count int, s uint64) ([]float32, models.ImageShape, error) {
		ck, err := training.LoadCheckpoint(path)
		if err != nil {
			return nil, models.ImageShape{}, err
		}
		defer ck.Model.Close()
		x, err := models.SampleImages(ck.Model, models.NoiseFromSeed(count, ck.Model.NoiseDim(), s), nil, nil)
		return x, ck.Model.Shape(), err
	}
	rng := rand.New(rand.NewPCG(seed, 0x7a7e))
	var items []rateItem
	switch kind {
	case training.RoundRate:
		x, sh, err := draw(a, n, seed)
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			items = append(items, rateItem{trial: training.Trial{Sample: &training.Latent{Seed: seed, Index: i}, RealIndex: -1},
				img: training.SampleImage(x, i, sh)})
		}
	case training.RoundPair:
		xa, sa, err := draw(a, n, seed)
		if err != nil {
			return nil, err
		}
		xb, sb, err := draw(b, n, seed)
		if err != nil {
			return nil, err
		}
		if sa != sb {
			return nil, fmt.Errorf("models A and B make images of different sizes (%dx%d and %dx%d)", sa.Width, sa.Height, sb.Width, sb.Height)
		}
		for i := 0; i < n; i++ {
			left := rng.IntN(2) == 0
			first, second := xa[i*sa.Size():(i+1)*sa.Size()], xb[i*sa.Size():(i+1)*sa.Size()]
			if !left {
				first, second = second, first
			}
			pair := append(append([]float32(nil), first...), second...)
			items = append(items, rateItem{trial: training.Trial{Sample: &training.Latent{Seed: seed, Index: i}, Other: &training.Latent{Seed: seed, Index: i},
				RealIndex: -1, Left: left}, img: training.GridImage(pair, 2, 2, sa)})
		}
	default:
		fakes := n / 2
		x, sh, err := draw(a, fakes, seed)
		if err != nil {
			return nil, err
		}
		if data.Width != sh.Width || data.Height != sh.Height || max(1, data.Channels) != sh.Channels {
			return nil, errors.New("the model's images are not the size of the loaded data set's")
		}
		total := len(data.Pixels) / sh.Size()
		for i := 0; i < fakes; i++ {
			items = append(items, rateItem{trial: training.Trial{Sample: &training.Latent{Seed: seed, Index: i}, RealIndex: -1}, img: training.SampleImage(x, i, sh)})
		}
		for i := fakes; i < n; i++ {
			j := rng.IntN(total)
			items = append(items, rateItem{trial: training.Trial{RealIndex: j},
				img: training.SampleImage(training.Pixels01(data.Pixels[j*sh.Size():(j+1)*sh.Size()]), 0, sh)})
		}
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	}
	return items, nil
}

// rateShowAnswers makes the answer buttons and key hints of the round.
func (s *Studio) rateShowAnswers() {
	p := s.rate
	p.answers.RemoveAll()
	switch p.round.Kind {
	case training.RoundRate:
		for k := 1; k <= 5; k++ {
			p.answers.Add(widget.NewButton(strconv.Itoa(k), func() { s.RateAnswer(k) }))
		}
		p.keys.SetText(lang.L("Keys: 1 (poor) … 5 (excellent)"))
	case training.RoundPair:
		p.answers.Add(widget.NewButtonWithIcon(lang.L("Left is better"), theme.NavigateBackIcon(), func() { s.RateAnswer(1) }))
		p.answers.Add(widget.NewButtonWithIcon(lang.L("Right is better"), theme.NavigateNextIcon(), func() { s.RateAnswer(2) }))
		p.keys.SetText(lang.L("Keys: ← left is better, → right is better"))
	default:
		p.answers.Add(widget.NewButton(lang.L("Real (R)"), func() { s.RateAnswer(1) }))
		p.answers.Add(widget.NewButton(lang.L("Generated (G)"), func() { s.RateAnswer(0) }))
		p.keys.SetText(lang.L("Keys: R real, G generated (F works too)"))
	}
	p.answers.Refresh()
}

// rateShow shows the current item (for a timed quiz, for its exposure,
// then a mask).
func (s *Studio) rateShow() {
	p := s.rate
	it := p.items[p.at]
	p.view.SetImage(it.img)
	p.shown = time.Now()
	p.generation++
	what := fmt.Sprintf(lang.L("Trial %d of %d."), p.at+1, len(p.items))
	if p.round.Kind == training.RoundHYPETime {
		gen := p.generation
		what += fmt.Sprintf(" Exposure %d ms.", p.exposure)
		time.AfterFunc(time.Duration(p.exposure)*time.Millisecond, func() {
			s.do(func() {
				if p.round != nil && p.generation == gen {
					p.view.SetImage(maskImage(it.img.Bounds()))
				}
			})
		})
	}
	p.status.SetText(what)
}

// maskImage is the noise a timed quiz shows after an exposure.
func maskImage(r image.Rectangle) *image.RGBA {
	img := image.NewRGBA(r)
	rng := rand.New(rand.NewPCG(uint64(r.Dx()), 3))
	for i := 0; i < len(img.Pix); i += 4 {
		v := uint8(rng.IntN(256))
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = v, v, v, 255
	}
	return img
}

// RateAnswer records the answer to the item shown (a rating 1–5; 1 or 2
// for the left or right of a pair; 1 real, 0 generated in a quiz) and
// shows the next, or saves the round after the last.
func (s *Studio) RateAnswer(score int) {
	p := s.rate
	if p.round == nil || p.at >= len(p.items) {
		return
	}
	t := p.items[p.at].trial
	t.Millis = time.Since(p.shown).Milliseconds()
	switch p.round.Kind {
	case training.RoundPair:
		// Score 1 = model A won: the picked side is A's.
		if (score == 1) == t.Left {
			t.Score = 1
		} else {
			t.Score = 2
		}
	case training.RoundHYPETime:
		t.Score, t.ExposureMS = score, p.exposure
		p.exposure = training.NextExposure(p.exposure, t.Correct())
	default:
		t.Score = score
	}
	p.round.Trials = append(p.round.Trials, t)
	p.at++
	if p.at < len(p.items) {
		s.rateShow()
		return
	}
	r := p.round
	p.round, p.items = nil, nil
	p.generation++
	p.view.SetImage(nil)
	p.answers.RemoveAll()
	p.keys.SetText("")
	path, err := training.SaveRound(s.ratingsDir(), r)
	if err != nil {
		s.showError(err)
		return
	}
	p.status.SetText(r.Describe() + lang.L(". Saved in ") + path)
	s.rateShowResults()
}

// typedKey routes the keyboard to the Rate tab during a round.
func (s *Studio) typedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeySpace && s.onTab(tabTrain) {
		s.TogglePause()
		return
	}
	p := s.rate
	if p == nil || p.round == nil || !s.onTab(tabRate) {
		return
	}
	switch p.round.Kind {
	case training.RoundRate:
		if k, err := strconv.Atoi(string(ev.Name)); err == nil && k >= 1 && k <= 5 {
			s.RateAnswer(k)
		}
	case training.RoundPair:
		switch ev.Name {
		case fyne.KeyLeft:
			s.RateAnswer(1)
		case fyne.KeyRight:
			s.RateAnswer(2)
		}
	default:
		switch ev.Name {
		case fyne.KeyR:
			s.RateAnswer(1)
		case fyne.KeyG, fyne.KeyF:
			s.RateAnswer(0)
		}
	}
}
