package project

import (
	"bytes"
	"testing"
)

// BenchmarkDecodeMNIST measures the uncached decode of the embedded MNIST
// training set (gzip + IDX), which LoadMNIST does once per process.
func BenchmarkDecodeMNIST(b *testing.B) {
	for b.Loop() {
		n, _, _, _, err := ReadIDXImages(bytes.NewReader(mnistTrainImages))
		if err != nil || n != 60000 {
			b.Fatalf("ReadIDXImages: n=%d err=%v", n, err)
		}
		labels, err := ReadIDXLabels(bytes.NewReader(mnistTrainLabels))
		if err != nil || len(labels) != 60000 {
			b.Fatalf("ReadIDXLabels: n=%d err=%v", len(labels), err)
		}
	}
}
