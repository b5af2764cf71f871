package project

import (
	"bytes"
	_ "embed" // for the //go:embed MNIST files
	"fmt"
	"sync"
)

// MNISTSource is the Dataset.Source of the built-in MNIST data set.
const MNISTSource = "mnist"

// MNISTTestSource is the Dataset.Source of the built-in MNIST test set.
const MNISTTestSource = "mnist-test"

//go:embed mnist/train-images-idx3-ubyte.gz
var mnistTrainImages []byte

//go:embed mnist/train-labels-idx1-ubyte.gz
var mnistTrainLabels []byte

//go:embed mnist/t10k-images-idx3-ubyte.gz
var mnistTestImages []byte

//go:embed mnist/t10k-labels-idx1-ubyte.gz
var mnistTestLabels []byte

// decodeMNIST decodes one embedded pair of MNIST idx files.
func decodeMNIST(name, source string, images, labelFile []byte) (*Dataset, error) {
	n, rows, cols, pixels, err := ReadIDXImages(bytes.NewReader(images))
	if err != nil {
		return nil, fmt.Errorf("decoding built-in %s images: %w", name, err)
	}
	labels, err := ReadIDXLabels(bytes.NewReader(labelFile))
	if err != nil {
		return nil, fmt.Errorf("decoding built-in %s labels: %w", name, err)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("decoding built-in %s: %d images but %d labels", name, n, len(labels))
	}
	return &Dataset{
		Name:    name,
		Source:  source,
		Width:   cols,
		Height:  rows,
		Pixels:  pixels,
		Labels:  labels,
		Classes: digitClasses(labels),
	}, nil
}

// The embedded sets are decoded at most once per process.
var (
	mnistOnce = sync.OnceValues(func() (*Dataset, error) {
		return decodeMNIST("MNIST (train)", MNISTSource, mnistTrainImages, mnistTrainLabels)
	})
	mnistTestOnce = sync.OnceValues(func() (*Dataset, error) {
		return decodeMNIST("MNIST (test)", MNISTTestSource, mnistTestImages, mnistTestLabels)
	})
)

// LoadMNIST returns the 60,000 labelled 28x28 MNIST training digits, which
// are embedded in the program (no network or files needed). The data are
// decoded on the first call only; every returned Dataset shares the same
// Pixels and Labels storage, so treat them as read-only.
func LoadMNIST() (*Dataset, error) { return shareMNIST(mnistOnce()) }

// LoadMNISTTest returns the 10,000 labelled MNIST test digits (t10k), also
// embedded, for the evaluator's accuracy and the metrics' real-data
// reference. Like LoadMNIST, the returned Dataset's storage is shared.
func LoadMNISTTest() (*Dataset, error) { return shareMNIST(mnistTestOnce()) }

// shareMNIST returns a copy of d's header over its shared storage.
func shareMNIST(d *Dataset, err error) (*Dataset, error) {
	if err != nil {
		return nil, err
	}
	c := *d
	c.Pixels = d.Pixels[:len(d.Pixels):len(d.Pixels)]
	c.Labels = d.Labels[:len(d.Labels):len(d.Labels)]
	c.Classes = append([]string(nil), d.Classes...)
	return &c, nil
}
