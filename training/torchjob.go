package training

import (
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
)

// A PyTorch training job (genstudio export torch): the data set as it is
// after preprocessing, the model as torch.nn modules with Gen Studio's
// state_dict names (generated from the model's TorchNets), and a train.py
// that runs under torchrun with DistributedDataParallel and writes a run
// folder in Gen Studio's layout and formats, so the studio opens, watches,
// evaluates and continues it like one of its own.

//go:embed torchjob
var torchJobFiles embed.FS

// TorchJobOptions are the run settings an exported job trains with.
type TorchJobOptions struct {
	Steps           int    // the run's length
	Seed            uint64 // the training seed
	PreviewEvery    int    // steps between preview grids
	CheckpointEvery int    // steps between checkpoints (0: at the end only)
	Keep            int    // checkpoints kept (0: all)
	Flip            bool   // mirror images at random
	Name            string // the project's name (for the job's README)
}

// torchJob is job.json: what train.py reads.
type torchJob struct {
	Format    string            `json:"format"`
	Family    string            `json:"family"`
	Arch      string            `json:"arch"`
	Config    json.RawMessage   `json:"config"`
	Nets      []models.TorchNet `json:"nets"`
	LossNames []string          `json:"loss_names"`
	Shape     [3]int            `json:"shape"` // width, height, channels
	Dataset   string            `json:"dataset"`
	Images    int               `json:"images"`
	Run       TorchJobOptions   `json:"run"`
}

// TorchJobFormat marks job.json.
const TorchJobFormat = "genstudio-torch-job-1"

// ExportTorchJob writes the PyTorch job of model m trained on ds into dir:
// data/images.npy (uint8, one flattened image per row, Gen Studio's pixel
// order) and data/labels.npy (int64, -1 unknown), model.py, train.py,
// job.json, requirements.txt, README.md, slurm.sbatch and k8s-job.yaml.
// Models and settings the export does not describe yet are refused by name.
func ExportTorchJob(dir string, m models.Model, ds *project.Dataset, opts TorchJobOptions) error {
	d, ok := m.(models.TorchDescriber)
	if !ok {
		return fmt.Errorf("export torch: %s: %w (the MLP GAN is)", ModelName(m), models.ErrNoTorchDescription)
	}
	nets, err := d.TorchNets()
	if err != nil {
		return fmt.Errorf("export torch: %w", err)
	}
	sh := m.Shape()
	if ds.Width != sh.Width || ds.Height != sh.Height || ds.C() != sh.Channels {
		return fmt.Errorf("export torch: the data set is %d×%d×%d, the model makes %d×%d×%d",
			ds.Width, ds.Height, ds.C(), sh.Width, sh.Height, sh.Channels)
	}
	if ds.Len() == 0 {
		return errors.New("export torch: the data set is empty")
	}
	cfg, err := json.Marshal(m.Config())
	if err != nil {
		return fmt.Errorf("export torch: %w", err)
	}
	job := torchJob{Format: TorchJobFormat, Family: m.Family(), Arch: models.ArchOf(cfg), Config: cfg, Nets: nets,
		LossNames: m.LossNames(), Shape: [3]int{sh.Width, sh.Height, sh.Channels}, Dataset: ds.Source, Images: ds.Len(), Run: opts}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return fmt.Errorf("export torch: %w", err)
	}
	n := ds.Len()
	labels := make([]int64, n)
	for i := range labels {
		labels[i] = -1
		if i < len(ds.Labels) {
			labels[i] = int64(ds.Labels[i])
		}
	}
	files := map[string][]byte{
		"data/images.npy": npyUint8(ds.Pixels[:n*ds.ImageSize()], n, ds.ImageSize()),
		"data/labels.npy": npyInt64(labels),
		"model.py":        []byte(torchModelPy(nets)),
	}
	jb, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		return fmt.Errorf("export torch: %w", err)
	}
	files["job.json"] = append(jb, '\n')
	for _, name := range []string{"train.py", "requirements.txt", "README.md", "slurm.sbatch", "k8s-job.yaml"} {
		b, err := torchJobFiles.ReadFile("torchjob/" + name)
		if err != nil {
			return fmt.Errorf("export torch: %w", err)
		}
		if strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".sbatch") || strings.HasSuffix(name, ".yaml") {
			var out strings.Builder
			t, err := template.New(name).Parse(string(b))
			if err != nil {
				return fmt.Errorf("export torch: %s: %w", name, err)
			}
			if err := t.Execute(&out, job); err != nil {
				return fmt.Errorf("export torch: %s: %w", name, err)
			}
			b = []byte(out.String())
		}
		files[name] = b
	}
	for name, b := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), func(w io.Writer) error {
			_, err := w.Write(b)
			return err
		}); err != nil {
			return fmt.Errorf("export torch: %w", err)
		}
	}
	return nil
}

// torchModelPy is model.py: each TorchNet as an nn.Sequential attribute of
// one module, so its state_dict names are Gen Studio's.
func torchModelPy(nets []models.TorchNet) string {
	var b strings.Builder
	b.WriteString(`"""The model of a Gen Studio project as torch.nn modules.

Generated by genstudio export torch from the model's layers: every layer is
one module, and the state_dict names are those of Gen Studio's checkpoints.
Do not edit; export again instead.
"""
import torch.nn as nn


class Model(nn.Module):
    """The networks of the model, each an nn.Sequential."""

    def __init__(self):
        super().__init__()
`)
	for _, n := range nets {
		fmt.Fprintf(&b, "        self.%s = nn.Sequential(\n", n.Name)
		for i, l := range n.Layers {
			fmt.Fprintf(&b, "            %s,  # %s.%d\n", torchLayerPy(l), n.Name, i)
		}
		b.WriteString("        )\n")
	}
	b.WriteString("\n\nNETS = [")
	for i, n := range nets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n.Name)
	}
	b.WriteString("]\n")
	return b.String()
}

func torchLayerPy(l models.TorchLayer) string {
	switch l.Kind {
	case "Linear":
		if l.Bias {
			return fmt.Sprintf("nn.Linear(%d, %d)", l.In, l.Out)
		}
		return fmt.Sprintf("nn.Linear(%d, %d, bias=False)", l.In, l.Out)
	case "LeakyReLU":
		return fmt.Sprintf("nn.LeakyReLU(%v)", l.Slope)
	case "Dropout":
		return fmt.Sprintf("nn.Dropout(%v)", l.P)
	}
	return "nn." + l.Kind + "()"
}

// npyHeader is a .npy version 1.0 header for dtype descr and shape.
func npyHeader(descr string, shape ...int) []byte {
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = fmt.Sprint(s)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh)
	pad := 64 - (10+len(h)+1)%64
	h += strings.Repeat(" ", pad%64) + "\n"
	out := []byte("\x93NUMPY\x01\x00")
	out = binary.LittleEndian.AppendUint16(out, uint16(len(h)))
	return append(out, h...)
}

func npyUint8(px []uint8, rows, cols int) []byte {
	return append(npyHeader("|u1", rows, cols), px...)
}

func npyInt64(v []int64) []byte {
	out := npyHeader("<i8", len(v))
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, uint64(x))
	}
	return out
}
