// Command genstudio is Gen Studio: with no arguments it opens the studio
// window; with a subcommand it works headless on the same library.
//
//	genstudio                       open the studio
//	genstudio train  --data mnist|DIR --steps N --seed S --out DIR
//	genstudio sample --checkpoint FILE --n 64 --seed S --out grid.png
//	genstudio sample --from IMAGE.png      redraw an image from its provenance
//	genstudio info IMAGE.png
//	genstudio interpolate --checkpoint FILE --from-seed A --to-seed B --frames N --out strip.png [--gif walk.gif]
//	genstudio eval   --checkpoint FILE | --images PATH [--n N] [--seed S] [--json]
//	genstudio evaluator train --out FILE
//	genstudio bench  [--steps N] [--reps N] [--models gan,vae,ddpm,gan/conv,ddpm/unet] [--json] [--torch=false] [--memory N] [--ui]
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/genstudio/genstudio/app"
	_ "github.com/genstudio/genstudio/internal/posixlocale" // before Fyne reads the locale
)

func main() {
	if len(os.Args) > 1 {
		if cmd, ok := commands[os.Args[1]]; ok {
			if err := cmd(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "genstudio "+os.Args[1]+":", err)
				var ee *exitError
				if errors.As(err, &ee) {
					os.Exit(ee.code)
				}
				os.Exit(1)
			}
			return
		}
		switch os.Args[1] {
		case "-h", "--help", "help":
			usage()
			return
		}
	}
	if err := app.Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genstudio:", err)
		os.Exit(1)
	}
}

var commands = map[string]func([]string) error{
	"train":       cmdTrain,
	"sample":      cmdSample,
	"bench":       cmdBench,
	"evaluator":   cmdEvaluator,
	"eval":        cmdEval,
	"study":       cmdStudy,
	"lab":         cmdLab,
	"info":        cmdInfo,
	"interpolate": cmdInterpolate,
	"runs":        cmdRuns,
	"gif":         cmdGIF,
}

func usage() {
	fmt.Print(`Gen Studio: train, explore and export generative models.

Usage:
  genstudio                 open the studio window
  genstudio train  --data mnist|DIR --steps N --seed S --out DIR
  genstudio train  --project DIR [--data mnist|DIR] [--resume latest|RUN|FILE] [--checkpoint-every 500|5m] [--keep K]
                   [--ema DECAY] [--lr-schedule constant|warmup|cosine|linear] [--clip NORM]
                            train into the project's runs/<id>/ (creating the project when DIR is new);
                            Ctrl-C or SIGTERM writes a checkpoint and exits with status 130 / 143
  genstudio runs   --project DIR [--json]   the project's runs: state, step, last losses and evaluation
  genstudio gif    --run DIR --out progress.gif [--frames N] [--delay CS]   a run's previews as an animation
  genstudio sample --checkpoint FILE --n 64 --seed S --out grid.png [--gallery DIR]
                   [--truncation ψ] [--temperature T] [--sampler ddim --steps K --eta η]
  genstudio sample --from IMAGE.png [--checkpoint FILE] [--out FILE]
                            redraw an image from the provenance inside it, pixel for pixel
  genstudio info   IMAGE.png ...        where an image came from (model, checkpoint, seed, settings)
  genstudio interpolate --checkpoint FILE --from-seed A --to-seed B --frames N --out strip.png [--gif walk.gif]
  genstudio eval   --checkpoint FILE [--n 10000] [--seed S] [--reference] [--json]
  genstudio eval   --images PATH [--against PATH] [--n N] [--json]
                            score a model's samples or any images: FID, KID, IS, MS-SSIM,
                            precision/recall, density/coverage, class coverage, novelty
  genstudio study  --family gan --arch mlp|conv --techniques plain,hinge,lsgan,ttur --steps N --seeds 3 [--n 2000] [--json]
                            train each technique with the same seeds and steps and score them
  genstudio lab    --data ring8|grid25 --technique plain,recommended,... --seeds 10 [--steps N] [--json] [--samples-out F.csv]
                            the 2-D mode-collapse protocol: modes covered and high-quality share
  genstudio evaluator train --out FILE   remake the built-in MNIST evaluator
  genstudio evaluator info [FILE]        how an evaluator was made
  genstudio bench  [--steps N] [--reps N] [--models LIST] [--json] [--torch=false]
  genstudio bench  --memory N     memory and allocations over a long run
  genstudio bench  --ui           what the window costs training (needs a display)

Run "genstudio COMMAND -h" for a command's flags.
`)
}
