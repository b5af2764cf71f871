package project

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// The fuzz targets below run over their seed corpora (testdata/fuzz/NAME)
// in every `go test`; fuzz one with `go test -run=XXX -fuzz=NAME ./project/`.

// FuzzReadIDX checks that ReadIDXImages never panics and that what it
// accepts is consistent.
func FuzzReadIDX(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		n, rows, cols, pix, err := ReadIDXImages(bytes.NewReader(data))
		if err != nil {
			return
		}
		if rows < 1 || cols < 1 || rows > idxMaxSide || cols > idxMaxSide || len(pix) != n*rows*cols {
			t.Fatalf("accepted %d images of %dx%d with %d pixels", n, rows, cols, len(pix))
		}
	})
}

// FuzzCIFAR checks the CIFAR-10 batch parser.
func FuzzCIFAR(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseCIFAR10("fuzz.bin", data)
		if err != nil {
			if d != nil {
				t.Fatal("error with a data set")
			}
			return
		}
		if len(data)%cifarRecord != 0 || d.Len() != len(data)/cifarRecord || len(d.Labels) != d.Len() || d.C() != 3 {
			t.Fatalf("accepted %d bytes as %d images", len(data), d.Len())
		}
		for _, l := range d.Labels {
			if l < 0 || l >= len(d.Classes) {
				t.Fatalf("label %d", l)
			}
		}
	})
}

// fuzzZipLimits are small limits, so that fuzzing stays fast; the loader
// must never read past them.
var fuzzZipLimits = zipLimits{
	totalBytes: 1 << 20,
	entryBytes: 256 << 10,
	readBudget: 1 << 20,
	image:      imageLimits{maxSide: 1024, maxPixels: 1 << 18},
}

// FuzzZip checks the zip ingest: no panic, no more uncompressed bytes
// reserved than its cap, a consistent data set. (It never writes to disk:
// entries are decoded in memory.)
func FuzzZip(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		d, reserved, err := loadZipFrom(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.zip", "fuzz", 4, 1, false, fuzzZipLimits, nil)
		if reserved > fuzzZipLimits.totalBytes {
			t.Fatalf("reserved %d bytes, over the cap of %d", reserved, fuzzZipLimits.totalBytes)
		}
		if d == nil {
			if err == nil {
				t.Fatal("no data set and no error")
			}
			return
		}
		if len(d.Pixels) != d.Len()*16 || len(d.Labels) != d.Len() {
			t.Fatalf("%d pixels, %d labels", len(d.Pixels), len(d.Labels))
		}
		for _, l := range d.Labels {
			if l < -1 || l >= len(d.Classes) {
				t.Fatalf("label %d of %d classes", l, len(d.Classes))
			}
		}
		for _, s := range d.Skipped {
			if s.Reason == "" {
				t.Fatalf("skipped %s without a reason", s.Path)
			}
		}
	})
}

// FuzzProjectJSON checks the project.json decoder and migrations: no
// panic, and what it accepts saves and reads back the same.
func FuzzProjectJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeProject(data)
		if err != nil {
			return
		}
		if p.Version != CurrentVersion {
			t.Fatalf("decoded version %d", p.Version)
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		q, err := decodeProject(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		again, _ := json.Marshal(q)
		if !bytes.Equal(out, again) {
			t.Fatalf("round trip differs:\n%s\n%s", out, again)
		}
	})
}
