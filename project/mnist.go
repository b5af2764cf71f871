package project

import (
	"bytes"
	_ "embed" // for the //go:embed MNIST files
	"fmt"
	"sync"
)

// MNISTSource is the Dataset.Source of the built-in MNIST data set.
const MNISTSource = "mnist"

//go:embed mnist/train-images-idx3-ubyte.gz
var mnistTrainImages []byte

//go:embed mnist/train-labels-idx1-ubyte.gz
var mnistTrainLabels []byte

// mnistOnce decodes the embedded MNIST training set at most once per
// process.
var mnistOnce = sync.OnceValues(func() (*Dataset, error) {
	n, rows, cols, pixels, err := ReadIDXImages(bytes.NewReader(mnistTrainImages))
	if err != nil {
		return nil, fmt.Errorf("decoding built-in MNIST images: %w", err)
	}
	labels, err := ReadIDXLabels(bytes.NewReader(mnistTrainLabels))
	if err != nil {
		return nil, fmt.Errorf("decoding built-in MNIST labels: %w", err)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("decoding built-in MNIST: %d images but %d labels", n, len(labels))
	}
	return &Dataset{
		Name:    "MNIST (train)",
		Source:  MNISTSource,
		Width:   cols,
		Height:  rows,
		Pixels:  pixels,
		Labels:  labels,
		Classes: digitClasses(labels),
	}, nil
})

// LoadMNIST returns the 60,000 labelled 28x28 MNIST training digits, which
// are embedded in the program (no network or files needed). The data are
// decoded on the first call only; every returned Dataset shares the same
// Pixels and Labels storage, so treat them as read-only.
func LoadMNIST() (*Dataset, error) {
	d, err := mnistOnce()
	if err != nil {
		return nil, err
	}
	c := *d
	c.Pixels = d.Pixels[:len(d.Pixels):len(d.Pixels)]
	c.Labels = d.Labels[:len(d.Labels):len(d.Labels)]
	c.Classes = append([]string(nil), d.Classes...)
	return &c, nil
}
