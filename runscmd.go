package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

// exitError ends the process with code after printing msg (main handles it).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// checkpointEvery is --checkpoint-every: a step count ("500") or a
// duration ("5m").
type checkpointEvery struct {
	steps int
	d     time.Duration
}

func (c *checkpointEvery) String() string {
	if c == nil {
		return ""
	}
	if c.steps > 0 {
		return strconv.Itoa(c.steps)
	}
	return c.d.String()
}

func (c *checkpointEvery) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return fmt.Errorf("a step count must be at least 1, got %d", n)
		}
		c.steps, c.d = n, 0
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a step count (500) or a duration (5m, 90s), got %q", s)
	}
	c.steps, c.d = 0, d
	return nil
}

// openOrCreateProject opens the project in dir, or creates it there when
// dir is missing or empty (with --data as its data set).
func openOrCreateProject(dir string, set map[string]string) (*project.Project, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(entries) > 0 {
		return project.Open(dir)
	}
	p, err := project.Create(dir, "")
	if err != nil {
		return nil, err
	}
	if data, ok := set["data"]; ok {
		src := data
		if data != project.MNISTSource {
			if src, err = filepath.Abs(data); err != nil {
				return nil, err
			}
		}
		p.SetDataset(src, p.Dataset.Preprocess)
	}
	if err := p.Save(); err != nil {
		return nil, err
	}
	fmt.Printf("created project %s\n", p.Dir())
	return p, nil
}

// resolveResume turns --resume into a checkpoint file and the run folder
// it belongs to ("" when it lies elsewhere): "latest" is the project's
// newest run with a checkpoint, a run id names one, anything else is a file.
func resolveResume(p *project.Project, arg string) (ckpt, runDir string, err error) {
	if p != nil {
		var ids []string
		if arg == "latest" {
			runs := p.AllRuns()
			for i := len(runs) - 1; i >= 0; i-- {
				ids = append(ids, runs[i].ID)
			}
		} else if _, err := os.Stat(p.RunDir(arg)); err == nil && !strings.ContainsAny(arg, `/\`) {
			ids = []string{arg}
		}
		for _, id := range ids {
			cks, err := training.ListCheckpoints(filepath.Join(p.RunDir(id), training.CkptFolder))
			if err != nil {
				return "", "", err
			}
			if len(cks) > 0 {
				return cks[len(cks)-1], p.RunDir(id), nil
			}
		}
		if arg == "latest" {
			return "", "", fmt.Errorf("--resume latest: no run of %s has a checkpoint yet", p.Dir())
		}
		if len(ids) == 1 {
			return "", "", fmt.Errorf("--resume %s: the run has no checkpoint yet", arg)
		}
	} else if arg == "latest" {
		return "", "", errors.New("--resume latest needs --project DIR")
	}
	if _, err := os.Stat(arg); err != nil {
		return "", "", fmt.Errorf("--resume: %w", err)
	}
	abs, _ := filepath.Abs(arg)
	if d := filepath.Dir(abs); filepath.Base(d) == training.CkptFolder {
		runDir = filepath.Dir(d)
	}
	return arg, runDir, nil
}

// progressLine prints training progress: a bar redrawn in place on a
// terminal, plain lines (at most one every few seconds) otherwise.
type progressLine struct {
	w        io.Writer
	tty      bool
	last     time.Time
	drawn    bool
	interval time.Duration
}

func newProgressLine(f *os.File) *progressLine {
	p := &progressLine{w: f, interval: 5 * time.Second}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		p.tty, p.interval = true, 0
	}
	return p
}

// progress shows one progress event (final forces a plain line out).
func (p *progressLine) progress(e training.ProgressEvent, final bool) {
	if len(e.Points) == 0 && !final {
		return
	}
	if !p.tty && !final && time.Since(p.last) < p.interval {
		return
	}
	p.last = time.Now()
	var parts []string
	if len(e.Points) > 0 {
		last := e.Points[len(e.Points)-1]
		for i, n := range e.LossNames {
			if i < len(last.Losses) {
				parts = append(parts, fmt.Sprintf("%s %.4f", n, last.Losses[i]))
			}
		}
	}
	eta := "?"
	if e.ETA > 0 {
		eta = e.ETA.Round(time.Second).String()
	}
	if p.tty {
		const width = 24
		bar := ""
		if e.Total > 0 {
			n := min(width, e.Step*width/e.Total)
			bar = "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "] "
		}
		fmt.Fprintf(p.w, "\r\x1b[K%sstep %d/%d  %.1f steps/s  ETA %s  %s", bar, e.Step, e.Total, e.StepsPerSec, eta, strings.Join(parts, "  "))
		p.drawn = true
		return
	}
	fmt.Fprintf(p.w, "step %d/%d  epoch %d  %s  %.1f steps/s  ETA %s\n", e.Step, e.Total, e.Epoch+1, strings.Join(parts, "  "), e.StepsPerSec, eta)
}

// line prints a message of its own (ending a bar's line first).
func (p *progressLine) line(w io.Writer, format string, a ...any) {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	fmt.Fprintf(w, format+"\n", a...)
}

// reportTraining prints a worker's events until its run ends.
func reportTraining(w *training.Worker, p *progressLine) training.DoneEvent {
	var done training.DoneEvent
	var last training.ProgressEvent
	for ev := range w.Events() {
		switch e := ev.(type) {
		case training.ProgressEvent:
			if len(e.Points) > 0 {
				last = e
			}
			p.progress(e, false)
		case training.EvalEvent:
			if e.Err != nil {
				p.line(os.Stderr, "evaluation at step %d failed: %v", e.Step, e.Err)
			} else {
				r := e.Report
				p.line(os.Stdout, "eval step %d  N %d  FID %.2f  KID %.4g  IS %.3f  precision %.3f  recall %.3f  classes %d/%d",
					e.Step, r.N, r.FID, r.KID, r.IS, r.Precision, r.Recall, r.ClassCoverage, r.Classes)
			}
		case training.CheckpointEvent:
			if e.Err != nil {
				p.line(os.Stderr, "checkpoint at step %d failed (training goes on; the previous checkpoint is intact): %v", e.Step, e.Err)
			} else {
				p.line(os.Stdout, "checkpoint %s", e.Path)
			}
		case training.WriteErrorEvent:
			p.line(os.Stderr, "writing the %s at step %d failed (training goes on): %v", e.What, e.Step, e.Err)
		case training.DoneEvent:
			done = e
		}
	}
	if last.Step > 0 {
		p.progress(last, true)
		if p.tty {
			p.line(os.Stdout, "%s", "")
		}
	}
	return done
}

// cmdRuns lists a project's runs with their last metrics.
func cmdRuns(args []string) error {
	fs := flag.NewFlagSet("runs", flag.ContinueOnError)
	dir := fs.String("project", ".", "project folder")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := project.Open(*dir)
	if err != nil {
		return err
	}
	runs, err := SummarizeProjectRuns(p)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runs)
	}
	if len(runs) == 0 {
		fmt.Printf("%s has no runs yet\n", p.Dir())
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tNAME\tMODEL\tSTATE\tSTEP\tCHECKPOINTS\tLOSSES\tLAST EVAL")
	for _, r := range runs {
		var ls []string
		for _, n := range r.LossNames {
			if v, ok := r.Losses[n]; ok {
				ls = append(ls, fmt.Sprintf("%s %.3f", n, v))
			}
		}
		ev := "-"
		if r.LastEval != nil {
			ev = fmt.Sprintf("FID %.1f IS %.2f (N %d, step %d)", r.LastEval.FID, r.LastEval.IS, r.LastEval.N, r.LastEval.Step)
		}
		step := strconv.Itoa(r.Step)
		if r.Steps > 0 {
			step += "/" + strconv.Itoa(r.Steps)
		}
		ck := strconv.Itoa(len(r.Checkpoints))
		if len(r.Pinned) > 0 {
			ck += fmt.Sprintf(" (%d pinned)", len(r.Pinned))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, orDash(r.Name), orDash(r.Model), r.State, step, ck, orDash(strings.Join(ls, ", ")), ev)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SummarizeProjectRuns summarises every run a project records, in order.
func SummarizeProjectRuns(p *project.Project) ([]training.RunSummary, error) {
	var out []training.RunSummary
	for _, r := range p.AllRuns() {
		s, err := training.SummarizeRun(p.RunDir(r.ID))
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.ID, err)
		}
		s.Name = r.Name
		if s.Family == "" {
			s.Family = r.Family
		}
		if s.Steps == 0 {
			s.Steps = r.Steps
		}
		out = append(out, s)
	}
	return out, nil
}

// cmdGIF writes a run's previews as an animated GIF of training progress.
func cmdGIF(args []string) error {
	fs := flag.NewFlagSet("gif", flag.ContinueOnError)
	run := fs.String("run", "", "run folder (holding samples/preview-*.png)")
	out := fs.String("out", "progress.gif", "GIF to write")
	frames := fs.Int("frames", 100, "at most this many frames, evenly picked (the last is always in)")
	delay := fs.Int("delay", 25, "hundredths of a second per frame")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *run == "" {
		return errors.New("--run DIR is required")
	}
	n, err := training.WriteProgressGIF(*run, *out, *frames, *delay)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d frames\n", *out, n)
	return nil
}
