package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The convolutions of the default conv models at batch 64.
var benchGeoms = []struct {
	name string
	g    convGeom
}{
	{"dcgan.G.conv1", newConvGeom(64, 128, 14, 14, 64, 3, 1, 1)},
	{"dcgan.G.conv2", newConvGeom(64, 64, 28, 28, 1, 3, 1, 1)},
	{"dcgan.D.conv1", newConvGeom(64, 1, 28, 28, 64, 4, 2, 1)},
	{"dcgan.D.conv2", newConvGeom(64, 64, 14, 14, 128, 4, 2, 1)},
	{"unet.32x28", newConvGeom(64, 32, 28, 28, 32, 3, 1, 1)},
	{"unet.64x14", newConvGeom(64, 64, 14, 14, 64, 3, 1, 1)},
	{"unet.128x14", newConvGeom(64, 128, 14, 14, 64, 3, 1, 1)},
}

func BenchmarkConvKernels(b *testing.B) {
	for _, bg := range benchGeoms {
		g := bg.g
		rng := rand.New(rand.NewPCG(1, 1))
		x := make([]float32, g.b*g.cin*g.h*g.w)
		w := make([]float32, g.cout*g.kdim())
		dy := make([]float32, g.b*g.cout*g.p())
		y := make([]float32, len(dy))
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		for _, s := range [][]float32{x, w, dy} {
			for i := range s {
				s[i] = rng.Float32() - 0.5
			}
		}
		sc := &scratch{}
		for _, k := range []struct {
			name string
			f    func()
		}{
			{"fwd", func() { convFwd(y, x, w, nil, g, sc) }},
			{"dx", func() { convDX(dx, w, dy, g, sc) }},
			{"dw", func() { convDW(dw, x, dy, g, sc) }},
		} {
			for _, cc := range []int{1024, 4096, 16384, 1 << 20} {
				convChunkCols = cc
				b.Run(fmt.Sprintf("%s/%s/%d", bg.name, k.name, cc), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						k.f()
					}
					b.ReportMetric(float64(g.flops())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
			convChunkCols = 1024
		}
	}
}
