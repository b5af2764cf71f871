// Package nn is Gen Studio's layer library on Gorgonia: one op framework
// (a forward kernel, a backward built from further ops, float32 and
// float64, split over the cores) and the layers built on it — Linear,
// Conv2d, nearest Upsample ×2, BatchNorm2d, fused activations, channel
// concatenation and residual adds — in the manner of PyTorch's torch.nn.
// A layer owns named parameters (its PyTorch state_dict names) kept as
// tensors apart from any graph, so that the training and the sampling
// graphs of a model read the same values.
//
// Each op is written once here, tested against a plain loop and checked
// by finite differences in this package's tests; the models in the parent
// package compose layers and define no ops of their own.
package nn

import (
	"fmt"
	"hash"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kernel overwrites out (the op's output, kept between runs) from the
// op's inputs. Every run must write all of out.
type Kernel func(out *tensor.Dense, in []*tensor.Dense) error

// Diff builds the gradients of an op's inputs from the gradient of its
// output: one node per input (nil where the input takes no gradient).
type Diff func(in G.Nodes, out, grad *G.Node) (G.Nodes, error)

var opSeq atomic.Int64

// op is one operation of the framework: a fixed output shape, a kernel
// and, when differentiable, its symbolic gradient.
type op struct {
	name  string
	arity int
	typ   hm.Type
	shape tensor.Shape
	run   Kernel
	wrt   []bool
	diff  Diff
	buf   *tensor.Dense
}

// Apply adds an op to the graph of inputs: its output has the given shape,
// run computes it, wrt says which inputs diff differentiates (nil: none)
// and diff builds their gradients. The op's name is made unique, so that
// Gorgonia never merges two ops that happen to look alike.
func Apply(name string, shape tensor.Shape, run Kernel, wrt []bool, diff Diff, inputs ...*G.Node) (*G.Node, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%s: no inputs", name)
	}
	a := hm.TypeVariable('a')
	var ts hm.Types
	for _, in := range inputs {
		ts = append(ts, G.TensorType{Dims: in.Dims(), Of: a})
	}
	ts = append(ts, G.TensorType{Dims: len(shape), Of: a})
	if wrt == nil || diff == nil {
		wrt = make([]bool, len(inputs))
	}
	o := &op{name: fmt.Sprintf("%s#%d", name, opSeq.Add(1)), arity: len(inputs), typ: hm.NewFnType(ts...),
		shape: shape.Clone(), run: run, wrt: wrt, diff: diff}
	y, err := G.ApplyOp(o, inputs...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return y, nil
}

func (o *op) Arity() int                                     { return o.arity }
func (o *op) Type() hm.Type                                  { return o.typ }
func (o *op) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *op) ReturnsPtr() bool                               { return false }
func (o *op) CallsExtern() bool                              { return false }
func (o *op) OverwritesInput() int                           { return -1 }
func (o *op) WriteHash(h hash.Hash)                          { fmt.Fprint(h, o.name) }
func (o *op) String() string                                 { return o.name }
func (o *op) DiffWRT(int) []bool                             { return o.wrt }
func (o *op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

func (o *op) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if o.diff == nil {
		return nil, fmt.Errorf("%s is not differentiable", o.name)
	}
	return o.diff(in, out, grad)
}

func (o *op) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != o.arity {
		return nil, fmt.Errorf("%s: %d inputs, want %d", o.name, len(vs), o.arity)
	}
	in := make([]*tensor.Dense, len(vs))
	for i, v := range vs {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("%s: input %d is %T, not a dense tensor", o.name, i, v)
		}
		if d.RequiresIterator() {
			d = d.Materialize().(*tensor.Dense)
		}
		if d.Dtype() != vs[0].Dtype() {
			return nil, fmt.Errorf("%s: inputs of mixed dtypes", o.name)
		}
		in[i] = d
	}
	dt := in[0].Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%s: unsupported dtype %v", o.name, dt)
	}
	if o.buf == nil || o.buf.Dtype() != dt {
		o.buf = tensor.New(tensor.WithShape(o.shape.Clone()...), tensor.Of(dt))
	}
	if err := o.run(o.buf, in); err != nil {
		return nil, fmt.Errorf("%s: %w", o.name, err)
	}
	return o.buf, nil
}

// Float is the element type of the kernels.
type Float interface{ float32 | float64 }

// Slices returns the data of ts, which share the element type T, each cut
// to its shape's size.
func Slices[T Float](ts ...*tensor.Dense) ([][]T, error) {
	out := make([][]T, len(ts))
	for i, t := range ts {
		d, ok := t.Data().([]T)
		if !ok {
			return nil, fmt.Errorf("tensor %d holds %T", i, t.Data())
		}
		out[i] = d[:t.Shape().TotalSize()]
	}
	return out, nil
}

// Kernels makes a Kernel from its float32 and float64 instances (usually
// the two instances of one generic function).
func Kernels(k32 func(out []float32, in [][]float32) error, k64 func(out []float64, in [][]float64) error) Kernel {
	return func(out *tensor.Dense, in []*tensor.Dense) error {
		all := append([]*tensor.Dense{out}, in...)
		if out.Dtype() == tensor.Float32 {
			d, err := Slices[float32](all...)
			if err != nil {
				return err
			}
			return k32(d[0], d[1:])
		}
		d, err := Slices[float64](all...)
		if err != nil {
			return err
		}
		return k64(d[0], d[1:])
	}
}

// Parallel runs f over [0, n) in about GOMAXPROCS contiguous pieces when
// the work (n·cost values touched) pays for the goroutines. Each index
// must write its own memory, so that the result does not depend on the
// split.
func Parallel(n, cost int, f func(lo, hi int)) {
	p := min(runtime.GOMAXPROCS(0), n)
	if p < 2 || n*cost < 1<<15 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		lo, hi := i*n/p, (i+1)*n/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Gemm is C = op(A)·op(B) + beta·C (row-major; op transposes when tA or tB
// is set): OpenBLAS split over the cores (blas_openblas.go), or gonum.
func Gemm[T Float](tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		sgemm(trans(tA), trans(tB), m, n, k, 1, a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		dgemm(trans(tA), trans(tB), m, n, k, 1, a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
