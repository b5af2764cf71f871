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
	"slices"
	"strings"

	"github.com/genstudio/genstudio/app"
	_ "github.com/genstudio/genstudio/internal/posixlocale" // before Fyne reads the locale
)

func main() {
	if len(os.Args) > 1 {
		name := os.Args[1]
		if cmd, ok := commands[name]; ok {
			if err := cmd(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "genstudio "+name+":", err)
				var ee *exitError
				if errors.As(err, &ee) {
					os.Exit(ee.code)
				}
				os.Exit(1)
			}
			return
		}
		switch name {
		case "-h", "--help", "help":
			usage()
			return
		case "-v", "--version", "version":
			fmt.Println(versionLine())
			return
		}
		if err := checkWindowArgs(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "genstudio:", err)
			fmt.Fprintln(os.Stderr, "Run \"genstudio help\" for the commands.")
			os.Exit(2)
		}
	}
	if why := noDisplay(); why != "" {
		fmt.Fprintf(os.Stderr, "genstudio: %s, so the studio window cannot open. Headless commands work: %s (genstudio help lists them).\n", why, strings.Join(commandNames(), ", "))
		os.Exit(1)
	}
	app.Version = versionLine()
	if err := app.Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genstudio:", err)
		os.Exit(1)
	}
}

// checkWindowArgs accepts what the window takes: a project folder, and
// --selftest DIR. Anything else (a mistyped or newer command) is an error
// instead of a window.
func checkWindowArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--selftest" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			return fmt.Errorf("unknown flag %q", a)
		}
		st, err := os.Stat(a)
		if err != nil {
			if _, ok := commands[strings.ToLower(a)]; !ok && !strings.ContainsAny(a, `/\.`) {
				return fmt.Errorf("unknown command %q", a)
			}
			return fmt.Errorf("%q is neither a command nor a project folder: %w", a, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("%q is not a project folder", a)
		}
	}
	return nil
}

// commandNames are the headless commands, sorted.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
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
	"export":      cmdExport,
}

func usage() {
	fmt.Print(`Gen Studio: train, explore and export generative models.

Usage:
  genstudio                 open the studio window
  genstudio PROJECT-FOLDER  open a project in the window
  genstudio --version       the version and the commit it was built from
  genstudio train  --data mnist|DIR --steps N --seed S --out DIR
  genstudio train  --project DIR [--data mnist|DIR] [--resume latest|RUN|FILE] [--checkpoint-every 500|5m] [--keep K]
                   [--ema DECAY] [--lr-schedule constant|warmup|cosine|linear] [--clip NORM]
                            train into the project's runs/<id>/ (creating the project when DIR is new);
                            Ctrl-C or SIGTERM writes a checkpoint and exits with status 130 / 143
  genstudio runs   --project DIR [--json]   the project's runs: state, step, last losses and evaluation
  genstudio gif    --run DIR --out progress.gif [--frames N] [--delay CS]   a run's previews as an animation
  genstudio export torch --project DIR [--out JOBDIR] [--steps N] [--flip]
                            the project as a PyTorch DistributedDataParallel job for torchrun (every family and arch)
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
