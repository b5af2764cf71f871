package training_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// resumeVariants are small models of every family and architecture with
// the trainer's aids switched on: EMA, a schedule that decays to the last
// step, gradient clipping.
var resumeVariants = []struct{ family, config string }{
	{"gan", `{"g_hidden":[32],"d_hidden":[32],"batch":16,"ema":0.9,"lr_schedule":"cosine","lr_warmup":2,"clip":0.5,"diff_augment":true,"pack":2}`},
	{"gan", `{"arch":"conv","latent":8,"g_features":8,"d_features":8,"batch":8,"ema":0.9,"lr_schedule":"cosine","clip":0.5,"spectral_norm":true,"diff_augment":true}`},
	{"vae", `{"hidden":32,"batch":16,"lr_schedule":"linear","clip":1,"ema":0.9}`},
	{"vae", `{"arch":"conv","features":4,"batch":8,"lr_schedule":"cosine","clip":1,"ema":0.9}`},
	{"ddpm", `{"hidden":32,"temb":16,"batch":16,"sample_steps":4,"ema":0.9,"clip":1,"lr_schedule":"warmup"}`},
	{"ddpm", `{"arch":"conv","features":8,"batch":8,"sample_steps":2,"ema":0.9,"clip":1,"lr_schedule":"cosine"}`},
}

// TestStopAndResumeIsExact: for every variant, N steps straight and N/2
// steps, a stop, and a resume from the stop's checkpoint with the settings
// it keeps give bit-identical weights, averages and optimizer moments, and
// the resumed run's metrics file holds each step once.
func TestStopAndResumeIsExact(t *testing.T) {
	const n = 12
	data := loadMNIST(t).Subset(512)
	for _, v := range resumeVariants {
		t.Run(v.family+"/"+models.ArchOf([]byte(v.config)), func(t *testing.T) {
			build := func() models.Model {
				m, err := models.New(v.family, []byte(v.config))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				return m
			}
			opts := func(dir string) training.Options {
				return training.Options{Steps: n, Seed: 4, Flip: true, PreviewEvery: 3, CheckpointSteps: 4, Keep: 2,
					RunDir: dir, PreviewDir: filepath.Join(dir, training.SamplesFolder), CheckpointDir: filepath.Join(dir, training.CkptFolder),
					MetricsPath: filepath.Join(dir, training.MetricsFile)}
			}
			run := func(m models.Model, o training.Options) training.DoneEvent {
				w, err := training.NewWorker(m, data, o)
				if err != nil {
					t.Fatal(err)
				}
				w.Start(context.Background())
				_, _, _, done := drain(w)
				if done.Err != nil {
					t.Fatal(done.Err)
				}
				return done
			}
			whole := build()
			wholeDir := t.TempDir()
			run(whole, opts(wholeDir))

			dir := t.TempDir()
			first := build()
			o := opts(dir)
			ctx, cancel := context.WithCancel(context.Background())
			o.AfterStep = func(step int) {
				if step == n/2 {
					cancel() // the user presses Stop after step n/2
				}
			}
			w, err := training.NewWorker(first, data, o)
			if err != nil {
				t.Fatal(err)
			}
			w.Start(ctx)
			if _, _, _, done := drain(w); done.Err != nil || done.Step != n/2 {
				t.Fatalf("stopped at %d (%v), want %d", done.Step, done.Err, n/2)
			}
			if st := training.ReadRunStatus(dir); st.State != training.RunStopped || st.Step != n/2 {
				t.Fatalf("status after the stop: %+v", st)
			}
			ck, err := training.LoadCheckpoint(filepath.Join(dir, training.CkptFolder, training.CheckpointName(n/2)))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Model.Close()
			ro := opts(dir)
			ro.Steps, ro.Flip, ro.PreviewEvery, ro.CheckpointSteps = 0, false, 0, 0
			ck.Info.Run.Apply(&ro)
			if ro.Steps != n || !ro.Flip || ro.PreviewEvery != 3 || ro.CheckpointSteps != 4 {
				t.Fatalf("the checkpoint kept run settings %+v", *ck.Info.Run)
			}
			ro.StartStep, ro.Seed = ck.Info.Step, ck.Info.Seed
			run(ck.Model, ro)
			if !sameWeights(weights(whole), weights(ck.Model)) {
				t.Fatal("stop + resume differs from the uninterrupted run")
			}
			recs, err := training.ReadMetrics(filepath.Join(dir, training.MetricsFile))
			if err != nil {
				t.Fatal(err)
			}
			wrecs, _ := training.ReadMetrics(filepath.Join(wholeDir, training.MetricsFile))
			if len(recs) != n || len(wrecs) != n {
				t.Fatalf("metrics lines: %d resumed, %d whole, want %d", len(recs), len(wrecs), n)
			}
			for i := range recs {
				if recs[i].Step != i+1 || !slices.Equal(recs[i].Losses, wrecs[i].Losses) || recs[i].LR != wrecs[i].LR {
					t.Fatalf("metrics line %d: %+v, the uninterrupted run's %+v", i, recs[i], wrecs[i])
				}
			}
			prev, _ := training.ListPreviews(filepath.Join(dir, training.SamplesFolder))
			var steps []int
			for _, p := range prev {
				steps = append(steps, p.Step)
			}
			// Every-3-steps previews (slow ones may be throttled), the start and the end.
			if len(steps) < 2 || steps[0] != 0 || steps[len(steps)-1] != n || !slices.IsSorted(steps) || slices.ContainsFunc(steps, func(s int) bool { return s%3 != 0 }) {
				t.Fatalf("previews at steps %v", steps)
			}
		})
	}
}
