package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// snState is the fixed u, v of the test cases (eval graphs leave them be).
func snState(rows, cols int, transposed bool, dt tensor.Dtype) *SpectralNorm {
	return NewSpectralNorm("sn", rows, cols, transposed, dt, rand.New(rand.NewPCG(7, 7)))
}

// refSigma is uᵀMv for M the rows×cols matrix of w (stored cols×rows when
// transposed).
func refSigma(w []float64, rows, cols int, transposed bool) float64 {
	s := snState(rows, cols, transposed, tensor.Float64)
	u, v := s.U.Float64s(), s.V.Float64s()
	var sigma float64
	for o := 0; o < rows; o++ {
		for i := 0; i < cols; i++ {
			m := w[o*cols+i]
			if transposed {
				m = w[i*rows+o]
			}
			sigma += u[o] * m * v[i]
		}
	}
	return sigma
}

func scaled(w []float64, by float64) []float64 {
	out := make([]float64, len(w))
	for i, x := range w {
		out[i] = x * by
	}
	return out
}

// snLinearCase is a spectrally normalised Linear in an evaluation graph
// (u and v fixed, so that central differences see one function).
func snLinearCase() opCase {
	const n, in, out = 4, 5, 3
	return opCase{
		name: "Linear/spectral",
		ins: func(rng *rand.Rand) []*tensor.Dense {
			return []*tensor.Dense{randTensor(rng, 1, n, in), randTensor(rng, 1, in, out), randTensor(rng, 1, out)}
		},
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			l := &Linear{Name: "fc", In: in, Out: out, W: ins[1], B: ins[2], SN: snState(out, in, true, ins[1].Dtype())}
			return l.Forward(g, x[0])
		},
		ref: func(v [][]float64) []float64 {
			return refLinear(v[0], scaled(v[1], 1/refSigma(v[1], out, in, true)), v[2], n, in, out)
		},
	}
}

// snConvCase is a spectrally normalised Conv2d in an evaluation graph.
func snConvCase() opCase {
	const n, cin, h, w, cout, k = 2, 3, 5, 5, 4, 3
	return opCase{
		name: "Conv2d/spectral",
		ins: func(rng *rand.Rand) []*tensor.Dense {
			return []*tensor.Dense{randTensor(rng, 1, n, cin, h, w), randTensor(rng, 1, cout, cin, k, k), randTensor(rng, 1, cout)}
		},
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			c := &Conv2d{Name: "conv", In: cin, Out: cout, K: k, Stride: 2, Pad: 1, W: ins[1], B: ins[2],
				SN: snState(cout, cin*k*k, false, ins[1].Dtype())}
			return c.Forward(g, x[0])
		},
		ref: func(v [][]float64) []float64 {
			return refConv(v[0], scaled(v[1], 1/refSigma(v[1], cout, cin*k*k, false)), v[2], n, cin, h, w, cout, k, 2, 1)
		},
	}
}

func TestSpectralNormOps(t *testing.T) {
	for _, c := range []opCase{snLinearCase(), snConvCase()} {
		t.Run(c.name, func(t *testing.T) {
			ins := c.ins(newRNG())
			raw := make([][]float64, len(ins))
			for i, in := range ins {
				raw[i] = in.Float64s()
			}
			want := c.ref(raw)
			got, err := forward(c, ins)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
					t.Fatalf("[%d] = %.15g, want %.15g", i, got[i], want[i])
				}
			}
			rng := newRNG()
			checkGrad(t, c, c.ins(rng), rng)
		})
	}
}

// TestSpectralNormPowerIteration: training runs step u and v, and σ
// converges to the largest singular value (gonum's SVD), the same for a
// Linear's transposed storage as for a conv's; evaluation runs leave u and
// v alone; the weight's spectral norm is one op however often the graph
// uses the layer.
func TestSpectralNormPowerIteration(t *testing.T) {
	const rows, cols = 6, 9
	rng := newRNG()
	m := randTensor(rng, 1, rows, cols).Float64s() // row-major rows×cols
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(rows, cols, m), mat.SVDNone) {
		t.Fatal("SVD failed")
	}
	top := svd.Values(nil)[0]
	mt := make([]float64, len(m)) // the same matrix stored cols×rows
	for o := 0; o < rows; o++ {
		for i := 0; i < cols; i++ {
			mt[i*rows+o] = m[o*cols+i]
		}
	}
	x := randTensor(rng, 1, 2, cols)
	for _, transposed := range []bool{false, true} {
		for _, train := range []bool{true, false} {
			w := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(append([]float64(nil), m...)))
			l := &Linear{Name: "fc", In: cols, Out: rows}
			if transposed {
				w = tensor.New(tensor.WithShape(cols, rows), tensor.WithBacking(append([]float64(nil), mt...)))
				l.W, l.SN = w, snState(rows, cols, true, tensor.Float64)
			} else {
				l.W, l.SN = tensor.New(tensor.WithShape(cols, rows), tensor.Of(tensor.Float64)), snState(rows, cols, false, tensor.Float64)
			}
			u0 := append([]float64(nil), l.SN.U.Float64s()...)
			g := NewGraph(train)
			wn := g.Node(Param{Name: "w", T: w})
			var y *G.Node
			var err error
			if transposed { // the layer itself, applied twice
				xn := g.Input("x", x)
				if y, err = l.Forward(g, xn); err == nil {
					y, err = l.Forward(g, xn)
				}
			} else { // the op on a conv-layout matrix
				y, err = g.spectral(l.SN, wn, true)
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := countOps(g, "sn(SpectralNorm)"); n != 1 && transposed {
				t.Errorf("%d spectral-norm ops for one layer used twice, want 1", n)
			}
			_ = y
			vm := G.NewTapeMachine(g.ExprGraph)
			for r := 0; r < 60; r++ {
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
			}
			vm.Close()
			moved := false
			for i, v := range l.SN.U.Float64s() {
				moved = moved || v != u0[i]
			}
			if moved != train {
				t.Errorf("transposed %v, training %v: u moved = %v", transposed, train, moved)
			}
			if train && math.Abs(l.SN.Sigma()-top) > 1e-9*top {
				t.Errorf("transposed %v: σ after 60 steps %.12g, largest singular value %.12g", transposed, l.SN.Sigma(), top)
			}
			if !train && math.Abs(l.SN.Sigma()) >= top+1e-12 {
				t.Errorf("σ = uᵀWv of unit vectors %.12g exceeds the largest singular value %.12g", l.SN.Sigma(), top)
			}
		}
	}
}

// TestTopKGrad: the forward is the identity; the backward of Σ r⊙y keeps
// r at the k largest inputs, times n/k, and is 0 elsewhere.
func TestTopKGrad(t *testing.T) {
	x := tensor.New(tensor.WithShape(6, 1), tensor.WithBacking([]float64{0.3, -1, 2, 0.5, 2, -3}))
	r := []float64{1, 2, 3, 4, 5, 6}
	for _, c := range []struct {
		k    int
		want []float64
	}{
		{6, []float64{1, 2, 3, 4, 5, 6}},
		{3, []float64{0, 0, 6, 8, 10, 0}}, // 2, 2, 0.5 kept; scale 2
		{1, []float64{0, 0, 18, 0, 0, 0}}, // the first of the tied 2s
		{0, []float64{0, 0, 18, 0, 0, 0}}, // clamped to 1
	} {
		g := NewGraph(true)
		xn := g.Node(Param{Name: "x", T: x})
		k := c.k
		y, err := TopKGrad(xn, func() int { return k })
		if err != nil {
			t.Fatal(err)
		}
		rn := G.NewTensor(g.ExprGraph, tensor.Float64, 2, G.WithShape(6, 1), G.WithValue(tensor.New(tensor.WithShape(6, 1), tensor.WithBacking(r))))
		p, _ := G.HadamardProd(y, rn)
		loss, _ := G.Sum(p)
		if _, err := G.Grad(loss, xn); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g.ExprGraph, G.BindDualValues(xn))
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		if got := values(y.Value()); !slicesEqual(got, x.Float64s()) {
			t.Errorf("k %d: forward %v, want the input", c.k, got)
		}
		gv, _ := xn.Grad()
		if got := values(gv); !slicesEqual(got, c.want) {
			t.Errorf("k %d: gradient %v, want %v", c.k, got, c.want)
		}
		vm.Close()
	}
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12 {
			return false
		}
	}
	return true
}

// refMinibatchStd is the plain loop of MinibatchStd: x (n, m) and r copies
// of s per sample.
func refMinibatchStd(x []float64, n, m, r int) []float64 {
	var s float64
	for j := 0; j < m; j++ {
		var mu, v float64
		for i := 0; i < n; i++ {
			mu += x[i*m+j]
		}
		mu /= float64(n)
		for i := 0; i < n; i++ {
			v += (x[i*m+j] - mu) * (x[i*m+j] - mu)
		}
		s += math.Sqrt(v/float64(n) + 1e-8)
	}
	s /= float64(m)
	var out []float64
	for i := 0; i < n; i++ {
		out = append(out, x[i*m:(i+1)*m]...)
		for k := 0; k < r; k++ {
			out = append(out, s)
		}
	}
	return out
}

func mbstdCase(shape ...int) opCase {
	n, m, r := shape[0], 1, 1
	for _, d := range shape[1:] {
		m *= d
	}
	if len(shape) == 4 {
		r = shape[2] * shape[3]
	}
	return opCase{
		name: fmt.Sprintf("MinibatchStd/%v", shape), train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense { return []*tensor.Dense{randTensor(rng, 1, shape...)} },
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			return MinibatchStd(x[0])
		},
		ref: func(v [][]float64) []float64 { return refMinibatchStd(v[0], n, m, r) },
	}
}

func TestMinibatchStd(t *testing.T) {
	for _, c := range []opCase{mbstdCase(5, 4), mbstdCase(3, 2, 3, 3)} {
		t.Run(c.name, func(t *testing.T) {
			ins := c.ins(newRNG())
			want := c.ref([][]float64{ins[0].Float64s()})
			got, err := forward(c, ins)
			if err != nil {
				t.Fatal(err)
			}
			if !slicesEqual(got, want) {
				t.Fatalf("forward %v, want %v", got, want)
			}
			rng := newRNG()
			checkGrad(t, c, c.ins(rng), rng)
		})
	}
	if _, err := MinibatchStd(G.NewMatrix(G.NewGraph(), tensor.Float64, G.WithShape(1, 3))); err == nil {
		t.Error("a batch of one was accepted")
	}
}

// refAugment is DiffAugment of image i written out with 4-D indices.
func refAugment(a *Augment, x []float64) []float64 {
	n, c, h, w := a.N, a.C, a.H, a.W
	at := func(i, ch, r, q int) int { return ((i*c+ch)*h+r)*w + q }
	out := make([]float64, len(x))
	for i := 0; i < n; i++ {
		v := make([]float64, c*h*w)
		for ch := 0; ch < c; ch++ {
			for r := 0; r < h; r++ {
				for q := 0; q < w; q++ {
					v[(ch*h+r)*w+q] = x[at(i, ch, r, q)] + a.bright[i]
				}
			}
		}
		if c > 1 {
			for r := 0; r < h; r++ {
				for q := 0; q < w; q++ {
					var m float64
					for ch := 0; ch < c; ch++ {
						m += v[(ch*h+r)*w+q]
					}
					m /= float64(c)
					for ch := 0; ch < c; ch++ {
						v[(ch*h+r)*w+q] = (v[(ch*h+r)*w+q]-m)*a.sat[i] + m
					}
				}
			}
		}
		var m float64
		for _, e := range v {
			m += e
		}
		m /= float64(len(v))
		for j := range v {
			v[j] = (v[j]-m)*a.con[i] + m
		}
		for ch := 0; ch < c; ch++ {
			for r := 0; r < h; r++ {
				for q := 0; q < w; q++ {
					sr, sq := r-a.dy[i], q-a.dx[i]
					inCut := r >= a.cy[i] && r < a.cy[i]+a.cut && q >= a.cx[i] && q < a.cx[i]+a.cut
					if !inCut && sr >= 0 && sr < h && sq >= 0 && sq < w {
						out[at(i, ch, r, q)] = v[(ch*h+sr)*w+sq]
					}
				}
			}
		}
	}
	return out
}

func augCase(n, c, h, w int) opCase {
	a := NewAugment(n, c, h, w, rand.New(rand.NewPCG(3, 4)))
	return opCase{
		name: fmt.Sprintf("DiffAugment/%dx%dx%dx%d", n, c, h, w), train: true,
		ins: func(rng *rand.Rand) []*tensor.Dense { return []*tensor.Dense{randTensor(rng, 1, n, c, h, w)} },
		build: func(g *Graph, ins []*tensor.Dense, x G.Nodes) (*G.Node, error) {
			return a.Apply(x[0])
		},
		ref: func(v [][]float64) []float64 { return refAugment(a, v[0]) },
	}
}

// TestDiffAugment checks the augmentation against the written-out loop
// and its backward by central differences, for grey and colour images,
// and that Next draws shifts and cutouts inside their ranges.
func TestDiffAugment(t *testing.T) {
	for _, c := range []opCase{augCase(3, 1, 8, 8), augCase(2, 3, 8, 6)} {
		t.Run(c.name, func(t *testing.T) {
			ins := c.ins(newRNG())
			want := c.ref([][]float64{ins[0].Float64s()})
			got, err := forward(c, ins)
			if err != nil {
				t.Fatal(err)
			}
			if !slicesEqual(got, want) {
				t.Fatalf("forward differs from the loop")
			}
			rng := newRNG()
			checkGrad(t, c, c.ins(rng), rng)
		})
	}
	a := NewAugment(50, 1, 28, 28, rand.New(rand.NewPCG(1, 1)))
	seenShift := false
	for k := 0; k < 20; k++ {
		a.Next()
		for i := 0; i < a.N; i++ {
			if a.dx[i] < -4 || a.dx[i] > 4 || a.dy[i] < -4 || a.dy[i] > 4 || a.cx[i] < 0 || a.cx[i]+a.cut > 28 || a.cy[i]+a.cut > 28 {
				t.Fatalf("image %d: shift (%d, %d), cutout at (%d, %d) of %d", i, a.dx[i], a.dy[i], a.cx[i], a.cy[i], a.cut)
			}
			seenShift = seenShift || a.dx[i] == 4 || a.dy[i] == -4
			if a.bright[i] < -0.5 || a.bright[i] > 0.5 || a.con[i] < 0.5 || a.con[i] > 1.5 {
				t.Fatalf("colour draws %g, %g", a.bright[i], a.con[i])
			}
		}
	}
	if a.cut != 14 || !seenShift {
		t.Errorf("cutout side %d (want 14), largest shifts drawn: %v", a.cut, seenShift)
	}
}
