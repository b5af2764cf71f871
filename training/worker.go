// Package training runs models on a background worker: the training loop,
// its events, checkpoints, preview grids and galleries. It never imports the
// UI: the worker sends events, whoever listens renders them.
package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
)

// Options configure a training run.
type Options struct {
	Steps           int           // stop after this many steps in total (0: run until stopped)
	Seed            uint64        // batch order and per-step noise derive from (Seed, step)
	StartStep       int           // steps already done (when continuing from a checkpoint)
	PreviewEvery    int           // a preview every N steps (0: only by time)
	PreviewPeriod   time.Duration // and at least one preview this often (default 2 s)
	PreviewSeed     uint64        // seed of the fixed preview noise
	PreviewDir      string        // if set, each preview grid is also written there as PNG
	CheckpointDir   string        // if set, checkpoints are written there periodically and on Stop
	CheckpointEvery time.Duration // a checkpoint this often (default 5 minutes when CheckpointSteps is 0)
	CheckpointSteps int           // and/or one every N steps (0: by time only)
	Keep            int           // newest checkpoints kept in CheckpointDir besides pinned ones (default 3)
	// OnWriteError is what a failed write of a checkpoint, preview or
	// metrics line does: stop the run (the default), pause it until the
	// user resumes or stops, or go on and try again at the next one. The
	// failure is a CheckpointEvent or WriteErrorEvent either way, and the
	// previous checkpoint stays intact.
	OnWriteError   WriteFailure
	MetricsPath    string        // if set, one JSON line of losses per step is appended there
	RunDir         string        // if set, the run's status.json is kept there (running, finished, stopped, …)
	Flip           bool          // horizontal-flip augmentation: each batch image mirrored with probability ½
	ProgressPeriod time.Duration // how often progress events go out (default 100 ms)
	// AfterStep, if set, is called on the worker goroutine after each
	// step with the number of steps done (a hook, as gomlx's loop has).
	AfterStep func(step int)

	// EvalEvery, when > 0 and Evaluator is set, scores EvalN samples (noise
	// from EvalSeed) every EvalEvery steps against EvalTrain (default: the
	// training data): the worker draws the samples, the metrics run beside
	// training, and each result is an EvalEvent and a line
	// {"step":S,"eval":{...}} of the metrics file.
	EvalEvery int
	EvalN     int    // default 1000
	EvalSeed  uint64 // default 1
	Evaluator *Evaluator
	EvalTrain *project.Dataset
}

// WriteFailure is what the worker does when it cannot write a file.
type WriteFailure int

// The reactions to a failed write.
const (
	WriteFailStop WriteFailure = iota
	WriteFailPause
	WriteFailContinue
)

// State is the worker's run state.
type State int

// The worker's states.
const (
	Idle State = iota
	Running
	Paused
	Finished
)

func (s State) String() string {
	return [...]string{"idle", "running", "paused", "finished"}[s]
}

// Event is something the worker reports. The concrete types are
// ProgressEvent, PreviewEvent, StateEvent, CheckpointEvent and DoneEvent.
type Event interface{ isEvent() }

// LossPoint is the losses of one step.
type LossPoint struct {
	Step   int       `json:"step"`
	Losses []float64 `json:"losses"`
	LR     float64   `json:"lr,omitempty"` // the step's scheduled learning rate (0: the model has none)
}

// metricsLine is one step's line of metrics.jsonl.
type metricsLine struct {
	Step   int       `json:"step"`
	Time   float64   `json:"time"` // seconds since this run (or its resumption) started
	Losses []float64 `json:"losses"`
	LR     float64   `json:"lr,omitempty"`          // the learning rate of the step (the schedule's)
	Rate   float64   `json:"steps_per_s,omitempty"` // the smoothed training speed
}

// baseLR is the "lr" of m's config (0 when it has none).
func baseLR(m models.Model) float64 {
	var c struct {
		LR float64 `json:"lr"`
	}
	if b, err := json.Marshal(m.Config()); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	return c.LR
}

// ProgressEvent reports training progress with every loss since the last one.
type ProgressEvent struct {
	Step, Total, Epoch int
	LossNames          []string
	Points             []LossPoint
	StepsPerSec        float64
	ETA                time.Duration // 0 when unknown
}

// PreviewEvent carries the fixed-noise preview grid at Step, and for some
// families a second view: a VAE's reconstructions (real beside
// reconstructed), a diffusion model's denoising path (x_t at several t).
type PreviewEvent struct {
	Step     int
	Grid     *image.RGBA
	Aux      *image.RGBA // nil when the family has no second view
	AuxTitle string
}

// StateEvent reports a change of run state.
type StateEvent struct{ State State }

// CheckpointEvent reports a written checkpoint (or a failed write in Err;
// then Paused tells whether the worker paused for it).
type CheckpointEvent struct {
	Step   int
	Path   string
	Err    error
	Paused bool
}

// EvalEvent is a periodic evaluation's result (Err when it failed; the
// run goes on).
type EvalEvent struct {
	Step   int
	Report *Report
	Err    error
}

// WriteErrorEvent reports a preview or metrics file that could not be
// written (checkpoints report in CheckpointEvent). Paused tells whether
// the worker paused for it (Options.OnWriteError).
type WriteErrorEvent struct {
	Step   int
	What   string // "preview" or "metrics"
	Err    error
	Paused bool
}

// DoneEvent is the last event of a run. Err is nil for a finished or
// stopped run, and says why otherwise (a NaN loss, a graph error).
type DoneEvent struct {
	Step int
	Err  error
}

func (ProgressEvent) isEvent()   {}
func (PreviewEvent) isEvent()    {}
func (StateEvent) isEvent()      {}
func (CheckpointEvent) isEvent() {}
func (DoneEvent) isEvent()       {}
func (EvalEvent) isEvent()       {}
func (WriteErrorEvent) isEvent() {}

// Worker trains one model on one data set in its own goroutine. The worker
// goroutine owns the model while it runs; everything else talks to it with
// messages (Pause, Resume, Stop, Do).
type Worker struct {
	model  models.Model
	data   *project.Dataset
	opts   Options
	events chan Event
	cmds   chan func(models.Model)
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	state  State
	err    error
	step   int
	pause  chan bool
	// lastCkptStep is the step of the newest checkpoint written (or the
	// start step).
	lastCkptStep int
	// evals runs the periodic evaluations' metrics; metricsMu orders the
	// lines they and the loop write.
	evals     sync.WaitGroup
	metricsMu sync.Mutex
}

// NewWorker prepares a run. The model's image shape must match the data set's.
func NewWorker(m models.Model, data *project.Dataset, opts Options) (*Worker, error) {
	s := m.Shape()
	if data == nil || data.Len() == 0 {
		return nil, errors.New("no data set loaded")
	}
	if s.Width != data.Width || s.Height != data.Height || s.Channels != data.C() {
		return nil, fmt.Errorf("model makes %dx%dx%d images but the data set has %dx%dx%d images (conform it first)", s.Width, s.Height, s.Channels, data.Width, data.Height, data.C())
	}
	if err := checkLabels(m, data); err != nil {
		return nil, err
	}
	if opts.PreviewPeriod <= 0 {
		opts.PreviewPeriod = 2 * time.Second
	}
	if opts.CheckpointEvery <= 0 && opts.CheckpointSteps <= 0 {
		opts.CheckpointEvery = 5 * time.Minute
	}
	if opts.Keep <= 0 {
		opts.Keep = 3
	}
	if opts.ProgressPeriod <= 0 {
		opts.ProgressPeriod = 100 * time.Millisecond
	}
	if opts.PreviewSeed == 0 {
		opts.PreviewSeed = PreviewSeed(opts.Seed)
	}
	if opts.EvalN <= 0 {
		opts.EvalN = 1000
	}
	if opts.EvalSeed == 0 {
		opts.EvalSeed = 1
	}
	if opts.EvalTrain == nil {
		opts.EvalTrain = data
	}
	if opts.EvalEvery > 0 && opts.Evaluator != nil {
		if err := (EvalOptions{N: opts.EvalN, Evaluator: opts.Evaluator, Train: opts.EvalTrain}).check(s); err != nil {
			return nil, err
		}
	}
	return &Worker{
		model: m, data: data, opts: opts,
		events:       make(chan Event, 1024),
		cmds:         make(chan func(models.Model)),
		pause:        make(chan bool, 1),
		done:         make(chan struct{}),
		step:         opts.StartStep,
		lastCkptStep: opts.StartStep,
	}, nil
}

// Events is the worker's event stream. It is closed after the DoneEvent.
func (w *Worker) Events() <-chan Event { return w.events }

// State returns the current run state.
func (w *Worker) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// Step returns the number of steps done so far.
func (w *Worker) Step() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.step
}

// Start runs the training loop in a new goroutine until Steps are done, Stop
// is called, ctx ends or a step fails.
func (w *Worker) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.setState(Running)
	go w.run(ctx)
}

// Pause asks the worker to pause after the current step.
func (w *Worker) Pause() { w.sendPause(true) }

// Resume continues a paused run.
func (w *Worker) Resume() { w.sendPause(false) }

func (w *Worker) sendPause(p bool) {
	select {
	case <-w.pause: // replace an unread request with the newest one
	default:
	}
	select {
	case w.pause <- p:
	default:
	}
}

// Stop ends the run (writing a final checkpoint when CheckpointDir is set)
// and waits for the worker to finish.
func (w *Worker) Stop() error {
	if w.cancel != nil {
		w.cancel()
	}
	return w.Wait()
}

// Wait blocks until the worker goroutine has ended and returns its error.
func (w *Worker) Wait() error {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Done is closed when the worker goroutine has ended.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Do runs f with the model on the worker goroutine between two steps (also
// while paused) and waits for it. After the run has ended it calls f
// directly. Use it to sample or save a checkpoint during training.
func (w *Worker) Do(f func(models.Model)) {
	reply := make(chan struct{})
	select {
	case w.cmds <- func(m models.Model) { f(m); close(reply) }:
		<-reply
	case <-w.done:
		f(w.model)
	}
}

// SaveCheckpoint writes a checkpoint of the current state to path.
func (w *Worker) SaveCheckpoint(path string) error {
	var err error
	w.Do(func(m models.Model) { err = SaveCheckpoint(path, m, w.Info()) })
	return err
}

// Info is what a checkpoint of the current state records about the run.
func (w *Worker) Info() CheckpointInfo {
	o := w.opts
	return CheckpointInfo{Step: w.Step(), Seed: o.Seed, Dataset: w.data.Source, Run: &RunSettings{
		Steps: o.Steps, PreviewEvery: o.PreviewEvery, CheckpointSteps: o.CheckpointSteps, CheckpointEvery: o.CheckpointEvery.String(),
		Keep: o.Keep, Flip: o.Flip, EvalEvery: o.EvalEvery, EvalN: o.EvalN, EvalSeed: o.EvalSeed}}
}

func (w *Worker) setState(s State) {
	w.mu.Lock()
	w.state = s
	w.mu.Unlock()
	w.emit(StateEvent{State: s})
}

// emit sends an event that must arrive (it blocks while the buffer is full).
func (w *Worker) emit(e Event) { w.events <- e }

// offer sends an event if there is room, and reports whether it did.
func (w *Worker) offer(e Event) bool {
	if len(w.events) > cap(w.events)/2 {
		return false
	}
	select {
	case w.events <- e:
		return true
	default:
		return false
	}
}

// Batcher yields the batches of an epoch-wise shuffled data set: each epoch
// is a fresh permutation drawn from (seed, epoch), and the last incomplete
// batch is dropped, as PyTorch's DataLoader(drop_last=True) does.
type Batcher struct {
	data      *project.Dataset
	batch     int
	seed      uint64
	epoch     int
	perm      []int
	buf       []uint8
	labels    []int
	PerEpoch  int
	imageSize int
	// Flip mirrors each image of a batch left-right with probability ½,
	// drawn from (seed, step) so that runs stay reproducible.
	Flip bool
	w    int
	flip *rand.PCG
}

// NewBatcher prepares batches of size batch from data.
func NewBatcher(data *project.Dataset, batch int, seed uint64) (*Batcher, error) {
	if data.Len() < batch {
		return nil, fmt.Errorf("the data set has %d images, fewer than one batch of %d", data.Len(), batch)
	}
	size := data.ImageSize()
	return &Batcher{data: data, batch: batch, seed: seed, epoch: -1, PerEpoch: data.Len() / batch,
		imageSize: size, buf: make([]uint8, batch*size), w: data.Width, flip: rand.NewPCG(0, 0)}, nil
}

// Labels returns the class labels of the batch used at step (−1 where an
// image has none), in the batch's order (a reused buffer).
func (b *Batcher) Labels(step int) []int {
	if len(b.labels) != b.batch {
		b.labels = make([]int, b.batch)
	}
	for i, idx := range b.indices(step) {
		b.labels[i] = -1
		if idx < len(b.data.Labels) {
			b.labels[i] = b.data.Labels[idx]
		}
	}
	return b.labels
}

// indices are the data set's images of the batch at step: the epoch's
// permutation, drawn from (seed, epoch), in batch-sized slices.
func (b *Batcher) indices(step int) []int {
	epoch, k := step/b.PerEpoch, step%b.PerEpoch
	if epoch != b.epoch {
		rng := rand.New(rand.NewPCG(b.seed, uint64(epoch)^0xda7a5e7))
		b.perm = rng.Perm(b.data.Len())
		b.epoch = epoch
	}
	return b.perm[k*b.batch : (k+1)*b.batch]
}

// checkLabels refuses a conditional model whose classes the data set's
// labels do not fit.
func checkLabels(m models.Model, data *project.Dataset) error {
	lt, ok := m.(models.LabelledTrainer)
	if !ok || lt.Classes() == 0 {
		return nil
	}
	if len(data.Classes) == 0 {
		return fmt.Errorf("the model is conditional on %d classes, but the data set has no labels (use a folder with one sub-folder per class, or set Classes to 0)", lt.Classes())
	}
	if len(data.Classes) > lt.Classes() {
		return fmt.Errorf("the data set has %d classes, the model is conditional on %d: set Classes to %d", len(data.Classes), lt.Classes(), len(data.Classes))
	}
	return nil
}

// Batch returns the pixels of the batch used at step (a reused buffer).
func (b *Batcher) Batch(step int) []uint8 {
	for i, idx := range b.indices(step) {
		copy(b.buf[i*b.imageSize:], b.data.Image(idx))
	}
	if b.Flip {
		b.flip.Seed(b.seed^0xf11b, uint64(step))
		rng := rand.New(b.flip)
		for i := 0; i < b.batch; i++ {
			if rng.IntN(2) == 1 {
				mirror(b.buf[i*b.imageSize:(i+1)*b.imageSize], b.w)
			}
		}
	}
	return b.buf
}

// mirror flips an image (rows of width w, any number of planes) left-right.
func mirror(px []uint8, w int) {
	for row := 0; row+w <= len(px); row += w {
		r := px[row : row+w]
		for a, z := 0, w-1; a < z; a, z = a+1, z-1 {
			r[a], r[z] = r[z], r[a]
		}
	}
}

// StepRNG returns the random stream of one step: it depends only on (seed,
// step), so a run continued from a checkpoint draws exactly what an
// uninterrupted run would.
func StepRNG(src *rand.PCG, seed uint64, step int) *rand.Rand {
	src.Seed(seed, uint64(step)*0x9e3779b97f4a7c15+1)
	return rand.New(src)
}

// BatchSize reads a model's batch size from its configuration (64 when
// it has none).
func BatchSize(m models.Model) int {
	var c struct {
		Batch int `json:"batch"`
	}
	b, _ := json.Marshal(m.Config())
	_ = json.Unmarshal(b, &c)
	if c.Batch <= 0 {
		return 64
	}
	return c.Batch
}

func (w *Worker) run(ctx context.Context) {
	w.writeStatus(RunRunning, nil)
	err := w.loop(ctx)
	// A failed step (a NaN loss, say) may have left the weights half-updated:
	// then the last good checkpoint stays the newest one.
	if err == nil && w.opts.CheckpointDir != "" && w.Step() > w.lastCkptStep {
		_, err = w.checkpoint(nil)
	}
	w.mu.Lock()
	w.err = err
	w.state = Finished
	w.mu.Unlock()
	state := RunStopped
	switch {
	case Diverged(err):
		state = RunDiverged
	case err != nil:
		state = RunFailed
	case w.opts.Steps > 0 && w.Step() >= w.opts.Steps:
		state = RunFinished
	}
	w.writeStatus(state, err)
	w.emit(StateEvent{State: Finished})
	w.emit(DoneEvent{Step: w.Step(), Err: err})
	close(w.done)
	close(w.events)
}

// checkpoint writes the current state and prunes old checkpoints. A
// failed write is reported; under WriteFailPause the worker then waits for
// the user (stopped tells whether they stopped it), under
// WriteFailContinue it goes on, and under WriteFailStop the error ends the
// run.
// writeStatus records the run's state in RunDir's status.json, if set.
// It is a courtesy to readers (the Runs panel, `genstudio runs`): a failed
// write does not stop the run.
func (w *Worker) writeStatus(state string, err error) {
	if w.opts.RunDir == "" {
		return
	}
	st := RunStatus{State: state, Step: w.Step(), Steps: w.opts.Steps, PID: os.Getpid(), LossNames: w.model.LossNames()}
	if err != nil {
		st.Error = err.Error()
	}
	_ = WriteRunStatus(w.opts.RunDir, st)
}

// Diverged reports whether err is a training step's NaN or infinite loss
// or gradient: the run can be rolled back to its last checkpoint.
func Diverged(err error) bool {
	var nl *models.NonFiniteLossError
	var ng *models.NonFiniteGradientError
	return errors.As(err, &nl) || errors.As(err, &ng)
}

func (w *Worker) checkpoint(ctx context.Context) (stopped bool, err error) {
	path := filepath.Join(w.opts.CheckpointDir, CheckpointName(w.Step()))
	err = SaveCheckpoint(path, w.model, w.Info())
	if err == nil {
		w.lastCkptStep = w.Step()
		err = pruneCheckpoints(w.opts.CheckpointDir, w.opts.Keep)
	}
	pause := err != nil && w.opts.OnWriteError == WriteFailPause && ctx != nil
	w.emit(CheckpointEvent{Step: w.Step(), Path: path, Err: err, Paused: pause})
	return w.afterWriteError(ctx, err, pause)
}

// afterWriteError applies Options.OnWriteError to a failed write.
func (w *Worker) afterWriteError(ctx context.Context, err error, pause bool) (stopped bool, _ error) {
	switch {
	case err == nil:
		return false, nil
	case pause:
		return w.paused(ctx), nil
	case w.opts.OnWriteError == WriteFailContinue:
		return false, nil
	}
	return false, err
}

// writeFailed reports a failed preview or metrics write and applies
// Options.OnWriteError.
func (w *Worker) writeFailed(ctx context.Context, step int, what string, err error) (stopped bool, _ error) {
	pause := w.opts.OnWriteError == WriteFailPause
	if w.opts.OnWriteError != WriteFailStop {
		w.emit(WriteErrorEvent{Step: step, What: what, Err: err, Paused: pause})
	}
	return w.afterWriteError(ctx, err, pause)
}

func (w *Worker) preview(step int, z []float32, real []uint8) error {
	grid, aux, auxTitle, err := Preview(w.model, z, real)
	if err != nil {
		return err
	}
	ev := PreviewEvent{Step: step, Grid: grid, Aux: aux, AuxTitle: auxTitle}
	w.offer(ev)
	// Saved to disk: the start, every PreviewEvery steps and the last step
	// (previews in between, by time, are only shown).
	o := w.opts
	save := o.PreviewEvery <= 0 || step%o.PreviewEvery == 0 || step == o.Steps || step == o.StartStep
	if o.PreviewDir != "" && save {
		p, err := NewProvenance(KindPreview, w.model, "", step, nil)
		if err != nil {
			return err
		}
		p.Seed, p.N = w.opts.PreviewSeed, len(z)/w.model.NoiseDim()
		p.Cols = GridCols(p.N)
		if err := WritePNGWith(filepath.Join(w.opts.PreviewDir, PreviewName(step)), ev.Grid, p); err != nil {
			return fmt.Errorf("%w: %w", errPreviewWrite, err)
		}
	}
	return nil
}

func (w *Worker) loop(ctx context.Context) error {
	batcher, err := NewBatcher(w.data, BatchSize(w.model), w.opts.Seed)
	if err != nil {
		return err
	}
	batcher.Flip = w.opts.Flip
	if w.opts.PreviewDir != "" {
		if err := os.MkdirAll(w.opts.PreviewDir, 0o755); err != nil {
			return fmt.Errorf("preview folder: %w", err)
		}
	}
	var metrics *os.File
	if w.opts.MetricsPath != "" {
		// A run continued from a checkpoint redoes the steps after it: their
		// old lines and previews go, so the history has each step once.
		if err := TruncateRun(w.opts.MetricsPath, w.opts.PreviewDir, w.opts.StartStep); err != nil {
			return err
		}
		if metrics, err = os.OpenFile(w.opts.MetricsPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return fmt.Errorf("metrics file: %w", err)
		}
		defer metrics.Close()
	}
	defer w.evals.Wait() // before the metrics file closes
	z := PreviewNoise(w.model, w.opts.PreviewSeed)
	names := w.model.LossNames()
	src := rand.NewPCG(0, 0)
	var pending []LossPoint
	lr0 := baseLR(w.model)
	start := time.Now()
	lastPreview, lastProgress, lastCkpt := time.Time{}, time.Now(), time.Now()
	rate := 0.0
	rateStep, rateTime := w.Step(), time.Now()
	sendProgress := func(step int) {
		ev := ProgressEvent{Step: step, Total: w.opts.Steps, Epoch: step / batcher.PerEpoch, LossNames: names, Points: pending, StepsPerSec: rate}
		if rate > 0 && w.opts.Steps > 0 {
			ev.ETA = time.Duration(float64(w.opts.Steps-step) / rate * float64(time.Second))
		}
		if w.offer(ev) {
			pending = nil
		}
		lastProgress = time.Now()
	}
	// Real images for views that need them (a VAE's reconstructions).
	real := append([]uint8(nil), batcher.Batch(0)[:min(16, BatchSize(w.model))*w.data.ImageSize()]...)
	// Previews may cost at most about 3 % of the time: the wait before the
	// next one is at least 32 times what the last one took.
	previewGap := w.opts.PreviewPeriod
	doPreview := func(step int) error {
		t0 := time.Now()
		if err := w.preview(step, z, real); err != nil {
			return err
		}
		lastPreview = time.Now()
		previewGap = max(w.opts.PreviewPeriod, 32*lastPreview.Sub(t0))
		return nil
	}
	previewOrFail := func(step int) (stop bool, err error) {
		if err := doPreview(step); err != nil {
			if !errors.Is(err, errPreviewWrite) {
				return false, err
			}
			lastPreview = time.Now()
			return w.writeFailed(ctx, step, "preview", err)
		}
		return false, nil
	}
	if stop, err := previewOrFail(w.Step()); err != nil || stop {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			sendProgress(w.Step())
			return nil
		case f := <-w.cmds:
			f(w.model)
			continue
		case p := <-w.pause:
			if p {
				sendProgress(w.Step())
				if stopped := w.paused(ctx); stopped {
					return nil
				}
				rateStep, rateTime = w.Step(), time.Now()
			}
			continue
		default:
		}
		step := w.Step()
		if w.opts.Steps > 0 && step >= w.opts.Steps {
			sendProgress(step)
			return nil
		}
		lr := lr0 * models.ApplyLRSchedule(w.model, step, w.opts.Steps)
		var losses []float64
		if lt, ok := w.model.(models.LabelledTrainer); ok && lt.Classes() > 0 {
			losses, err = lt.TrainStepLabels(batcher.Batch(step), batcher.Labels(step), StepRNG(src, w.opts.Seed, step))
		} else {
			losses, err = w.model.TrainStep(batcher.Batch(step), StepRNG(src, w.opts.Seed, step))
		}
		if err != nil {
			sendProgress(step)
			return fmt.Errorf("step %d: %w", step+1, err)
		}
		step++
		w.mu.Lock()
		w.step = step
		w.mu.Unlock()
		pending = append(pending, LossPoint{Step: step, Losses: losses, LR: lr})
		if w.opts.AfterStep != nil {
			w.opts.AfterStep(step)
		}
		if err := w.writeMetrics(metrics, metricsLine{Step: step, Time: time.Since(start).Seconds(), Losses: losses, LR: lr, Rate: rate}); err != nil {
			if stop, err := w.writeFailed(ctx, step, "metrics", err); err != nil || stop {
				return err
			}
		}
		now := time.Now()
		if dt := now.Sub(rateTime).Seconds(); dt >= 0.5 {
			r := float64(step-rateStep) / dt
			if rate == 0 {
				rate = r
			} else {
				rate = 0.7*rate + 0.3*r
			}
			rateStep, rateTime = step, now
		} else if rate == 0 && step > w.opts.StartStep {
			rate = float64(step-w.opts.StartStep) / now.Sub(start).Seconds()
		}
		if now.Sub(lastProgress) >= w.opts.ProgressPeriod || (w.opts.Steps > 0 && step == w.opts.Steps) {
			sendProgress(step)
		}
		// Every N steps too, unless previews are slow enough to be throttled.
		everyN := w.opts.PreviewEvery > 0 && step%w.opts.PreviewEvery == 0 && now.Sub(lastPreview) >= previewGap-w.opts.PreviewPeriod
		if everyN || now.Sub(lastPreview) >= previewGap || (w.opts.Steps > 0 && step == w.opts.Steps) {
			if stop, err := previewOrFail(step); err != nil || stop {
				return err
			}
		}
		if w.opts.EvalEvery > 0 && w.opts.Evaluator != nil && step%w.opts.EvalEvery == 0 {
			if err := w.evaluate(ctx, step, metrics); err != nil {
				return err
			}
		}
		byTime := w.opts.CheckpointEvery > 0 && now.Sub(lastCkpt) >= w.opts.CheckpointEvery
		bySteps := w.opts.CheckpointSteps > 0 && step%w.opts.CheckpointSteps == 0
		if w.opts.CheckpointDir != "" && (byTime || bySteps) {
			stop, err := w.checkpoint(ctx)
			if err != nil || stop {
				return err
			}
			lastCkpt = time.Now()
		}
	}
}

// paused blocks until Resume or the end of the run, serving commands. It
// reports whether the run was stopped.
func (w *Worker) paused(ctx context.Context) bool {
	w.setState(Paused)
	for {
		select {
		case <-ctx.Done():
			return true
		case f := <-w.cmds:
			f(w.model)
		case p := <-w.pause:
			if !p {
				w.setState(Running)
				return false
			}
		}
	}
}

// writeMetrics appends v as one JSON line to the metrics file, if any.
func (w *Worker) writeMetrics(f *os.File, v any) error {
	if f == nil {
		return nil
	}
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.metricsMu.Lock()
	defer w.metricsMu.Unlock()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// evaluate draws the periodic evaluation's samples (after the previous
// evaluation has finished) and scores them on another goroutine.
func (w *Worker) evaluate(ctx context.Context, step int, metrics *os.File) error {
	w.evals.Wait()
	o := w.opts
	images, err := SampleForEval(ctx, w.model, nil, o.EvalN, o.EvalSeed, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		w.emit(EvalEvent{Step: step, Err: err})
		return nil
	}
	shape, name := w.model.Shape(), ModelName(w.model)
	w.evals.Add(1)
	go func() {
		defer w.evals.Done()
		r, err := EvaluateImages(ctx, images, shape, EvalOptions{N: o.EvalN, Seed: o.EvalSeed, Evaluator: o.Evaluator, Train: o.EvalTrain})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.Model, r.Step, r.Source = name, step, fmt.Sprintf("training (%s, step %d)", name, step)
			err = w.writeMetrics(metrics, struct {
				Step int     `json:"step"`
				Eval *Report `json:"eval"`
			}{step, r})
		}
		w.emit(EvalEvent{Step: step, Report: r, Err: err})
	}()
	return nil
}
