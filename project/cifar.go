package project

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

const (
	// cifarSide is the width and height of a CIFAR-10 image.
	cifarSide = 32
	// cifarRecord is the length of one CIFAR-10 binary record: a label
	// byte and 32×32 red, green and blue planes.
	cifarRecord = 1 + 3*cifarSide*cifarSide
	// cifarMaxBytes caps the size of a CIFAR-10 batch file (a real one is
	// 30,730,000 bytes).
	cifarMaxBytes = idxMaxBytes
)

// CIFAR10Classes are the CIFAR-10 class names, indexed by label.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// LoadCIFAR10 loads a CIFAR-10 binary batch file (data_batch_N.bin,
// test_batch.bin): records of one label byte (0..9) followed by 3072 bytes,
// the red, green and blue planes of a 32×32 image. The result is a 32×32
// RGB Dataset labelled with CIFAR10Classes. A file whose length is not a
// whole number of records, or with a label over 9, is an error.
func LoadCIFAR10(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading CIFAR-10 batch: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loading CIFAR-10 batch: %w", err)
	}
	name := filepath.Base(path)
	if err := checkCIFARSize(name, fi.Size()); err != nil {
		return nil, err
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("reading CIFAR-10 batch %s: %w", path, err)
	}
	d, err := parseCIFAR10(name, data)
	if err != nil {
		return nil, err
	}
	d.Source = path
	return d, nil
}

// checkCIFARSize checks that a CIFAR-10 batch of n bytes holds a whole,
// non-zero number of records within cifarMaxBytes.
func checkCIFARSize(name string, n int64) error {
	switch {
	case n == 0:
		return fmt.Errorf("CIFAR-10 batch %s is empty", name)
	case n%cifarRecord != 0:
		return fmt.Errorf("CIFAR-10 batch %s has %d bytes, not a multiple of %d", name, n, cifarRecord)
	case n > cifarMaxBytes:
		return fmt.Errorf("CIFAR-10 batch %s has %d bytes, more than the limit of %d", name, n, int64(cifarMaxBytes))
	}
	return nil
}

// parseCIFAR10 parses a CIFAR-10 binary batch held in data; name is the
// file's name for errors and Dataset.Name. Pixels are copied out of data.
func parseCIFAR10(name string, data []byte) (*Dataset, error) {
	if err := checkCIFARSize(name, int64(len(data))); err != nil {
		return nil, err
	}
	n := len(data) / cifarRecord
	const img = cifarRecord - 1
	d := &Dataset{
		Name:     name,
		Source:   name,
		Width:    cifarSide,
		Height:   cifarSide,
		Channels: 3,
		Pixels:   make([]uint8, n*img),
		Labels:   make([]int, n),
		Classes:  append([]string(nil), CIFAR10Classes...),
	}
	for i := range n {
		rec := data[i*cifarRecord : (i+1)*cifarRecord]
		if int(rec[0]) >= len(CIFAR10Classes) {
			return nil, fmt.Errorf("CIFAR-10 batch %s: record %d has label %d, not 0..9 (is it a CIFAR-100 file?)", name, i, rec[0])
		}
		d.Labels[i] = int(rec[0])
		copy(d.Pixels[i*img:(i+1)*img], rec[1:])
	}
	return d, nil
}
