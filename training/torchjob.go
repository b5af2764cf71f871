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
	Shape     [3]int            `json:"shape"`     // width, height, channels
	NoiseDim  int               `json:"noise_dim"` // values of noise per sample (Model.NoiseDim)
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
		return fmt.Errorf("export torch: %s: %w", ModelName(m), models.ErrNoTorchDescription)
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
		LossNames: m.LossNames(), Shape: [3]int{sh.Width, sh.Height, sh.Channels}, NoiseDim: m.NoiseDim(), Dataset: ds.Source, Images: ds.Len(), Run: opts}
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

// torchModelPy is model.py: each TorchNet as an attribute of one module
// (an nn.Sequential, or a module of its own with named layers), so its
// state_dict names are Gen Studio's.
func torchModelPy(nets []models.TorchNet) string {
	var b strings.Builder
	b.WriteString(`"""The model of a Gen Studio project as torch.nn modules.

Generated by genstudio export torch from the model's layers: every layer is
one module, and the state_dict names are those of Gen Studio's checkpoints.
Every network takes and gives flat rows, one sample each. Do not edit;
export again instead.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
`)
	if usesKind(nets, "ResBlock") {
		b.WriteString(torchResBlockPy)
	}
	if usesKind(nets, "MinibatchStd") {
		b.WriteString(torchMinibatchStdPy)
	}
	for _, n := range nets {
		if !n.Named || n.Name == "" {
			continue
		}
		fmt.Fprintf(&b, "\n\nclass %s(nn.Module):\n    def __init__(self):\n        super().__init__()\n", pyClass(n.Name))
		if usesKind([]models.TorchNet{n}, "MinibatchStd") {
			b.WriteString("        self.std_groups = 1  # the batch parts minibatch_std keeps apart (the D step's real and fake)\n")
		}
		for _, l := range n.Layers {
			if l.Name != "" {
				fmt.Fprintf(&b, "        %s\n", pyAttr(l.Name, torchLayerPy(l)))
			}
		}
		b.WriteString("\n    def forward(self, x):\n")
		for _, l := range n.Layers {
			fmt.Fprintf(&b, "        x = %s\n", torchOpPy(l))
		}
		b.WriteString("        return x\n")
	}
	b.WriteString(`

class Model(nn.Module):
    """The networks of the model."""

    def __init__(self):
        super().__init__()
`)
	for _, n := range nets {
		if n.Name == "" { // layers at the root of the state_dict
			for _, l := range n.Layers {
				fmt.Fprintf(&b, "        self.%s = %s\n", l.Name, torchLayerPy(l))
			}
			continue
		}
		if n.Named {
			fmt.Fprintf(&b, "        self.%s = %s()\n", n.Name, pyClass(n.Name))
			continue
		}
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

// torchResBlockPy is the U-Net's residual block (models/unet.go).
const torchResBlockPy = `

class ResBlock(nn.Module):
    """skip(x) + conv2(SiLU(conv1(SiLU(x)) + temb(e))), skip a 1x1 conv
    when the channel counts differ (else the identity)."""

    def __init__(self, cin, cout, emb):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(emb, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, e):
        h = self.conv1(F.silu(x)) + self.temb(e)[:, :, None, None]
        h = self.conv2(F.silu(h))
        return (x if self.skip is None else self.skip(x)) + h
`

// torchMinibatchStdPy is nn.MinibatchStd (models/nn/mbstd.go).
const torchMinibatchStdPy = `

def minibatch_std(x, groups=1):
    """Appends to every sample the mean over features of each feature's
    standard deviation across the batch (biased, + 1e-8 under the root),
    as a column or a constant channel; each of groups equal parts of the
    batch has its own."""
    out = []
    for p in x.chunk(groups):
        s = torch.sqrt(p.var(0, unbiased=False) + 1e-8).mean()
        out.append(torch.cat([p, s.expand(p.shape[0], 1, *p.shape[2:])], 1))
    return torch.cat(out)
`

// pyAttr is the line that makes module expr the attribute name (one that
// is no Python identifier, a Sequential index, through add_module).
func pyAttr(name, expr string) string {
	if isIdent(name) {
		return "self." + name + " = " + expr
	}
	return fmt.Sprintf("self.add_module(%q, %s)", name, expr)
}

// pyCall calls the attribute name on x.
func pyCall(name string) string {
	if isIdent(name) {
		return "self." + name + "(x)"
	}
	return fmt.Sprintf("self._modules[%q](x)", name)
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// usesKind tells whether any layer of nets is of kind.
func usesKind(nets []models.TorchNet, kind string) bool {
	for _, n := range nets {
		for _, l := range n.Layers {
			if l.Kind == kind {
				return true
			}
		}
	}
	return false
}

// pyClass is a net's class name ("generator" → "Generator").
func pyClass(name string) string { return strings.ToUpper(name[:1]) + name[1:] }

// torchLayerPy is the constructor of a layer's module, spectrally
// normalised when it says so.
func torchLayerPy(l models.TorchLayer) string {
	if l.SN {
		l.SN = false
		return "nn.utils.spectral_norm(" + torchLayerPy(l) + ")"
	}
	bias := ""
	if !l.Bias {
		bias = ", bias=False"
	}
	switch l.Kind {
	case "Linear":
		return fmt.Sprintf("nn.Linear(%d, %d%s)", l.In, l.Out, bias)
	case "Conv2d":
		return fmt.Sprintf("nn.Conv2d(%d, %d, %d, stride=%d, padding=%d%s)", l.In, l.Out, l.K, l.Stride, l.Pad, bias)
	case "BatchNorm2d":
		return fmt.Sprintf("nn.BatchNorm2d(%d, eps=%v, momentum=%v)", l.In, l.Eps, l.Momentum)
	case "LeakyReLU":
		return fmt.Sprintf("nn.LeakyReLU(%v)", l.Slope)
	case "Dropout":
		return fmt.Sprintf("nn.Dropout(%v)", l.P)
	case "Upsample2x":
		return `nn.Upsample(scale_factor=2, mode="nearest")`
	case "ResBlock":
		return fmt.Sprintf("ResBlock(%d, %d, %d)", l.In, l.Out, l.Emb)
	}
	return "nn." + l.Kind + "()"
}

// torchOpPy is a named net's forward line for a layer.
func torchOpPy(l models.TorchLayer) string {
	if l.Name != "" {
		return pyCall(l.Name)
	}
	switch l.Kind {
	case "ReLU":
		return "F.relu(x)"
	case "SiLU":
		return "F.silu(x)"
	case "Dropout":
		return fmt.Sprintf("F.dropout(x, %v, self.training)", l.P)
	case "MinibatchStd":
		return "minibatch_std(x, self.std_groups)"
	case "LeakyReLU":
		return fmt.Sprintf("F.leaky_relu(x, %v)", l.Slope)
	case "Tanh":
		return "torch.tanh(x)"
	case "Sigmoid":
		return "torch.sigmoid(x)"
	case "Upsample2x":
		return `F.interpolate(x, scale_factor=2, mode="nearest")`
	case "View":
		dims := make([]string, len(l.Shape))
		for i, d := range l.Shape {
			dims[i] = fmt.Sprint(d)
		}
		return "x.view(-1, " + strings.Join(dims, ", ") + ")"
	case "Flatten":
		return "x.flatten(1)"
	}
	return "x  # " + l.Kind
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
