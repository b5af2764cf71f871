package metrics_test

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/genstudio/genstudio/training/metrics"
)

func ExampleFrechetGaussian() {
	// N((0,0), diag(1,4)) against N((1,2), diag(4,9)):
	// ‖μ1−μ2‖² + Σ (√a_i − √b_i)² = 5 + 1 + 1.
	fid, err := metrics.FrechetGaussian(
		[]float64{0, 0}, []float64{1, 2},
		mat.NewSymDense(2, []float64{1, 0, 0, 4}),
		mat.NewSymDense(2, []float64{4, 0, 0, 9}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.6f\n", fid)
	// Output: 7.000000
}

func ExampleInceptionScore() {
	// Four sure predictions, one per class: the most an IS over 4 classes
	// can be.
	probs := []float32{
		1, 0, 0, 0,
		0, 1, 0, 0,
		0, 0, 1, 0,
		0, 0, 0, 1,
	}
	mean, std, err := metrics.InceptionScore(probs, 4, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("IS %.3f ± %.3f\n", mean, std)
	// Output: IS 4.000 ± 0.000
}

func ExampleComputePRDC() {
	// 1-D: real points 0, 1, 10, 11 and fake 0.5, 1.5, 2.5, with k = 1.
	m, err := metrics.ComputePRDC([]float32{0, 1, 10, 11}, []float32{0.5, 1.5, 2.5}, 1, 1, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("precision %.3f recall %.3f density %.3f coverage %.3f\n", m.Precision, m.Recall, m.Density, m.Coverage)
	// Output: precision 0.667 recall 0.500 density 1.000 coverage 0.500
}
