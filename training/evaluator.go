package training

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/models/nn"
	"github.com/genstudio/genstudio/project"
)

// EvaluatorFormat is the "format" metadata of an evaluator file.
const EvaluatorFormat = "genstudio-evaluator-v1"

// MNISTEvaluatorName names the built-in MNIST evaluator in every number it
// gives.
const MNISTEvaluatorName = "mnist-lenet"

// FeatureDim is the length of an evaluator's feature vector (its
// penultimate layer).
const FeatureDim = 128

// evalChunk is how many images one inference run embeds.
const evalChunk = 500

// evaluatorFiles holds the built-in evaluators' weights (evaluator/README.md
// says how they were made).
//
//go:embed evaluator
var evaluatorFiles embed.FS

// EvaluatorInfo describes how an evaluator was made; it travels in the
// evaluator file's metadata.
type EvaluatorInfo struct {
	Name string `json:"name"`
	// Kind is KindClassifier (the default) or KindAutoencoder.
	Kind     string   `json:"kind,omitempty"`
	Width    int      `json:"width"`
	Height   int      `json:"height"`
	Channels int      `json:"channels"`
	Classes  []string `json:"classes"`
	Seed     uint64   `json:"seed"`
	Epochs   int      `json:"epochs"`
	Steps    int      `json:"steps"`
	Batch    int      `json:"batch"`
	// Accuracy is the share of the held-out test set classified correctly
	// when the evaluator was made (0 when there was none).
	Accuracy float64 `json:"accuracy"`
	// TestMSE is an autoencoder's mean squared reconstruction error per
	// pixel on the held-out images.
	TestMSE float64 `json:"test_mse,omitempty"`
	TestN   int     `json:"test_n"`
	Seconds float64 `json:"seconds"`
}

// The kinds of evaluator.
const (
	KindClassifier  = "classifier"
	KindAutoencoder = "autoencoder"
)

// Evaluator is the network whose features and class probabilities the
// metrics are computed on: a LeNet-style classifier of W×H×C images into
// K classes (PyTorch layout, NCHW, pixel/255 in):
//
//	h = ReLU(conv1(x))   conv 5×5 stride 2 pad 2, C → 32,  S → S/2
//	h = ReLU(conv2(h))   conv 5×5 stride 2 pad 2, 32 → 64, S/2 → S/4
//	f = ReLU(fc1(flatten(h)))  → 128 features (FID, KID, PR, DC)
//	logits = fc2(f)            → K classes (IS, class coverage)
//
// Strided convolutions stand in for LeNet's pooling. For a data set
// without classes it is a convolutional autoencoder instead (KindAutoencoder):
// the same encoder up to f (its code, without the ReLU), and a decoder
// fc → 64×S/4×S/4, then twice ReLU, upsample ×2 and a 3×3 convolution
// (64 → 32 → C), a sigmoid and the mean squared error; it gives features
// and no class probabilities (no IS, no class statistics). Its digest (a hash of
// its weights) names it beside its Name, so that numbers from different
// weights are never compared unknowingly.
type Evaluator struct {
	Info               EvaluatorInfo
	conv1, conv2       *nn.Conv2d
	fc1, fc2           *nn.Linear
	dfc                *nn.Linear // autoencoder's decoder
	dconv1, dconv2     *nn.Conv2d
	digest             string
	mu                 sync.Mutex
	fwd                *evalGraph
	outFeat, outLogits G.Value
}

// evalGraph is the compiled inference graph over evalChunk images.
type evalGraph struct {
	vm    G.VM
	x     *tensor.Dense
	feat  G.Value
	logit G.Value
}

// NewEvaluator makes an untrained evaluator for images of info's shape and
// classes, with weights drawn from info.Seed.
func NewEvaluator(info EvaluatorInfo) (*Evaluator, error) {
	if info.Width < 4 || info.Height < 4 || info.Width%4 != 0 || info.Height%4 != 0 || (info.Channels != 1 && info.Channels != 3) {
		return nil, fmt.Errorf("evaluator: image shape %dx%dx%d is not supported (sides a multiple of 4, 1 or 3 channels)", info.Width, info.Height, info.Channels)
	}
	ae := info.Kind == KindAutoencoder
	if info.Kind != "" && info.Kind != KindClassifier && !ae {
		return nil, fmt.Errorf("evaluator: unknown kind %q", info.Kind)
	}
	if !ae && len(info.Classes) < 2 {
		return nil, fmt.Errorf("evaluator: %d classes; a classifier needs at least 2", len(info.Classes))
	}
	rng := rand.New(rand.NewPCG(info.Seed, 0x1e7e7))
	dt := tensor.Float32
	flat := 64 * (info.Height / 4) * (info.Width / 4)
	e := &Evaluator{Info: info}
	e.conv1 = nn.NewConv2d("conv1", info.Channels, 32, 5, 2, 2, true, dt, rng)
	e.conv2 = nn.NewConv2d("conv2", 32, 64, 5, 2, 2, true, dt, rng)
	e.fc1 = nn.NewLinear("fc1", flat, FeatureDim, true, dt, rng)
	if ae {
		e.dfc = nn.NewLinear("decoder.fc", FeatureDim, flat, true, dt, rng)
		e.dconv1 = nn.NewConv2d("decoder.conv1", 64, 32, 3, 1, 1, true, dt, rng)
		e.dconv2 = nn.NewConv2d("decoder.conv2", 32, info.Channels, 3, 1, 1, true, dt, rng)
	} else {
		e.fc2 = nn.NewLinear("fc2", FeatureDim, len(info.Classes), true, dt, rng)
	}
	e.updateDigest()
	return e, nil
}

// Params lists the evaluator's weights with their state_dict names.
func (e *Evaluator) Params() []nn.Param {
	if e.autoencoder() {
		return nn.ParamsOf(e.conv1, e.conv2, e.fc1, e.dfc, e.dconv1, e.dconv2)
	}
	return nn.ParamsOf(e.conv1, e.conv2, e.fc1, e.fc2)
}

func (e *Evaluator) autoencoder() bool { return e.Info.Kind == KindAutoencoder }

// ID is how the evaluator is named beside every number: its Name and the
// first 8 hex digits of its weights' SHA-256, e.g. "mnist-lenet@1a2b3c4d".
func (e *Evaluator) ID() string { return e.Info.Name + "@" + e.digest }

// Classes is the number of classes the evaluator tells apart (0 for an
// autoencoder).
func (e *Evaluator) Classes() int {
	if e.autoencoder() {
		return 0
	}
	return len(e.Info.Classes)
}

// Size is the number of values of one input image (W×H×C).
func (e *Evaluator) Size() int { return e.Info.Width * e.Info.Height * e.Info.Channels }

func (e *Evaluator) updateDigest() {
	h := sha256.New()
	for _, p := range e.Params() {
		for _, v := range p.T.Data().([]float32) {
			b := math.Float32bits(v)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)})
		}
	}
	e.digest = hex.EncodeToString(h.Sum(nil))[:8]
}

// forward builds the network on x and returns its features and logits.
func (e *Evaluator) forward(g *nn.Graph, x *G.Node) (feat, logits *G.Node, err error) {
	h, err := e.conv1.Forward(g, x)
	if err == nil {
		h, err = nn.ReLU(h)
	}
	if err == nil {
		h, err = e.conv2.Forward(g, h)
	}
	if err == nil {
		h, err = nn.ReLU(h)
	}
	if err != nil {
		return nil, nil, err
	}
	s := h.Shape()
	if h, err = G.Reshape(h, tensor.Shape{s[0], s[1] * s[2] * s[3]}); err != nil {
		return nil, nil, fmt.Errorf("flatten: %w", err)
	}
	if feat, err = e.fc1.Forward(g, h); err != nil || e.autoencoder() {
		return feat, nil, err
	}
	if feat, err = nn.ReLU(feat); err == nil {
		logits, err = e.fc2.Forward(g, feat)
	}
	return feat, logits, err
}

// decode builds the autoencoder's reconstruction of its code (sigmoid
// outputs, NCHW).
func (e *Evaluator) decode(g *nn.Graph, code *G.Node) (*G.Node, error) {
	b := code.Shape()[0]
	h, err := e.dfc.Forward(g, code)
	if err != nil {
		return nil, err
	}
	if h, err = G.Reshape(h, tensor.Shape{b, 64, e.Info.Height / 4, e.Info.Width / 4}); err != nil {
		return nil, err
	}
	for _, c := range []*nn.Conv2d{e.dconv1, e.dconv2} {
		if h, err = nn.ReLU(h); err == nil {
			h, err = nn.Upsample2x(h)
		}
		if err == nil {
			h, err = c.Forward(g, h)
		}
		if err != nil {
			return nil, err
		}
	}
	return nn.Sigmoid(h)
}

// Embed runs the evaluator on images (values in [0, 1], Size() each, NCHW)
// and returns their features (FeatureDim a row) and class probabilities
// (Classes() a row; nil for an autoencoder). progress, when set, is called after each chunk with
// the images done so far; ctx cancels between chunks. It is safe for
// concurrent use.
func (e *Evaluator) Embed(ctx context.Context, images []float32, progress func(done, total int)) (feat, probs []float32, err error) {
	size := e.Size()
	if len(images)%size != 0 {
		return nil, nil, fmt.Errorf("evaluator: %d values are not whole %dx%dx%d images", len(images), e.Info.Width, e.Info.Height, e.Info.Channels)
	}
	n, k := len(images)/size, e.Classes()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fwd == nil {
		if e.fwd, err = e.buildForward(); err != nil {
			return nil, nil, fmt.Errorf("evaluator: %w", err)
		}
	}
	feat = make([]float32, n*FeatureDim)
	if k > 0 {
		probs = make([]float32, n*k)
	}
	x := e.fwd.x.Data().([]float32)
	for lo := 0; lo < n; lo += evalChunk {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		hi := min(n, lo+evalChunk)
		clear(x)
		copy(x, images[lo*size:hi*size])
		e.fwd.vm.Reset()
		if err := e.fwd.vm.RunAll(); err != nil {
			return nil, nil, fmt.Errorf("evaluator: %w", err)
		}
		f := e.fwd.feat.Data().([]float32)
		copy(feat[lo*FeatureDim:hi*FeatureDim], f)
		if k > 0 {
			nn.Softmax(probs[lo*k:hi*k], e.fwd.logit.Data().([]float32)[:(hi-lo)*k], k)
		}
		if progress != nil {
			progress(hi, n)
		}
	}
	return feat, probs, nil
}

func (e *Evaluator) buildForward() (*evalGraph, error) {
	g := nn.NewGraph(false)
	f := &evalGraph{x: tensor.New(tensor.WithShape(evalChunk, e.Info.Channels, e.Info.Height, e.Info.Width), tensor.Of(tensor.Float32))}
	feat, logits, err := e.forward(g, g.Input("x", f.x))
	if err != nil {
		return nil, err
	}
	G.Read(feat, &f.feat)
	if logits != nil {
		G.Read(logits, &f.logit)
	}
	f.vm = G.NewTapeMachine(g.ExprGraph)
	return f, nil
}

// Close releases the compiled graph.
func (e *Evaluator) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fwd == nil {
		return nil
	}
	err := e.fwd.vm.Close()
	e.fwd = nil
	return err
}

// Accuracy is the share of d's labelled images whose most probable class
// is their label.
func (e *Evaluator) Accuracy(ctx context.Context, d *project.Dataset) (float64, error) {
	_, probs, err := e.Embed(ctx, Pixels01(d.Pixels), nil)
	if err != nil {
		return 0, err
	}
	k, right, n := e.Classes(), 0, 0
	for i, l := range d.Labels {
		if l < 0 {
			continue
		}
		n++
		if argmax(probs[i*k:(i+1)*k]) == l {
			right++
		}
	}
	if n == 0 {
		return 0, errors.New("evaluator accuracy: the data set has no labels")
	}
	return float64(right) / float64(n), nil
}

func argmax(p []float32) int {
	best := 0
	for j, v := range p {
		if v > p[best] {
			best = j
		}
	}
	return best
}

// Pixels01 converts uint8 pixels to values in [0, 1].
func Pixels01(px []uint8) []float32 {
	out := make([]float32, len(px))
	for i, v := range px {
		out[i] = float32(v) / 255
	}
	return out
}

// Save writes the evaluator's weights and Info to path (safetensors).
func (e *Evaluator) Save(path string) error {
	info, err := json.Marshal(e.Info)
	if err != nil {
		return err
	}
	tensors := map[string]Tensor{}
	for _, p := range e.Params() {
		tensors[p.Name] = exportTensor(p)
	}
	meta := map[string]string{"format": EvaluatorFormat, "genstudio": string(info)}
	return writeFileAtomic(path, func(w io.Writer) error { return WriteSafetensors(w, tensors, meta) })
}

// LoadEvaluator reads an evaluator file written by Save.
func LoadEvaluator(path string) (*Evaluator, error) {
	tensors, meta, err := ReadSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("load evaluator: %w", err)
	}
	return evaluatorFrom(tensors, meta, path)
}

func evaluatorFrom(tensors map[string]Tensor, meta map[string]string, name string) (*Evaluator, error) {
	if meta["format"] != EvaluatorFormat {
		return nil, fmt.Errorf("load evaluator %s: not an evaluator file (format %q)", name, meta["format"])
	}
	var info EvaluatorInfo
	if err := json.Unmarshal([]byte(meta["genstudio"]), &info); err != nil {
		return nil, fmt.Errorf("load evaluator %s: bad metadata: %w", name, err)
	}
	e, err := NewEvaluator(info)
	if err != nil {
		return nil, fmt.Errorf("load evaluator %s: %w", name, err)
	}
	if err := restoreState(e.Params(), tensors); err != nil {
		return nil, fmt.Errorf("load evaluator %s: %w", name, err)
	}
	e.updateDigest()
	return e, nil
}

// MNISTEvaluator returns the built-in evaluator for 28×28 digits, whose
// weights are embedded in the program (made by `genstudio evaluator
// train`; see the README). Each call returns a new instance.
func MNISTEvaluator() (*Evaluator, error) {
	b, err := evaluatorFiles.ReadFile("evaluator/" + MNISTEvaluatorName + ".safetensors")
	if err != nil {
		return nil, fmt.Errorf("the built-in MNIST evaluator is missing from this build: %w", err)
	}
	tensors, meta, err := DecodeSafetensors(b, "built-in "+MNISTEvaluatorName)
	if err != nil {
		return nil, err
	}
	return evaluatorFrom(tensors, meta, "built-in "+MNISTEvaluatorName)
}

// EvaluatorTraining configures TrainEvaluator.
type EvaluatorTraining struct {
	Name   string
	Kind   string  // KindClassifier or KindAutoencoder; "" picks by the data's classes
	Epochs int     // passes over the training set
	Batch  int     // images a step
	LR     float64 // Adam's learning rate, halved after each epoch past the first
	Seed   uint64  // weights, shuffling and shifts
	// Shift is the largest random translation in pixels applied to each
	// training image (0 = none); the images are not otherwise changed.
	Shift int
	// Progress, when set, is called every 50 steps and at the end of each
	// epoch with the step, the total and the mean loss since the last call.
	Progress func(step, steps int, loss float64)
}

// DefaultEvaluatorTraining is the recipe of the built-in MNIST evaluator.
func DefaultEvaluatorTraining() EvaluatorTraining {
	return EvaluatorTraining{Name: MNISTEvaluatorName, Epochs: 6, Batch: 128, LR: 1e-3, Seed: 1, Shift: 2}
}

// TrainEvaluator trains an evaluator on train: a classifier of its
// labelled images when it has at least two classes, otherwise (or with
// tr.Kind KindAutoencoder) an autoencoder of all its images. When test is
// not nil it records the classifier's accuracy or the autoencoder's
// reconstruction error on it. It is deterministic for a given recipe and
// data.
func TrainEvaluator(ctx context.Context, train, test *project.Dataset, tr EvaluatorTraining) (*Evaluator, error) {
	kind := tr.Kind
	if kind == "" {
		kind = KindClassifier
		if len(train.Classes) < 2 {
			kind = KindAutoencoder
		}
	}
	ae := kind == KindAutoencoder
	var idx []int
	for i, l := range train.Labels {
		if ae || (l >= 0 && l < len(train.Classes)) {
			idx = append(idx, i)
		}
	}
	if !ae && len(train.Classes) < 2 {
		return nil, errors.New("train evaluator: a classifier needs at least 2 classes (class sub-folders)")
	}
	if len(idx) < tr.Batch || tr.Batch < 1 || tr.Epochs < 1 || !(tr.LR > 0) {
		return nil, fmt.Errorf("train evaluator: %d usable images, batch %d, %d epochs, lr %g cannot train", len(idx), tr.Batch, tr.Epochs, tr.LR)
	}
	start := time.Now()
	info := EvaluatorInfo{Name: tr.Name, Kind: kind, Width: train.Width, Height: train.Height, Channels: train.C(),
		Seed: tr.Seed, Epochs: tr.Epochs, Batch: tr.Batch}
	if !ae {
		info.Classes = train.Classes
	}
	e, err := NewEvaluator(info)
	if err != nil {
		return nil, err
	}
	b, k, size := tr.Batch, len(train.Classes), train.ImageSize()
	g := nn.NewGraph(true)
	xT := tensor.New(tensor.WithShape(b, train.C(), train.Height, train.Width), tensor.Of(tensor.Float32))
	tT := tensor.New(tensor.WithShape(b, max(k, 1)), tensor.Of(tensor.Float32))
	weights := g.Nodes(e.Params())
	cost, err := e.trainingLoss(g, g.Input("x", xT), tT)
	if err != nil {
		return nil, fmt.Errorf("train evaluator: %w", err)
	}
	var loss G.Value
	G.Read(cost, &loss)
	if _, err := G.Grad(cost, weights...); err != nil {
		return nil, fmt.Errorf("train evaluator: %w", err)
	}
	vm := G.NewTapeMachine(g.ExprGraph, G.BindDualValues(weights...))
	defer vm.Close()
	opt := models.NewAdam(nn.Tensors(e.Params()), tr.LR, 0.9, 0.999)

	rng := rand.New(rand.NewPCG(tr.Seed, 0xe7a1))
	perEpoch := len(idx) / b
	steps := perEpoch * tr.Epochs
	x, t := xT.Data().([]float32), tT.Data().([]float32)
	var sum float64
	var count int
	for ep := 0; ep < tr.Epochs; ep++ {
		opt.LR = tr.LR * math.Pow(0.5, float64(max(0, ep-1)))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for s := 0; s < perEpoch; s++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			clear(t)
			for i := 0; i < b; i++ {
				j := idx[s*b+i]
				dx, dy := 0, 0
				if tr.Shift > 0 {
					dx, dy = rng.IntN(2*tr.Shift+1)-tr.Shift, rng.IntN(2*tr.Shift+1)-tr.Shift
				}
				shiftImage(x[i*size:(i+1)*size], train.Pixels[j*size:(j+1)*size], train.Width, train.Height, dx, dy)
				if !ae {
					t[i*k+train.Labels[j]] = 1
				}
			}
			l, err := gradStep(vm, weights, &loss, opt)
			if err != nil {
				return nil, fmt.Errorf("train evaluator, step %d: %w", ep*perEpoch+s+1, err)
			}
			sum += l
			count++
			step := ep*perEpoch + s + 1
			if tr.Progress != nil && (step%50 == 0 || s == perEpoch-1) {
				tr.Progress(step, steps, sum/float64(count))
				sum, count = 0, 0
			}
		}
	}
	e.Info.Steps = steps
	e.updateDigest()
	if test != nil && test.Len() > 0 {
		if ae {
			e.Info.TestMSE, err = e.reconstructionError(ctx, test)
		} else {
			e.Info.Accuracy, err = e.Accuracy(ctx, test)
		}
		if err != nil {
			return nil, err
		}
		e.Info.TestN = test.Len()
		if ae {
			e.Info.TestN = min(test.Len(), evalChunk)
		}
	}
	e.Info.Seconds = time.Since(start).Seconds()
	return e, nil
}

// trainingLoss is the mean cross-entropy of the logits with the one-hot
// targets t, or an autoencoder's mean squared reconstruction error.
func (e *Evaluator) trainingLoss(g *nn.Graph, x *G.Node, t *tensor.Dense) (*G.Node, error) {
	feat, logits, err := e.forward(g, x)
	if err != nil {
		return nil, err
	}
	if !e.autoencoder() {
		ce, err := nn.CrossEntropy(logits, g.Input("t", t))
		if err != nil {
			return nil, err
		}
		return G.Mean(ce)
	}
	y, err := e.decode(g, feat)
	if err != nil {
		return nil, err
	}
	d, err := G.Sub(y, x)
	if err == nil {
		d, err = G.Square(d)
	}
	if err != nil {
		return nil, err
	}
	return G.Mean(d)
}

// reconstructionError is an autoencoder's mean squared error per pixel on
// d's images.
func (e *Evaluator) reconstructionError(ctx context.Context, d *project.Dataset) (float64, error) {
	g := nn.NewGraph(false)
	n := min(d.Len(), evalChunk)
	xT := tensor.New(tensor.WithShape(n, d.C(), d.Height, d.Width), tensor.WithBacking(Pixels01(d.Pixels[:n*d.ImageSize()])))
	x := g.Input("x", xT)
	loss, err := e.trainingLoss(g, x, nil)
	if err != nil {
		return 0, err
	}
	var v G.Value
	G.Read(loss, &v)
	vm := G.NewTapeMachine(g.ExprGraph)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return 0, err
	}
	return float64(v.Data().(float32)), ctx.Err()
}

// shiftImage writes src (w×h planes, uint8) moved by (dx, dy) pixels into
// dst as values in [0, 1], filling the uncovered border with 0.
func shiftImage(dst []float32, src []uint8, w, h, dx, dy int) {
	planes := len(src) / (w * h)
	clear(dst)
	for p := 0; p < planes; p++ {
		for y := max(0, dy); y < min(h, h+dy); y++ {
			sr := src[p*w*h+(y-dy)*w:]
			dr := dst[p*w*h+y*w:]
			for x := max(0, dx); x < min(w, w+dx); x++ {
				dr[x] = float32(sr[x-dx]) / 255
			}
		}
	}
}

// gradStep runs the training graph once with zeroed gradients, refuses a
// non-finite loss and applies Adam.
func gradStep(vm G.VM, weights G.Nodes, loss *G.Value, opt *models.Adam) (float64, error) {
	grad := func(n *G.Node) (tensor.Tensor, error) {
		gv, err := n.Grad()
		if err != nil {
			return nil, err
		}
		t, ok := gv.(tensor.Tensor)
		if !ok {
			return nil, fmt.Errorf("gradient of %s is not a tensor", n.Name())
		}
		return t, nil
	}
	for _, n := range weights {
		if gv, err := n.Grad(); err == nil {
			if t, ok := gv.(tensor.Tensor); ok {
				t.Zero()
			}
		}
	}
	vm.Reset()
	if err := vm.RunAll(); err != nil {
		return 0, err
	}
	grads := make([]tensor.Tensor, len(weights))
	for i, n := range weights {
		var err error
		if grads[i], err = grad(n); err != nil {
			return 0, err
		}
	}
	l := float64((*loss).Data().(float32))
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, &models.NonFiniteLossError{Name: "cross-entropy", Value: l}
	}
	return l, opt.Update(grads)
}

// HoldOut splits d into a training set and every k-th image as a test set
// (the accuracy of an evaluator trained on a user's folder).
func HoldOut(d *project.Dataset, k int) (train, test *project.Dataset) {
	size := d.ImageSize()
	tr, te := *d, *d
	tr.Pixels, tr.Labels, te.Pixels, te.Labels = nil, nil, nil, nil
	for i := 0; i < d.Len(); i++ {
		dst := &tr
		if i%k == k-1 {
			dst = &te
		}
		dst.Pixels = append(dst.Pixels, d.Pixels[i*size:(i+1)*size]...)
		dst.Labels = append(dst.Labels, d.Labels[i])
	}
	return &tr, &te
}

// DataFingerprint names a data set's contents (pixels, labels, classes and
// shape): an evaluator cached under it is retrained when the data change.
func DataFingerprint(d *project.Dataset) string {
	h := sha256.New()
	fmt.Fprintf(h, "%dx%dx%d %q\n", d.Width, d.Height, d.C(), d.Classes)
	h.Write(d.Pixels)
	for _, l := range d.Labels {
		fmt.Fprintf(h, "%d,", l)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
