package training_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

var (
	mnistOnce sync.Once
	mnist     *project.Dataset
	mnistErr  error
)

func loadMNIST(t testing.TB) *project.Dataset {
	t.Helper()
	mnistOnce.Do(func() { mnist, mnistErr = project.LoadMNIST() })
	if mnistErr != nil {
		t.Fatal(mnistErr)
	}
	return mnist
}

func smallGAN(t testing.TB, seed uint64) models.Model {
	t.Helper()
	c := models.DefaultGANConfig()
	c.GHidden, c.DHidden, c.Batch, c.Seed = []int{64, 128}, []int{128, 64}, 32, seed
	m, err := models.NewGAN(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// drain collects a run's events until the DoneEvent.
func drain(w *training.Worker) (losses []training.LossPoint, previews int, states []training.State, done training.DoneEvent) {
	for ev := range w.Events() {
		switch e := ev.(type) {
		case training.ProgressEvent:
			losses = append(losses, e.Points...)
		case training.PreviewEvent:
			previews++
		case training.StateEvent:
			states = append(states, e.State)
		case training.DoneEvent:
			done = e
		}
	}
	return
}

func train(t *testing.T, m models.Model, opts training.Options) []training.LossPoint {
	t.Helper()
	w, err := training.NewWorker(m, loadMNIST(t).Subset(4096), opts)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	losses, _, _, done := drain(w)
	if done.Err != nil {
		t.Fatal(done.Err)
	}
	return losses
}

func weights(m models.Model) [][]float32 {
	var out [][]float32
	for _, nt := range m.State() {
		if d, ok := nt.T.Data().(int64); ok { // num_batches_tracked
			out = append(out, []float32{float32(d)})
			continue
		}
		out = append(out, slices.Clone(nt.T.Data().([]float32)))
	}
	return out
}

func sameWeights(a, b [][]float32) bool {
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestSeedGANLossesOn200MNISTSteps trains the full seed GAN for 200 steps and
// checks the losses behave as a working GAN's do: they start at the
// chance values (D: 2 ln 2, G: ln 2), stay finite, and D gains the upper hand
// (its loss falls, G's rises) as it does in the PyTorch reference.
func TestSeedGANLossesOn200MNISTSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("200 full-size steps")
	}
	m, err := models.NewGAN(models.DefaultGANConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	losses := train(t, m, training.Options{Steps: 200, Seed: 1})
	if len(losses) != 200 {
		t.Fatalf("got %d loss points, want 200", len(losses))
	}
	mean := func(from, to, k int) float64 {
		s := 0.0
		for _, p := range losses[from:to] {
			s += p.Losses[k]
		}
		return s / float64(to-from)
	}
	for _, p := range losses {
		for _, v := range p.Losses {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("step %d: loss %v", p.Step, v)
			}
		}
	}
	d0, g0 := losses[0].Losses[0], losses[0].Losses[1]
	if math.Abs(d0-2*math.Ln2) > 0.15 || math.Abs(g0-math.Ln2) > 0.15 {
		t.Errorf("first step losses D %.3f G %.3f, want near %.3f and %.3f", d0, g0, 2*math.Ln2, math.Ln2)
	}
	dEnd, gEnd := mean(150, 200, 0), mean(150, 200, 1)
	t.Logf("mean losses over steps 151-200: D %.3f G %.3f", dEnd, gEnd)
	if dEnd > 1.2 {
		t.Errorf("D loss did not fall: %.3f", dEnd)
	}
	if gEnd < 1.0 {
		t.Errorf("G loss did not rise as D learned: %.3f", gEnd)
	}
}

func TestSameSeedSameRun(t *testing.T) {
	a, b := smallGAN(t, 5), smallGAN(t, 5)
	la := train(t, a, training.Options{Steps: 30, Seed: 5})
	lb := train(t, b, training.Options{Steps: 30, Seed: 5})
	if !sameWeights(weights(a), weights(b)) {
		t.Fatal("same seed, different weights")
	}
	for i := range la {
		if !slices.Equal(la[i].Losses, lb[i].Losses) {
			t.Fatalf("step %d: losses %v vs %v", la[i].Step, la[i].Losses, lb[i].Losses)
		}
	}
}

// smallModel builds a small model of each family with the given seed.
var smallModel = map[string]func(t testing.TB, seed uint64) models.Model{
	"gan": smallGAN,
	"vae": func(t testing.TB, seed uint64) models.Model {
		c := models.DefaultVAEConfig()
		c.Hidden, c.Batch, c.Seed, c.WarmupSteps = 32, 32, seed, 30
		return mustModel[*models.VAE](t)(models.NewVAE(c))
	},
	"ddpm": func(t testing.TB, seed uint64) models.Model {
		c := models.DefaultDDPMConfig()
		c.Hidden, c.TEmb, c.Batch, c.Seed, c.SampleSteps = 32, 16, 32, seed, 4
		return mustModel[*models.DDPM](t)(models.NewDDPM(c))
	},
}

func mustModel[M models.Model](t testing.TB) func(M, error) models.Model {
	return func(m M, err error) models.Model {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
}

// TestCheckpointContinuesIdentically: for every family, 20 steps,
// checkpoint, load, 20 more must equal 40 uninterrupted steps bit for bit.
func TestCheckpointContinuesIdentically(t *testing.T) {
	for _, fam := range models.Families {
		t.Run(fam, func(t *testing.T) { checkpointContinues(t, smallModel[fam]) })
	}
}

func checkpointContinues(t *testing.T, newModel func(testing.TB, uint64) models.Model) {
	dir := t.TempDir()
	whole := newModel(t, 9)
	train(t, whole, training.Options{Steps: 40, Seed: 9})

	first := newModel(t, 9)
	train(t, first, training.Options{Steps: 20, Seed: 9, CheckpointDir: dir})
	cks, err := training.ListCheckpoints(dir)
	if err != nil || len(cks) != 1 {
		t.Fatalf("checkpoints %v, %v", cks, err)
	}
	ck, err := training.LoadCheckpoint(cks[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Model.Close()
	if ck.Info.Step != 20 || ck.Info.Seed != 9 || ck.Info.Family != first.Family() {
		t.Fatalf("checkpoint info %+v", ck.Info)
	}
	if !sameWeights(weights(first), weights(ck.Model)) {
		t.Fatal("loaded weights differ from saved ones")
	}
	train(t, ck.Model, training.Options{Steps: 40, Seed: ck.Info.Seed, StartStep: ck.Info.Step})
	if !sameWeights(weights(whole), weights(ck.Model)) {
		t.Fatal("continued run differs from the uninterrupted one")
	}
}

func TestPauseResumeStop(t *testing.T) {
	m := smallGAN(t, 3)
	w, err := training.NewWorker(m, loadMNIST(t).Subset(2048), training.Options{Seed: 3, CheckpointDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	evs := make(chan training.Event, 4096)
	go func() {
		for e := range w.Events() {
			evs <- e
		}
		close(evs)
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("5 steps", func() bool { return w.Step() >= 5 })
	w.Pause()
	waitFor("pause", func() bool { return w.State() == training.Paused })
	at := w.Step()
	time.Sleep(200 * time.Millisecond)
	if w.Step() != at {
		t.Fatalf("paused worker went on: %d -> %d", at, w.Step())
	}
	// Commands still run while paused.
	var sampled []float32
	w.Do(func(m models.Model) { sampled, err = m.Sample(models.NoiseFromSeed(2, m.NoiseDim(), 1)) })
	if err != nil || len(sampled) != 2*784 {
		t.Fatalf("sampling while paused: %v, %d values", err, len(sampled))
	}
	w.Resume()
	waitFor("steps after resume", func() bool { return w.Step() > at+3 })
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if w.State() != training.Finished {
		t.Fatalf("state after stop: %v", w.State())
	}
	var states []training.State
	var ckpt, done bool
	for e := range evs {
		switch e := e.(type) {
		case training.StateEvent:
			states = append(states, e.State)
		case training.CheckpointEvent:
			ckpt = e.Err == nil && e.Step == w.Step()
			if _, err := os.Stat(e.Path); err != nil {
				t.Fatal(err)
			}
		case training.DoneEvent:
			done = e.Err == nil
		}
	}
	want := []training.State{training.Running, training.Paused, training.Running, training.Finished}
	if !slices.Equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	if !ckpt || !done {
		t.Fatalf("stop wrote checkpoint: %v, done cleanly: %v", ckpt, done)
	}
}

func TestPreviewsAndMetricsFiles(t *testing.T) {
	dir := t.TempDir()
	m := smallGAN(t, 4)
	w, err := training.NewWorker(m, loadMNIST(t).Subset(1024), training.Options{Steps: 10, Seed: 4, PreviewEvery: 5,
		PreviewDir: filepath.Join(dir, "samples"), MetricsPath: filepath.Join(dir, "metrics.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	_, previews, _, done := drain(w)
	if done.Err != nil {
		t.Fatal(done.Err)
	}
	if previews < 3 { // step 0, 5, 10
		t.Fatalf("%d previews", previews)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "samples", "preview-*.png"))
	if len(files) < 3 {
		t.Fatalf("preview files %v", files)
	}
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil || len(b) == 0 {
		t.Fatalf("metrics: %v", err)
	}
}

// TestEveryFamilyTrainsAt32x32RGB: channels and size are settings.
func TestEveryFamilyTrainsAt32x32RGB(t *testing.T) {
	data, err := loadMNIST(t).Subset(256).Conform(32, 3)
	if err != nil {
		t.Fatal(err)
	}
	for fam, cfg := range map[string]string{
		"gan":  `{"width":32,"height":32,"channels":3,"g_hidden":[32],"d_hidden":[32],"batch":16}`,
		"vae":  `{"width":32,"height":32,"channels":3,"hidden":32,"batch":16}`,
		"ddpm": `{"width":32,"height":32,"channels":3,"hidden":32,"temb":16,"batch":16,"sample_steps":3}`,
	} {
		t.Run(fam, func(t *testing.T) {
			m, err := models.New(fam, []byte(cfg))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			w, err := training.NewWorker(m, data, training.Options{Steps: 4, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			w.Start(context.Background())
			var grid *training.PreviewEvent
			for ev := range w.Events() {
				switch e := ev.(type) {
				case training.PreviewEvent:
					grid = &e
				case training.DoneEvent:
					if e.Err != nil {
						t.Fatal(e.Err)
					}
				}
			}
			if grid == nil || grid.Grid.Bounds().Dx() != 8*32+9*training.GridGutter {
				t.Fatalf("preview %v", grid)
			}
			// Colour samples are not gray: some pixel has R != G.
			colour := false
			for i := 0; i+3 < len(grid.Grid.Pix) && !colour; i += 4 {
				colour = grid.Grid.Pix[i] != grid.Grid.Pix[i+1]
			}
			if !colour {
				t.Fatal("RGB model drew a gray grid")
			}
		})
	}
	// A model of another shape is refused with a clear message.
	m := smallGAN(t, 1)
	if _, err := training.NewWorker(m, data, training.Options{}); err == nil || !strings.Contains(err.Error(), "conform") {
		t.Fatalf("shape mismatch: %v", err)
	}
}

func TestBatcherFlip(t *testing.T) {
	d := loadMNIST(t).Subset(64)
	plain, _ := training.NewBatcher(d, 32, 3)
	flipped, _ := training.NewBatcher(d, 32, 3)
	flipped.Flip = true
	a := slices.Clone(plain.Batch(5))
	b := slices.Clone(flipped.Batch(5))
	c := slices.Clone(flipped.Batch(5))
	if !slices.Equal(b, c) {
		t.Fatal("flips are not reproducible")
	}
	mirrored, same := 0, 0
	for i := 0; i < 32; i++ {
		img, got := a[i*784:(i+1)*784], b[i*784:(i+1)*784]
		if slices.Equal(img, got) {
			same++
			continue
		}
		for y := 0; y < 28; y++ {
			for x := 0; x < 28; x++ {
				if img[y*28+x] != got[y*28+27-x] {
					t.Fatalf("image %d is neither itself nor its mirror", i)
				}
			}
		}
		mirrored++
	}
	if mirrored < 6 || same < 6 {
		t.Fatalf("%d mirrored, %d unchanged of 32", mirrored, same)
	}
}

// TestPeriodicEvaluation: with EvalEvery set, the worker scores its model
// every N steps beside training, sends each result as an EvalEvent in step
// order before the DoneEvent, and writes it to the metrics file.
func TestPeriodicEvaluation(t *testing.T) {
	dir := t.TempDir()
	ev, err := training.MNISTEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	m := smallGAN(t, 4)
	metricsPath := filepath.Join(dir, "metrics.jsonl")
	w, err := training.NewWorker(m, loadMNIST(t).Subset(512), training.Options{Steps: 6, Seed: 4,
		MetricsPath: metricsPath, EvalEvery: 3, EvalN: 256, Evaluator: ev})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	var steps []int
	doneSeen := false
	for e := range w.Events() {
		switch e := e.(type) {
		case training.EvalEvent:
			if doneSeen {
				t.Error("an evaluation came after the DoneEvent")
			}
			if e.Err != nil {
				t.Fatal(e.Err)
			}
			if e.Report.N != 256 || e.Report.Step != e.Step || e.Report.Evaluator != ev.ID() {
				t.Errorf("evaluation at step %d: %+v", e.Step, e.Report)
			}
			steps = append(steps, e.Step)
		case training.DoneEvent:
			doneSeen = true
			if e.Err != nil {
				t.Fatal(e.Err)
			}
		}
	}
	if !slices.Equal(steps, []int{3, 6}) {
		t.Fatalf("evaluations at steps %v, want [3 6]", steps)
	}
	b, err := os.ReadFile(metricsPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"eval":{`); n != 2 {
		t.Errorf("metrics file has %d evaluation lines, want 2", n)
	}
	// Too few images for the metrics is refused before the run starts.
	if _, err := training.NewWorker(m, loadMNIST(t).Subset(100), training.Options{Steps: 1, EvalEvery: 1, EvalN: 256, Evaluator: ev}); err == nil {
		t.Error("a 100-image data set was accepted for evaluations of 256 samples")
	}
}

// TestConditionalNeedsLabels: a conditional model refuses a data set
// without labels, or with more classes than it has.
func TestConditionalNeedsLabels(t *testing.T) {
	c := models.DefaultDDPMConfig()
	c.Hidden, c.Batch, c.Classes = 8, 4, 2
	m, err := models.NewDDPM(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := &project.Dataset{Width: 28, Height: 28, Channels: 1, Pixels: make([]uint8, 8*784)}
	if _, err := training.NewWorker(m, d, training.Options{Steps: 1}); err == nil || !strings.Contains(err.Error(), "no labels") {
		t.Errorf("unlabelled data: %v", err)
	}
	d.Classes, d.Labels = []string{"a", "b", "c"}, []int{0, 1, 2, 0, 1, 2, 0, 1}
	if _, err := training.NewWorker(m, d, training.Options{Steps: 1}); err == nil || !strings.Contains(err.Error(), "set Classes to 3") {
		t.Errorf("three classes: %v", err)
	}
	d.Classes, d.Labels = []string{"a", "b"}, []int{0, 1, 1, 0, 1, 0, 0, 1}
	w, err := training.NewWorker(m, d, training.Options{Steps: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(t.Context())
	for range w.Events() {
	}
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	// Each image's pixels hold its index: the batch's labels must be theirs.
	for j := 0; j < d.Len(); j++ {
		for k := 0; k < 784; k++ {
			d.Pixels[j*784+k] = uint8(j)
		}
	}
	b, _ := training.NewBatcher(d, 4, 1)
	for step := 0; step < 4; step++ {
		labels := b.Labels(step)
		px := b.Batch(step)
		for i, l := range labels {
			if want := d.Labels[px[i*784]]; l != want {
				t.Fatalf("step %d image %d: label %d, its image's is %d", step, i, l, want)
			}
		}
	}
}

// TestMetricsLines: each step's line has its time and the scheduled
// learning rate (here linear to 0 over 10 steps).
func TestMetricsLines(t *testing.T) {
	dir := t.TempDir()
	c := models.DefaultGANConfig()
	c.GHidden, c.DHidden, c.Batch, c.LRSchedule = []int{16}, []int{16}, 8, models.LRSchedule{Schedule: models.LRLinear}
	m, err := models.NewGAN(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := filepath.Join(dir, "metrics.jsonl")
	w, err := training.NewWorker(m, loadMNIST(t).Subset(256), training.Options{Steps: 10, MetricsPath: path})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	if _, _, _, done := drain(w); done.Err != nil {
		t.Fatal(done.Err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		Step   int       `json:"step"`
		Time   float64   `json:"time"`
		Losses []float64 `json:"losses"`
		LR     float64   `json:"lr"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, v)
	}
	if len(lines) != 10 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		want := c.LR * (1 - float64(i)/10)
		if l.Step != i+1 || math.Abs(l.LR-want) > 1e-12 || len(l.Losses) != 2 || l.Time <= 0 || (i > 0 && l.Time < lines[i-1].Time) {
			t.Fatalf("line %d: %+v, want lr %g", i, l, want)
		}
	}
}
