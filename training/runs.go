package training

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/genstudio/genstudio/models"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The files of a run folder.
const (
	MetricsFile    = "metrics.jsonl"
	StatusFile     = "status.json"
	SamplesFolder  = "samples"
	CkptFolder     = "checkpoints"
	PinnedFile     = "pinned.json" // in the checkpoints folder
	previewPrefix  = "preview-"
	previewSuffix  = ".png"
	defaultGIFStep = 25 // hundredths of a second per progress frame
)

var errPreviewWrite = errors.New("writing the preview failed")

// PreviewName is the file name of the preview grid at step.
func PreviewName(step int) string { return fmt.Sprintf("%s%08d%s", previewPrefix, step, previewSuffix) }

// RunSettings are the trainer's settings of a run (the model's are in its
// config), kept in every checkpoint so that resuming from one needs no
// flags.
type RunSettings struct {
	Steps           int    `json:"steps"`
	PreviewEvery    int    `json:"preview_every,omitempty"`
	CheckpointSteps int    `json:"checkpoint_steps,omitempty"`
	CheckpointEvery string `json:"checkpoint_every,omitempty"` // a Go duration
	Keep            int    `json:"keep,omitempty"`
	Flip            bool   `json:"flip,omitempty"`
	EvalEvery       int    `json:"eval_every,omitempty"`
	EvalN           int    `json:"eval_n,omitempty"`
	EvalSeed        uint64 `json:"eval_seed,omitempty"`
}

// Apply sets o's trainer settings to r's.
func (r *RunSettings) Apply(o *Options) {
	if r == nil {
		return
	}
	o.Steps, o.PreviewEvery, o.CheckpointSteps, o.Keep, o.Flip = r.Steps, r.PreviewEvery, r.CheckpointSteps, r.Keep, r.Flip
	o.EvalEvery, o.EvalN, o.EvalSeed = r.EvalEvery, r.EvalN, r.EvalSeed
	if d, err := time.ParseDuration(r.CheckpointEvery); err == nil {
		o.CheckpointEvery = d
	}
}

// MetricsRecord is one line of metrics.jsonl: a step's losses, or a
// periodic evaluation (Eval set).
type MetricsRecord struct {
	Step   int       `json:"step"`
	Time   float64   `json:"time"`
	Losses []float64 `json:"losses,omitempty"`
	LR     float64   `json:"lr,omitempty"`
	Rate   float64   `json:"steps_per_s,omitempty"`
	Eval   *Report   `json:"eval,omitempty"`
}

// ReadMetrics reads a run's metrics file. A line cut short (a crash or a
// full disk in the middle of a write) is skipped; a missing file is no
// error.
func ReadMetrics(path string) ([]MetricsRecord, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []MetricsRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r MetricsRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Step > 0 {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// TruncateRun prepares a run folder for training from step on: lines of
// the metrics file after step, and a partial last line, are dropped
// (atomically), and so are previews after step. A run continued from a
// checkpoint thus keeps each step of its history once.
func TruncateRun(metricsPath, previewDir string, step int) error {
	if b, err := os.ReadFile(metricsPath); err == nil {
		var keep bytes.Buffer
		changed := false
		for _, line := range bytes.SplitAfter(b, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r struct {
				Step *int `json:"step"`
			}
			if line[len(line)-1] != '\n' || json.Unmarshal(line, &r) != nil || r.Step == nil || *r.Step > step {
				changed = true
				continue
			}
			keep.Write(line)
		}
		if changed {
			if err := writeFileAtomic(metricsPath, func(w io.Writer) error { _, err := w.Write(keep.Bytes()); return err }); err != nil {
				return fmt.Errorf("metrics file: %w", err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("metrics file: %w", err)
	}
	if previewDir == "" {
		return nil
	}
	previews, err := ListPreviews(previewDir)
	if err != nil {
		return err
	}
	for _, p := range previews {
		if p.Step > step {
			if err := os.Remove(p.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// PreviewFile is one saved preview grid of a run.
type PreviewFile struct {
	Step int
	Path string
}

// ListPreviews returns the preview grids in dir, in step order.
func ListPreviews(dir string) ([]PreviewFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []PreviewFile
	for _, e := range entries {
		n, ok := stepOf(e.Name(), previewPrefix, previewSuffix)
		if ok {
			out = append(out, PreviewFile{Step: n, Path: filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	return out, nil
}

// stepOf parses the step of a file named prefix + digits + suffix.
func stepOf(name, prefix, suffix string) (int, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix))
	return n, err == nil && n >= 0
}

// Pinned returns the names of the pinned checkpoints in dir.
func Pinned(dir string) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, PinnedFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, fmt.Errorf("%s: %w", PinnedFile, err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// PinCheckpoint pins (or unpins) a checkpoint: pinned checkpoints are
// never pruned.
func PinCheckpoint(path string, pin bool) error {
	dir, name := filepath.Dir(path), filepath.Base(path)
	set, err := Pinned(dir)
	if err != nil {
		return err
	}
	if pin {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("pin checkpoint: %w", err)
		}
		set[name] = true
	} else {
		delete(set, name)
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	b, _ := json.Marshal(names)
	return writeFileAtomic(filepath.Join(dir, PinnedFile), func(w io.Writer) error { _, err := w.Write(b); return err })
}

// RunStatus is what a run folder's status.json says: written by the
// trainer when a run starts and when it ends.
type RunStatus struct {
	State string `json:"state"` // running, paused, finished, stopped, diverged, failed
	Step  int    `json:"step"`
	Steps int    `json:"steps"`
	PID   int    `json:"pid,omitempty"`
	// LossNames name the losses of the metrics lines.
	LossNames []string  `json:"loss_names,omitempty"`
	Error     string    `json:"error,omitempty"`
	Updated   time.Time `json:"updated"`
}

// The states of a run in status.json (and "interrupted" for a running
// one whose process is gone).
const (
	RunRunning     = "running"
	RunFinished    = "finished"
	RunStopped     = "stopped"
	RunDiverged    = "diverged"
	RunFailed      = "failed"
	RunInterrupted = "interrupted"
)

// WriteRunStatus writes a run's status file atomically.
func WriteRunStatus(dir string, st RunStatus) error {
	st.Updated = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, StatusFile), func(w io.Writer) error { _, err := w.Write(b); return err })
}

// ReadRunStatus reads a run's status file (a zero status when it has none).
func ReadRunStatus(dir string) RunStatus {
	var st RunStatus
	if b, err := os.ReadFile(filepath.Join(dir, StatusFile)); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

// RunSummary describes a run folder: what the Runs panel and `genstudio
// runs` list.
type RunSummary struct {
	ID          string             `json:"id"`
	Name        string             `json:"name,omitempty"`
	Dir         string             `json:"dir"`
	Family      string             `json:"family,omitempty"`
	Model       string             `json:"model,omitempty"`
	State       string             `json:"state"`
	Step        int                `json:"step"`
	Steps       int                `json:"steps,omitempty"`
	Losses      map[string]float64 `json:"losses,omitempty"`
	LossNames   []string           `json:"-"`
	LastEval    *Report            `json:"last_eval,omitempty"`
	Checkpoints []string           `json:"checkpoints,omitempty"`
	Pinned      []string           `json:"pinned,omitempty"`
	Previews    int                `json:"previews"`
	Updated     time.Time          `json:"updated"`
}

// SummarizeRun reads a run folder's files into a summary. A running
// status whose process no longer exists reads as interrupted.
func SummarizeRun(dir string) (RunSummary, error) {
	s := RunSummary{ID: filepath.Base(dir), Dir: dir}
	recs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		return s, err
	}
	cks, err := ListCheckpoints(filepath.Join(dir, CkptFolder))
	if err != nil {
		return s, err
	}
	s.Checkpoints = cks
	pinned, _ := Pinned(filepath.Join(dir, CkptFolder))
	for _, c := range cks {
		if pinned[filepath.Base(c)] {
			s.Pinned = append(s.Pinned, c)
		}
	}
	prev, _ := ListPreviews(filepath.Join(dir, SamplesFolder))
	s.Previews = len(prev)
	if len(cks) > 0 {
		if info, err := ReadCheckpointInfo(cks[len(cks)-1]); err == nil {
			s.Family, s.Step = info.Family, info.Step
			s.Model = info.Family + "/" + models.ArchOf(info.Config)
			if info.Run != nil {
				s.Steps = info.Run.Steps
			}
		}
	}
	st := ReadRunStatus(dir)
	s.LossNames = st.LossNames
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; r.Eval != nil && s.LastEval == nil {
			s.LastEval = r.Eval
		} else if r.Eval == nil && s.Losses == nil {
			s.Step = max(s.Step, r.Step)
			s.Losses = map[string]float64{}
			for j, v := range r.Losses {
				s.Losses[lossName(st.LossNames, j)] = v
			}
		}
	}
	s.State, s.Updated = st.State, st.Updated
	if st.Steps > 0 {
		s.Steps = st.Steps
	}
	if st.Step > s.Step {
		s.Step = st.Step
	}
	if s.State == RunRunning && st.PID > 0 && !processAlive(st.PID) {
		s.State = RunInterrupted
	}
	if s.State == "" {
		switch {
		case len(cks) == 0 && len(recs) == 0:
			s.State = "empty"
		case s.Steps > 0 && s.Step >= s.Steps:
			s.State = RunFinished
		default:
			s.State = RunStopped
		}
	}
	return s, nil
}

// lossName is the name of loss j (loss1, loss2, … when unknown).
func lossName(names []string, j int) string {
	if j < len(names) {
		return names[j]
	}
	return fmt.Sprintf("loss%d", j+1)
}

// ReadCheckpointInfo reads only a checkpoint's metadata.
func ReadCheckpointInfo(path string) (CheckpointInfo, error) {
	var info CheckpointInfo
	meta, err := ReadSafetensorsMeta(path)
	if err != nil {
		return info, err
	}
	if meta["format"] != CheckpointFormat {
		return info, fmt.Errorf("%s: %w", path, errNotCheckpoint)
	}
	if err := json.Unmarshal([]byte(meta["genstudio"]), &info); err != nil {
		return info, fmt.Errorf("%s: bad metadata: %w", path, err)
	}
	return info, nil
}

// ProgressGIF makes an animated GIF of a run's preview grids, one frame
// each (at most maxFrames, evenly picked, the last always kept), captioned
// with the step, delay hundredths of a second apart (25 when 0), with a
// longer pause on the last frame.
func ProgressGIF(previews []PreviewFile, maxFrames, delay int) (*gif.GIF, error) {
	if len(previews) == 0 {
		return nil, errors.New("the run has no previews yet")
	}
	if delay <= 0 {
		delay = defaultGIFStep
	}
	picked := previews
	if maxFrames > 0 && len(previews) > maxFrames {
		picked = nil
		for i := 0; i < maxFrames; i++ {
			picked = append(picked, previews[int(math.Round(float64(i)*float64(len(previews)-1)/float64(maxFrames-1)))])
		}
		picked = slices.CompactFunc(picked, func(a, b PreviewFile) bool { return a.Step == b.Step })
	}
	g := &gif.GIF{LoopCount: 0}
	var size image.Point
	for i, p := range picked {
		img, err := ReadPNG(p.Path)
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		if i == 0 {
			size = b.Size()
		} else if b.Size() != size {
			return nil, fmt.Errorf("%s is %v, the first preview %v: previews of one run must match", filepath.Base(p.Path), b.Size(), size)
		}
		const band = 16
		pal := color.Palette(palette.Plan9)
		if _, gray := img.(*image.Gray); gray {
			pal = grays
		}
		frame := image.NewPaletted(image.Rect(0, 0, size.X, size.Y+band), pal)
		draw.Draw(frame, frame.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
		draw.Draw(frame, image.Rect(0, band, size.X, size.Y+band), img, b.Min, draw.Src)
		d := font.Drawer{Dst: frame, Src: image.NewUniform(color.White), Face: basicfont.Face7x13,
			Dot: fixed.P(3, 12)}
		d.DrawString(fmt.Sprintf("step %d", p.Step))
		g.Image = append(g.Image, frame)
		g.Delay = append(g.Delay, delay)
	}
	g.Delay[len(g.Delay)-1] = 4 * delay
	return g, nil
}

// grays is the palette of grayscale previews: every grey exact.
var grays = func() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{Y: uint8(i)}
	}
	return p
}()

// WriteProgressGIF writes the progress GIF of the run folder dir to out.
func WriteProgressGIF(dir, out string, maxFrames, delay int) (frames int, err error) {
	previews, err := ListPreviews(filepath.Join(dir, SamplesFolder))
	if err != nil {
		return 0, err
	}
	g, err := ProgressGIF(previews, maxFrames, delay)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", dir, err)
	}
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	err = writeFileAtomic(out, func(w io.Writer) error { return gif.EncodeAll(w, g) })
	return len(g.Image), err
}

// ReadPNG decodes the PNG file at path, naming the file in errors.
func ReadPNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}
