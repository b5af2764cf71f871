package app

import (
	"context"
	"errors"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"math/rand/v2"
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
	"github.com/genstudio/genstudio/training/metrics"
	"github.com/genstudio/genstudio/widgets"
)

// labTechniques are the Lab tab's choices, the recommended remedy first.
var labTechniques = []string{"recommended", "plain", "hinge", "lsgan", "ttur", "pacgan2", "pacgan4", "sn", "lrdecay", "topk", "lrdecay+topk", "drs"}

// The live view: points drawn and the heat map's resolution.
const (
	labLivePoints = 1000
	labHeat       = 48
	labWatchEvery = 100
)

// labPanel is the Lab tab: a GAN on 2-D points, trained live, with the
// real and generated points, the modes (covered ones highlighted) and the
// discriminator's output as a background heat map.
type labPanel struct {
	data, technique *widget.Select
	steps, seed     *widget.Entry
	trainBtn        *widget.Button
	stopBtn         *widget.Button
	bar             *widget.ProgressBar
	status          *widget.Label
	plot            *widgets.ScatterPlot
	content         fyne.CanvasObject
	cancel          context.CancelFunc
	last            *training.LabResult
}

func (s *Studio) buildLabPanel() *labPanel {
	p := &labPanel{}
	s.lab = p
	p.data = widget.NewSelect([]string{"ring8", "grid25"}, func(string) { s.showLabData() })
	p.technique = widget.NewSelect(labTechniques, nil)
	p.technique.SetSelected("recommended")
	p.steps = widget.NewEntry()
	p.steps.SetText(strconv.Itoa(training.LabDefaultSteps))
	p.seed = widget.NewEntry()
	p.seed.SetText("1")
	p.trainBtn = widget.NewButtonWithIcon(lang.L("Train"), theme.MediaPlayIcon(), func() { s.TrainLab(nil) })
	p.trainBtn.Importance = widget.HighImportance
	p.stopBtn = widget.NewButtonWithIcon(lang.L("Stop"), theme.MediaStopIcon(), func() {
		if p.cancel != nil {
			p.cancel()
		}
	})
	p.stopBtn.Disable()
	p.bar = widget.NewProgressBar()
	p.status = widget.NewLabel(lang.L("A GAN on 2-D points: pick a data set and a technique and press Train. Plain GANs drop modes; the remedies keep them."))
	p.status.Wrapping = fyne.TextWrapWord
	p.plot = widgets.NewScatterPlot()
	small := func(e *widget.Entry) fyne.CanvasObject {
		return container.NewGridWrap(fyne.NewSize(90, e.MinSize().Height), e)
	}
	// wide enough for "lrdecay+topk" and "recommended" in full
	technique := container.NewGridWrap(fyne.NewSize(190, p.technique.MinSize().Height), p.technique)
	bar := container.NewHBox(widget.NewLabel(lang.L("Data")), p.data, widget.NewLabel(lang.L("Technique")), technique,
		widget.NewLabel(lang.L("Steps")), small(p.steps), widget.NewLabel(lang.L("Seed")), small(p.seed), p.trainBtn, p.stopBtn)
	p.content = container.NewBorder(container.NewVBox(bar, p.bar, p.status), nil, nil, nil, p.plot)
	p.data.SetSelected("ring8")
	return p
}

// showLabData shows the chosen data set's modes and real points.
func (s *Studio) showLabData() {
	p := s.lab
	if p == nil || p.plot == nil {
		return
	}
	mix, err := training.MixtureByName(p.data.Selected)
	if err != nil {
		return
	}
	r := labBound(mix)
	p.plot.Clear()
	p.plot.SetBounds(-r, r, -r, r)
	p.plot.SetMarkers(mix.Centres, nil)
	p.plot.SetSeries(0, lang.L("real"), mix.Sample(labLivePoints, rand.New(rand.NewPCG(1, 1))))
}

// labBound is the half-width of the plotted square.
func labBound(m training.Mixture2D) float64 {
	r := 0.0
	for _, v := range m.Centres {
		r = max(r, float64(v), -float64(v))
	}
	return r*1.35 + 0.2
}

// TrainLab trains the chosen 2-D GAN off the UI goroutine, drawing its
// samples, the covered modes and D's heat map every 100 steps; the result
// is the protocol's on 2,500 samples. done, when set, gets it on the UI
// goroutine.
func (s *Studio) TrainLab(done func(*training.LabResult, error)) {
	p := s.lab
	if p.cancel != nil {
		return
	}
	steps, err := strconv.Atoi(p.steps.Text)
	if err != nil || steps < 1 || steps > 1000000 {
		s.showError(fmt.Errorf(lang.L("steps must be a whole number from 1 to 1,000,000, not %q"), p.steps.Text))
		return
	}
	seed, err := strconv.ParseUint(p.seed.Text, 10, 64)
	if err != nil {
		s.showError(fmt.Errorf(lang.L("the seed must be a whole number ≥ 0, not %q"), p.seed.Text))
		return
	}
	mix, err := training.MixtureByName(p.data.Selected)
	if err != nil {
		s.showError(err)
		return
	}
	tech := p.technique.Selected
	cfg, err := training.LabConfig(tech, seed)
	if err != nil {
		s.showError(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.trainBtn.Disable()
	p.stopBtn.Enable()
	p.bar.SetValue(0)
	s.showLabData()
	r := labBound(mix)
	watch := func(step int, m *models.GAN2D) {
		pts, err := m.Sample(labLivePoints, rand.New(rand.NewPCG(seed, 7)))
		if err != nil {
			return
		}
		covered := labCovered(pts, mix)
		grid := make([]float32, 0, 2*labHeat*labHeat)
		for i := 0; i < labHeat; i++ { // row 0 at the top
			y := r - (float64(i)+0.5)*2*r/labHeat
			for j := 0; j < labHeat; j++ {
				grid = append(grid, float32(-r+(float64(j)+0.5)*2*r/labHeat), float32(y))
			}
		}
		heat, _ := m.Critic(grid)
		s.do(func() {
			p.plot.SetHeatMap(labHeat, labHeat, heat)
			p.plot.SetSeries(1, lang.L("generated"), pts)
			p.plot.SetMarkers(mix.Centres, covered)
			p.bar.SetValue(float64(step) / float64(steps))
			n := 0
			for _, c := range covered {
				if c {
					n++
				}
			}
			p.status.SetText(fmt.Sprintf(lang.L("%s on %s, step %d/%d: %d of %d modes covered by the live %d samples"), tech, mix.Name, step, steps, n, len(covered), labLivePoints))
		})
	}
	go func() {
		res, err := training.RunLab(ctx, mix, cfg, steps, labWatchEvery, watch)
		s.do(func() {
			cancel()
			p.cancel = nil
			p.trainBtn.Enable()
			p.stopBtn.Disable()
			switch {
			case errors.Is(err, context.Canceled):
				p.status.SetText(lang.L("Stopped."))
			case err != nil:
				s.showError(err)
			default:
				p.last = res
				p.bar.SetValue(1)
				p.plot.SetSeries(1, lang.L("generated"), res.Samples)
				p.plot.SetMarkers(mix.Centres, labCovered(res.Samples, mix))
				p.status.SetText(fmt.Sprintf(lang.L("%s on %s, %d steps, seed %d: %d of %d modes covered, %.1f %% of %d samples high quality (within 3σ of a mode; the protocol of VEEGAN and PacGAN)."),
					tech, mix.Name, steps, seed, res.Modes, len(mix.Centres)/2, 100*res.HighQuality, training.LabSamples))
			}
			if done != nil {
				done(res, err)
			}
		})
	}()
}

// labCovered marks the modes that some high-quality sample has nearest.
func labCovered(pts []float32, mix training.Mixture2D) []bool {
	st, err := metrics.ModeCoverage(pts, mix.Centres, mix.Sigma)
	if err != nil {
		return make([]bool, len(mix.Centres)/2)
	}
	return st.Covered
}
