package models

import (
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestUnScratchConv(t *testing.T) {
	b, c, h := 64, 32, 28
	g := G.NewGraph()
	xv := tensor.New(tensor.WithShape(b, c, h, h), tensor.Of(tensor.Float32))
	wv := tensor.New(tensor.WithShape(c, c, 3, 3), tensor.Of(tensor.Float32))
	for i, d := 0, wv.Data().([]float32); i < len(d); i++ {
		d[i] = 0.01
	}
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(b, c, h, h), G.WithValue(xv), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(c, c, 3, 3), G.WithValue(wv), G.WithName("w"))
	y, err := G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := G.Square(y)
	cost, _ := G.Mean(s)
	if _, err := G.Grad(cost, w, x); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(w))
	for i := 0; i < 4; i++ {
		st := time.Now()
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		t.Log(time.Since(st))
	}
}
