package nn_test

import (
	"fmt"

	"github.com/genstudio/genstudio/models/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A 3×3 box filter with bias −20 and a ReLU on one 3×3 image: each output
// is the sum of the pixel's neighbourhood (zero padding), less 20, and at
// least 0. (ReLU computes x·0 below zero, as Gorgonia's composite does, so
// clipped values are −0, which equals 0.)
func Example() {
	conv := &nn.Conv2d{Name: "conv", In: 1, Out: 1, K: 3, Stride: 1, Pad: 1,
		W: tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1})),
		B: tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{-20}))}
	image := tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{0, 1, 2, 3, 4, 5, 6, 7, 8}))

	g := nn.NewGraph(false)
	y, err := conv.Forward(g, g.Input("image", image))
	if err != nil {
		panic(err)
	}
	if y, err = nn.ReLU(y); err != nil {
		panic(err)
	}
	m := G.NewTapeMachine(g.ExprGraph)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		panic(err)
	}
	out := y.Value().Data().([]float64)
	fmt.Println(y.Shape())
	for i := 0; i < 3; i++ {
		fmt.Println(out[3*i : 3*i+3])
	}
	// Output:
	// (1, 1, 3, 3)
	// [-0 -0 -0]
	// [1 16 7]
	// [0 13 4]
}
