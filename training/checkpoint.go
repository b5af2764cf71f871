package training

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/genstudio/genstudio/models"
	"gorgonia.org/tensor"
)

// CheckpointFormat marks Gen Studio checkpoints in the safetensors metadata.
const CheckpointFormat = "genstudio-checkpoint-1"

// CheckpointInfo is the JSON metadata stored beside a checkpoint's tensors.
type CheckpointInfo struct {
	Family  string          `json:"family"`
	Config  json.RawMessage `json:"config"`
	Step    int             `json:"step"`          // training steps done
	OptStep int             `json:"opt_step"`      // optimizer updates done
	Seed    uint64          `json:"seed"`          // training seed: batch order and per-step RNG streams derive from (seed, step)
	Dataset string          `json:"dataset"`       // data set source ("mnist" or a folder)
	Run     *RunSettings    `json:"run,omitempty"` // the trainer's settings, for a resume without flags
	Saved   time.Time       `json:"saved"`
}

// SaveCheckpoint writes the model's weights and optimizer state with info to
// path, atomically (temporary file, fsync, rename).
func SaveCheckpoint(path string, m models.Model, info CheckpointInfo) error {
	cfg, err := json.Marshal(m.Config())
	if err != nil {
		return fmt.Errorf("encode model config: %w", err)
	}
	info.Family, info.Config, info.OptStep = m.Family(), cfg, m.OptimizerStep()
	if info.Saved.IsZero() {
		info.Saved = time.Now().UTC()
	}
	ij, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode checkpoint info: %w", err)
	}
	tensors := map[string]Tensor{}
	for _, nt := range m.State() {
		tensors[nt.Name] = exportTensor(nt)
	}
	meta := map[string]string{"format": CheckpointFormat, "genstudio": string(ij)}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("checkpoint folder: %w", err)
	}
	return writeFileAtomic(path, func(w io.Writer) error { return WriteSafetensors(w, tensors, meta) })
}

// exportTensor copies a model tensor into checkpoint layout (out×in weights).
func exportTensor(nt models.NamedTensor) Tensor {
	shape := slices.Clone([]int(nt.T.Shape()))
	switch d := nt.T.Data().(type) {
	case int64: // a scalar, such as num_batches_tracked
		return Tensor{Shape: shape, Ints: []int64{d}}
	case []int64:
		return Tensor{Shape: shape, Ints: slices.Clone(d)}
	}
	src := float32Data(nt.T)
	if nt.Transposed && len(shape) == 2 {
		r, c := shape[0], shape[1]
		dst := make([]float32, len(src))
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				dst[j*r+i] = src[i*c+j]
			}
		}
		return Tensor{Shape: []int{c, r}, Data: dst}
	}
	return Tensor{Shape: shape, Data: slices.Clone(src)}
}

func float32Data(t *tensor.Dense) []float32 {
	switch d := t.Data().(type) {
	case []float32:
		return d
	case []float64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out
	}
	return nil
}

// Checkpoint is a loaded checkpoint: the rebuilt model and its metadata.
type Checkpoint struct {
	Model models.Model
	Info  CheckpointInfo
}

// LoadCheckpoint reads path, rebuilds the model its metadata describes and
// restores every tensor. It refuses files whose tensors do not match the
// architecture by name, dtype and shape, naming the first mismatch.
func LoadCheckpoint(path string) (*Checkpoint, error) { return LoadCheckpointLR(path, 1) }

// LoadCheckpointLR is LoadCheckpoint with every learning rate of the
// model's config ("lr", and a GAN's "d_lr" when set) times f: a roll-back
// after a diverged run goes on more gently. The checkpoint's Info.Config
// then holds the new rates.
func LoadCheckpointLR(path string, f float64) (*Checkpoint, error) {
	tensors, meta, err := ReadSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	if meta["format"] != CheckpointFormat {
		return nil, fmt.Errorf("load checkpoint %s: %w (format %q)", path, errNotCheckpoint, meta["format"])
	}
	var info CheckpointInfo
	if err := json.Unmarshal([]byte(meta["genstudio"]), &info); err != nil {
		return nil, fmt.Errorf("load checkpoint %s: bad metadata: %w", path, err)
	}
	if f != 1 {
		if info.Config, err = scaleLRs(info.Config, f); err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
	}
	m, err := models.New(info.Family, info.Config)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	if err := restoreState(m.State(), tensors); err != nil {
		m.Close()
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	m.SetOptimizerStep(info.OptStep)
	return &Checkpoint{Model: m, Info: info}, nil
}

// scaleLRs multiplies a config's learning rates by f.
func scaleLRs(config json.RawMessage, f float64) (json.RawMessage, error) {
	var c map[string]any
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for _, k := range []string{"lr", "d_lr"} {
		if v, ok := c[k].(float64); ok && v > 0 {
			c[k] = v * f
		}
	}
	return json.Marshal(c)
}

// restoreState copies tensors into state (a model's State, or any
// layers' Params). It checks every tensor first and changes the state only
// when all match.
func restoreState(state []models.NamedTensor, tensors map[string]Tensor) error {
	want := map[string]bool{}
	for _, nt := range state {
		want[nt.Name] = true
		t, ok := tensors[nt.Name]
		if !ok {
			return fmt.Errorf("tensor %s is missing", nt.Name)
		}
		shape := []int(nt.T.Shape())
		if nt.Transposed && len(shape) == 2 {
			shape = []int{shape[1], shape[0]}
		}
		if !slices.Equal(shape, t.Shape) {
			return fmt.Errorf("tensor %s has shape %v, the architecture needs %v", nt.Name, t.Shape, shape)
		}
		if isInt := nt.T.Dtype() == tensor.Int64; isInt != (t.Ints != nil) {
			return fmt.Errorf("tensor %s has the wrong dtype (integer: %v, the architecture needs %v)", nt.Name, t.Ints != nil, isInt)
		}
	}
	var extra []string
	for name := range tensors {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("tensor %s does not belong to this architecture", extra[0])
	}
	for _, nt := range state {
		t := tensors[nt.Name]
		shape := []int(nt.T.Shape())
		switch dst := nt.T.Data().(type) {
		case int64, []int64:
			if err := nt.T.Memset(t.Ints[0]); err != nil || len(t.Ints) != 1 {
				return fmt.Errorf("tensor %s: integer tensors of %d values cannot be restored", nt.Name, len(t.Ints))
			}
		case []float32:
			if nt.Transposed && len(shape) == 2 {
				r, c := shape[0], shape[1]
				for i := 0; i < r; i++ {
					for j := 0; j < c; j++ {
						dst[i*c+j] = t.Data[j*r+i]
					}
				}
			} else {
				copy(dst, t.Data)
			}
		default:
			return fmt.Errorf("tensor %s: model dtype %v cannot be restored", nt.Name, nt.T.Dtype())
		}
	}
	return nil
}

// CheckpointName is the file name of the checkpoint at step.
func CheckpointName(step int) string { return fmt.Sprintf("step-%08d.safetensors", step) }

// ListCheckpoints returns the checkpoints in dir, oldest step first.
func ListCheckpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	type ck struct {
		step int
		path string
	}
	var cks []ck
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "step-") || !strings.HasSuffix(name, ".safetensors") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "step-"), ".safetensors"))
		if err != nil {
			continue
		}
		cks = append(cks, ck{n, filepath.Join(dir, name)})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// pruneCheckpoints keeps the newest keep checkpoints in dir, and every
// pinned one.
func pruneCheckpoints(dir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	cks, err := ListCheckpoints(dir)
	if err != nil {
		return err
	}
	pinned, err := Pinned(dir)
	if err != nil {
		return err
	}
	for i := 0; i < len(cks)-keep; i++ {
		if pinned[filepath.Base(cks[i])] {
			continue
		}
		if err := os.Remove(cks[i]); err != nil {
			return err
		}
	}
	return nil
}

func splitPath(p string) (dir, base string) { return filepath.Dir(p), filepath.Base(p) }
