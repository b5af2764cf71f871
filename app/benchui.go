package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// BenchUIOptions configure BenchUI.
type BenchUIOptions struct {
	// Families to measure, one after the other: "gan", "vae", "ddpm", or
	// "family/arch" ("vae/conv"); the architecture defaults to "mlp".
	// Empty: "gan".
	Families []string
	Steps    int // timed steps per run (default 300)
	Warmup   int // untimed steps at the start of each run (default 20)
	Reps     int // headless/window pairs per family, interleaved (default 3)
	// UIPeriod overrides the least time between two progress updates of
	// the window (0: the studio's own, uiPeriod).
	UIPeriod time.Duration
	Log      io.Writer // if set, one line per run as it finishes
}

// BenchUIResult is what BenchUI measured for one model family.
type BenchUIResult struct {
	Family string `json:"family"` // "gan", "vae/conv", …
	Steps  int    `json:"steps"`  // timed steps per run (at least)
	Warmup int    `json:"warmup"`
	// HeadlessMs and WindowMs are the ms/step of each rep, in the order run
	// (headless, window, headless, window, …).
	HeadlessMs     []float64 `json:"headless_ms"`
	WindowMs       []float64 `json:"window_ms"`
	HeadlessMedian float64   `json:"headless_median_ms"`
	WindowMedian   float64   `json:"window_median_ms"`
	// OverheadPct is (WindowMedian/HeadlessMedian - 1) * 100.
	OverheadPct float64 `json:"overhead_pct"`
	// PairOverheadPct is the overhead of each window run against the
	// headless run just before it.
	PairOverheadPct []float64 `json:"pair_overhead_pct"`
	// What the window did during each timed window run: progress events
	// the worker sent, progress updates the window applied (several events
	// merge into one), preview images it showed, frames it painted after an
	// update (0 with Fyne's test driver, which paints only on capture), and
	// the points its loss chart held at the end.
	ProgressEvents []int `json:"progress_events"`
	Updates        []int `json:"updates"`
	Previews       []int `json:"previews"`
	Frames         []int `json:"frames"`
	ChartPoints    []int `json:"chart_points"`
	// UICPUPct is the CPU time of the UI threads (the main thread, where
	// Fyne runs the UI and paints, and a software renderer's llvmpipe
	// threads) as a share of the whole process's, during each timed window
	// run (Linux; -1 elsewhere). Unlike the times it hardly depends on what
	// else the machine runs.
	UICPUPct []float64 `json:"ui_cpu_pct"`
	// UILatencyP50Ms, UILatencyP99Ms and UILatencyMaxMs are how long a
	// callback posted to the UI goroutine (fyne.Do, as a click or a key
	// press is handled) waited to run, every 20 ms during each timed window
	// run: the window's responsiveness while the worker trains flat out.
	UILatencyP50Ms []float64 `json:"ui_latency_p50_ms"`
	UILatencyP99Ms []float64 `json:"ui_latency_p99_ms"`
	UILatencyMaxMs []float64 `json:"ui_latency_max_ms"`
	// LoadBefore and LoadAfter are /proc/loadavg around the family's runs
	// (empty where there is none).
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after,omitempty"`
}

// BenchUI measures what the studio window costs training: for each family
// it trains the form's default model on MNIST, alternately headless (a
// training.Worker with the window's options whose events are discarded) and
// in the studio window (Train pressed, live previews, loss chart, progress),
// and compares the ms per step of the same steps of each run.
//
// It opens the real window, so it needs a display (a desktop or Xvfb), and
// like Run it must be called on the main goroutine, once per process.
func BenchUI(opts BenchUIOptions) ([]BenchUIResult, error) {
	dir, err := os.MkdirTemp("", "genstudio-benchui-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	a := fyneapp.NewWithID(AppID)
	win := a.NewWindow("Gen Studio")
	win.Resize(fyne.NewSize(1280, 820))
	s := NewStudio(a, win)
	s.buildMenu()
	s.runsDir = filepath.Join(dir, "window")
	probe := newFrameProbe()
	win.SetContent(container.NewStack(win.Content(), container.NewWithoutLayout(probe.raster)))
	s.LoadDataset("mnist")
	type outcome struct {
		res []BenchUIResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := benchUI(s, opts, probe, dir)
		done <- outcome{res, err}
		s.do(a.Quit)
	}()
	win.ShowAndRun()
	select {
	case o := <-done:
		s.Close()
		return o.res, o.err
	default:
		s.Close()
		return nil, errors.New("the window was closed before the benchmark finished")
	}
}

// frameProbe counts the window's updates and painted frames: a 1×1
// transparent raster refreshed with each update, so that its generator runs
// once each time the window is painted after an update.
type frameProbe struct {
	raster            *canvas.Raster
	frames            atomic.Int64
	updates, previews atomic.Int64
}

// applied runs on the UI goroutine after the studio applied ev.
func (p *frameProbe) applied(ev training.Event) {
	switch ev.(type) {
	case training.ProgressEvent:
		p.updates.Add(1)
	case training.PreviewEvent:
		p.previews.Add(1)
	default:
		return
	}
	p.raster.Refresh()
}

func newFrameProbe() *frameProbe {
	p := &frameProbe{}
	px := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	p.raster = canvas.NewRaster(func(w, h int) image.Image {
		p.frames.Add(1)
		return px
	})
	p.raster.Resize(fyne.NewSize(1, 1))
	return p
}

// counts returns the frames, updates and previews so far.
func (p *frameProbe) counts() (frames, updates, previews int) {
	if p == nil {
		return 0, 0, 0
	}
	return int(p.frames.Load()), int(p.updates.Load()), int(p.previews.Load())
}

// benchUI runs the benchmark in s, which has (or is loading) a data set.
// It runs off the UI goroutine. probe may be nil (then no frames are
// counted); dir holds the headless
// runs' files.
func benchUI(s *Studio, opts BenchUIOptions, probe *frameProbe, dir string) ([]BenchUIResult, error) {
	if len(opts.Families) == 0 {
		opts.Families = []string{"gan"}
	}
	if opts.Steps <= 0 {
		opts.Steps = 300
	}
	if opts.Warmup < 0 {
		opts.Warmup = 0
	} else if opts.Warmup == 0 {
		opts.Warmup = 20
	}
	if opts.Reps <= 0 {
		opts.Reps = 3
	}
	var vs []models.Spec
	for _, f := range opts.Families {
		v, err := benchVariant(f)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	if err := waitUI(s, "the data set", 5*time.Minute, func() bool { return s.data != nil }); err != nil {
		return nil, err
	}
	events, untap := s.tapEvents()
	defer untap()
	if probe == nil { // not in the window: it counts updates but no frames
		probe = newFrameProbe()
	}
	s.doWait(func() { s.uiPeriod, s.onApplied = opts.UIPeriod, probe.applied })
	defer s.doWait(func() { s.uiPeriod, s.onApplied = 0, nil })
	b := &uiBench{s: s, opts: opts, probe: probe, dir: dir, events: events}
	var out []BenchUIResult
	for _, v := range vs {
		r, err := b.family(v)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func benchVariant(name string) (models.Spec, error) {
	fam, arch, _ := strings.Cut(strings.TrimSpace(name), "/")
	if i := variantIndex(fam, arch); i >= 0 {
		return variants[i], nil
	}
	return models.Spec{}, fmt.Errorf("no model %q in the form (try gan, vae, ddpm, or family/arch such as vae/conv)", name)
}

// tapEvents sends every worker event, after the window applied it, to the
// returned channel (dropping events when it is full) until untap.
func (s *Studio) tapEvents() (events chan training.Event, untap func()) {
	ch := make(chan training.Event, 4096)
	s.mu.Lock()
	s.onEvent = func(e training.Event) {
		select {
		case ch <- e:
		default:
		}
	}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		s.onEvent = nil
		s.mu.Unlock()
	}
}

// waitUI polls ok on the UI goroutine until it holds.
func waitUI(s *Studio, what string, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for {
		var done bool
		s.doWait(func() { done = ok() })
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type uiBench struct {
	s      *Studio
	opts   BenchUIOptions
	probe  *frameProbe
	dir    string
	events chan training.Event // the window's events, after the window applied them
	runs   int
}

// runStats is one timed run.
type runStats struct {
	ms                                  float64
	progress, updates, previews, frames int
	chartPoints                         int
	uiCPU                               float64
	latency                             []float64 // ms each probe callback waited
}

func (b *uiBench) logf(format string, args ...any) {
	if b.opts.Log != nil {
		fmt.Fprintf(b.opts.Log, format+"\n", args...)
	}
}

func (b *uiBench) family(v models.Spec) (BenchUIResult, error) {
	name := v.Family
	if v.Arch != "mlp" {
		name += "/" + v.Arch
	}
	r := BenchUIResult{Family: name, Steps: b.opts.Steps, Warmup: b.opts.Warmup, LoadBefore: loadAvg()}
	for rep := 1; rep <= b.opts.Reps; rep++ {
		h, err := b.headless(v)
		if err != nil {
			return r, fmt.Errorf("%s headless run %d: %w", name, rep, err)
		}
		b.logf("%s rep %d headless %.2f ms/step", name, rep, h.ms)
		w, err := b.window(v)
		if err != nil {
			return r, fmt.Errorf("%s window run %d: %w", name, rep, err)
		}
		p50, p99, pmax := percentile(w.latency, 50), percentile(w.latency, 99), percentile(w.latency, 100)
		b.logf("%s rep %d window   %.2f ms/step (%+.1f %%; %d progress events, %d updates, %d previews, %d frames painted, %d chart points, UI threads %.1f %% of CPU; UI callback latency p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d probes)",
			name, rep, w.ms, (w.ms/h.ms-1)*100, w.progress, w.updates, w.previews, w.frames, w.chartPoints, w.uiCPU, p50, p99, pmax, len(w.latency))
		r.UILatencyP50Ms = append(r.UILatencyP50Ms, p50)
		r.UILatencyP99Ms = append(r.UILatencyP99Ms, p99)
		r.UILatencyMaxMs = append(r.UILatencyMaxMs, pmax)
		r.HeadlessMs = append(r.HeadlessMs, h.ms)
		r.WindowMs = append(r.WindowMs, w.ms)
		r.PairOverheadPct = append(r.PairOverheadPct, (w.ms/h.ms-1)*100)
		r.ProgressEvents = append(r.ProgressEvents, w.progress)
		r.Updates = append(r.Updates, w.updates)
		r.Previews = append(r.Previews, w.previews)
		r.Frames = append(r.Frames, w.frames)
		r.ChartPoints = append(r.ChartPoints, w.chartPoints)
		r.UICPUPct = append(r.UICPUPct, w.uiCPU)
	}
	r.HeadlessMedian, r.WindowMedian = median(r.HeadlessMs), median(r.WindowMs)
	r.OverheadPct = (r.WindowMedian/r.HeadlessMedian - 1) * 100
	r.LoadAfter = loadAvg()
	return r, nil
}

// settings selects v in the form with the run length the benchmark needs and
// returns the form's settings. The run is longer than the timed part, so
// that the end mark falls inside it; the benchmark stops it after that.
func (b *uiBench) settings(v models.Spec) (runSettings, error) {
	// The window reports progress up to uiPeriod late; the margin covers
	// that at any speed a model here trains.
	total := b.opts.Warmup + 3*b.opts.Steps + 2000
	var set runSettings
	var err error
	b.s.doWait(func() {
		if b.s.worker != nil {
			err = errors.New("a run is still going")
			return
		}
		if b.s.model != nil {
			b.s.NewModel()
		}
		b.s.form.family.SetSelected(v.Label)
		b.s.form.steps.entry.SetText(strconv.Itoa(total))
		set, err = b.s.form.read()
	})
	return set, err
}

// headless trains the model the window would train, with the window's
// worker options, and nobody rendering its events.
func (b *uiBench) headless(v models.Spec) (runStats, error) {
	set, err := b.settings(v)
	if err != nil {
		return runStats{}, err
	}
	var flip bool
	var data *project.Dataset
	b.s.doWait(func() { data, flip = b.s.data, b.s.form.flip.Checked })
	m, err := set.build()
	if err != nil {
		return runStats{}, err
	}
	defer m.Close()
	sh := m.Shape()
	conformed, err := data.Conform(sh.Width, sh.Channels)
	if err != nil {
		return runStats{}, err
	}
	b.runs++
	runDir := filepath.Join(b.dir, "headless", strconv.Itoa(b.runs))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return runStats{}, err
	}
	w, err := training.NewWorker(m, conformed, runOptions(set, set.seed, 0, runDir, flip))
	if err != nil {
		return runStats{}, err
	}
	w.Start(context.Background())
	st, terr := timeSteps(w, w.Events(), b.opts.Warmup, b.opts.Steps, nil)
	w.Stop()
	for range w.Events() { // drain to the end
	}
	return st, terr
}

// window trains the same model in the studio window, as a user who presses
// Train would.
func (b *uiBench) window(v models.Spec) (runStats, error) {
	if _, err := b.settings(v); err != nil {
		return runStats{}, err
	}
	for len(b.events) > 0 { // anything left from an earlier run
		<-b.events
	}
	b.s.doWait(func() { b.s.trainBtn.OnTapped() })
	// The first event comes once the worker runs; s.worker is set by then.
	var w *training.Worker
	select {
	case e := <-b.events:
		b.s.doWait(func() { w = b.s.worker })
		if w == nil {
			if d, ok := e.(training.DoneEvent); ok && d.Err != nil {
				return runStats{}, d.Err
			}
			return runStats{}, errors.New("training did not start")
		}
		b.events <- e // put it back for timeSteps (the buffer has room)
	case <-time.After(3 * time.Minute):
		var status string
		b.s.doWait(func() { status = b.s.status.Text })
		return runStats{}, fmt.Errorf("training did not start: %s", status)
	}
	var progress, f0, u0, p0 int
	var ui0, all0 int64
	probeDone := make(chan struct{})
	var latency chan []float64
	st, err := timeSteps(w, b.events, b.opts.Warmup, b.opts.Steps, func(e training.Event, phase int) {
		if phase == markStart {
			f0, u0, p0 = b.probe.counts()
			ui0, all0 = threadCPU()
			latency = probeLatency(b.s.do, 20*time.Millisecond, probeDone)
		}
		if _, ok := e.(training.ProgressEvent); ok && phase == timing {
			progress++
		}
	})
	if latency != nil {
		close(probeDone)
		st.latency = <-latency
	}
	if err == nil {
		f1, u1, p1 := b.probe.counts()
		st.uiCPU = -1
		if ui1, all1 := threadCPU(); all1 > all0 && all0 >= 0 {
			st.uiCPU = float64(ui1-ui0) / float64(all1-all0) * 100
		}
		st.frames, st.updates, st.previews, st.progress = f1-f0, u1-u0, p1-p0, progress
		b.s.doWait(func() {
			if names := b.s.chart.SeriesNames(); len(names) > 0 {
				st.chartPoints = b.s.chart.Len(names[0])
			}
			if b.s.grid.Image() == nil {
				err = errors.New("the window showed no preview")
			}
		})
	}
	b.s.doWait(b.s.Stop)
	for {
		select {
		case e := <-b.events:
			if _, ok := e.(training.DoneEvent); ok {
				return st, err
			}
		case <-time.After(3 * time.Minute):
			return st, errors.New("the run did not stop")
		}
	}
}

// Phases of a timed run, as timeSteps reports them with each event.
const (
	beforeTiming = iota
	markStart    // the event that started the timing
	timing
	afterTiming
)

// timeSteps follows a run's events until warmup steps are done, then marks
// a step boundary on the worker goroutine (w.Do runs between two steps),
// follows them until at least steps more are done and marks again. It
// returns the ms per step between the two marks. seen, if set, gets every
// event it reads with the phase it fell in. It leaves the run going.
func timeSteps(w *training.Worker, events <-chan training.Event, warmup, steps int, seen func(training.Event, int)) (runStats, error) {
	mark := func() (t time.Time, step int, err error) {
		w.Do(func(models.Model) {
			t, step = time.Now(), w.Step()
			select {
			case <-w.Done(): // Do ran after the end of the run
				err = errors.New("the run ended before the timed steps were done")
			default:
			}
		})
		return
	}
	var t0 time.Time
	s0, phase := 0, beforeTiming
	limit := time.After(30 * time.Minute)
	for {
		var e training.Event
		var ok bool
		select {
		case e, ok = <-events:
			if !ok {
				return runStats{}, errors.New("the run ended before the timed steps were done")
			}
		case <-limit:
			return runStats{}, errors.New("timed out")
		}
		switch e := e.(type) {
		case training.ProgressEvent:
			switch {
			case phase == beforeTiming && e.Step >= warmup:
				var err error
				if t0, s0, err = mark(); err != nil {
					return runStats{}, err
				}
				phase = markStart
			case phase == timing && e.Step >= s0+steps:
				t1, s1, err := mark()
				if err != nil {
					return runStats{}, err
				}
				if seen != nil {
					seen(e, afterTiming)
				}
				return runStats{ms: float64(t1.Sub(t0).Microseconds()) / 1000 / float64(s1-s0)}, nil
			}
		case training.DoneEvent:
			if e.Err != nil {
				return runStats{}, e.Err
			}
			return runStats{}, errors.New("the run ended before the timed steps were done")
		}
		if seen != nil {
			seen(e, phase)
		}
		if phase == markStart {
			phase = timing
		}
	}
}

// probeLatency posts a callback through do every period until stop
// closes, and sends how long each waited to run (ms).
func probeLatency(do func(func()), period time.Duration, stop <-chan struct{}) chan []float64 {
	out := make(chan []float64, 1)
	go func() {
		var ms []float64
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- ms
				return
			case <-tick.C:
				posted := time.Now()
				ran := make(chan float64, 1)
				do(func() { ran <- float64(time.Since(posted).Microseconds()) / 1000 })
				select {
				case v := <-ran:
					ms = append(ms, v)
				case <-stop:
					out <- ms
					return
				}
			}
		}
	}()
	return out
}

// percentile is the p-th percentile of xs (nearest rank; NaN when empty).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, i))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
