package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/genstudio/genstudio/training"
)

// cmdLab is `genstudio lab`: the 2-D mode-collapse protocol (VEEGAN,
// PacGAN) for the named techniques, seeds 1..N.
func cmdLab(args []string) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	data := fs.String("data", "ring8", "2-D data set: ring8 or grid25")
	techniques := fs.String("technique", "plain", "technique(s), comma-separated: plain, recommended, or models' techniques (hinge, lsgan, ttur, pacgan2, pacgan4, sn, lrdecay, topk, drs; a+b)")
	seeds := fs.Int("seeds", 10, "runs per technique, seeds 1..N")
	steps := fs.Int("steps", training.LabDefaultSteps, "training steps of each run")
	asJSON := fs.Bool("json", false, "one JSON line per seed: technique, seed, modes, high_quality")
	samplesOut := fs.String("samples-out", "", "write each seed's final samples as seed,x,y rows (CSV) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seeds < 1 || *steps < 1 {
		return errors.New("--seeds and --steps must be at least 1")
	}
	mix, err := training.MixtureByName(*data)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var csv *bufio.Writer
	if *samplesOut != "" {
		f, err := os.Create(*samplesOut)
		if err != nil {
			return err
		}
		defer f.Close()
		csv = bufio.NewWriter(f)
		defer csv.Flush()
		fmt.Fprintln(csv, "seed,x,y")
	}
	for _, tech := range strings.Split(*techniques, ",") {
		tech = strings.TrimSpace(tech)
		var modes, hq []float64
		start := time.Now()
		for s := 1; s <= *seeds; s++ {
			cfg, err := training.LabConfig(tech, uint64(s))
			if err != nil {
				return err
			}
			r, err := training.RunLab(ctx, mix, cfg, *steps, 0, nil)
			if err != nil {
				return fmt.Errorf("%s seed %d: %w", tech, s, err)
			}
			modes, hq = append(modes, float64(r.Modes)), append(hq, r.HighQuality)
			if *asJSON {
				b, _ := json.Marshal(struct {
					Technique string `json:"technique"`
					Data      string `json:"data"`
					*training.LabResult
				}{tech, mix.Name, r})
				fmt.Println(string(b))
			}
			if csv != nil {
				for i := 0; i+1 < len(r.Samples); i += 2 {
					fmt.Fprintf(csv, "%d,%g,%g\n", s, r.Samples[i], r.Samples[i+1])
				}
			}
		}
		if !*asJSON {
			mm, ms := meanStd(modes)
			hm, hs := meanStd(hq)
			fmt.Printf("%s on %s, %d seeds of %d steps: modes %.2f ± %.2f of %d, high quality %.1f %% ± %.1f (%.0f s)\n",
				tech, mix.Name, *seeds, *steps, mm, ms, len(mix.Centres)/2, 100*hm, 100*hs, time.Since(start).Seconds())
		}
	}
	return nil
}
