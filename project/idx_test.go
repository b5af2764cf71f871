package project_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/genstudio/genstudio/project"
)

// idxImages builds an IDX image file with the given header and payload.
func idxImages(magic, n, rows, cols uint32, payload []byte) []byte {
	var b bytes.Buffer
	for _, v := range []uint32{magic, n, rows, cols} {
		binary.Write(&b, binary.BigEndian, v)
	}
	b.Write(payload)
	return b.Bytes()
}

// idxLabels builds an IDX label file with the given header and payload.
func idxLabels(magic, n uint32, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	binary.Write(&b, binary.BigEndian, n)
	b.Write(payload)
	return b.Bytes()
}

func sprint(v any) string { return fmt.Sprint(v) }

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// seq returns n bytes 0, 1, 2, ... (mod 256).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// allocatedDuring returns the bytes allocated on the heap while f ran.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadIDXImages(t *testing.T) {
	good := idxImages(0x803, 3, 2, 4, seq(24))
	tests := []struct {
		name    string
		data    []byte
		wantErr string // substring; "" means success
	}{
		{"plain", good, ""},
		{"gzip", gzipped(t, good), ""},
		{"empty input", nil, "truncated: expected 16 bytes of header, got 0"},
		{"short header", good[:7], "truncated: expected 16 bytes of header, got 7"},
		{"labels magic", idxImages(0x801, 3, 2, 4, seq(24)), "bad magic number: expected 0x00000803, found 0x00000801"},
		{"text file", []byte("hello, this is not an IDX file at all"), "expected 0x00000803, found 0x68656c6c"},
		{"truncated pixels", good[:16+20], "truncated: expected 24 bytes of pixel data, got 20"},
		{"truncated gzip", gzipped(t, good)[:30], "idx images"},
		{"zero rows", idxImages(0x803, 1, 0, 4, nil), "bad image size 0x4"},
		{"zero cols", idxImages(0x803, 1, 4, 0, nil), "bad image size 4x0"},
		{"huge rows", idxImages(0x803, 1, 100000, 4, nil), "bad image size 100000x4"},
		{"huge cols", idxImages(0x803, 1, 4, 0xffffffff, nil), "bad image size"},
		{"over byte limit", idxImages(0x803, 0xffffffff, 4096, 4096, seq(10)), "more than the limit"},
		{"just over byte limit", idxImages(0x803, 2_000_001, 1000, 1, nil), "more than the limit"},
		// Within the limit but the file is tiny: must fail without
		// allocating the declared 1.5 GB (checked in the allocation test).
		{"lying count", idxImages(0x803, 2_000_000, 28, 28, seq(100)), "truncated: expected 1568000000 bytes of pixel data, got 100"},
		{"lying count gzip", gzipped(t, idxImages(0x803, 2_000_000, 28, 28, seq(100))), "truncated: expected 1568000000 bytes of pixel data, got 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				n, rows, cols int
				px            []uint8
				err           error
			)
			start := time.Now()
			alloc := allocatedDuring(func() {
				n, rows, cols, px, err = project.ReadIDXImages(bytes.NewReader(tt.data))
			})
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
			if alloc > 64<<20 {
				t.Errorf("allocated %d MB for a %d-byte input", alloc>>20, len(tt.data))
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if px != nil {
					t.Errorf("got pixels with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !bytes.Equal(px, good[16:]) {
				t.Errorf("pixels = %v, want %v", px, good[16:])
			}
			if n != 3 || rows != 2 || cols != 4 {
				t.Errorf("n, rows, cols = %d, %d, %d; want 3, 2, 4", n, rows, cols)
			}
		})
	}
}

func TestReadIDXImagesZeroCount(t *testing.T) {
	n, rows, cols, px, err := project.ReadIDXImages(bytes.NewReader(idxImages(0x803, 0, 28, 28, nil)))
	if err != nil || n != 0 || rows != 28 || cols != 28 || len(px) != 0 {
		t.Errorf("ReadIDXImages = %d, %d, %d, %d pixels, err %v; want 0, 28, 28, 0 pixels, nil", n, rows, cols, len(px), err)
	}
}

// slowReader hides the input's length so no size hint is available.
type slowReader struct{ r *bytes.Reader }

func (s slowReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func TestReadIDXImagesUnknownSize(t *testing.T) {
	data := idxImages(0x803, 2_000_000, 28, 28, seq(1000))
	alloc := allocatedDuring(func() {
		_, _, _, _, err := project.ReadIDXImages(slowReader{bytes.NewReader(data)})
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("err = %v, want truncated", err)
		}
	})
	if alloc > 64<<20 {
		t.Errorf("allocated %d MB for a %d-byte input", alloc>>20, len(data))
	}

	// A real payload larger than the first chunk still reads correctly.
	const n, side = 30, 1000 // 30 MB, more than one 16 MB chunk
	payload := seq(n * side * side)
	got, rows, cols, px, err := project.ReadIDXImages(slowReader{bytes.NewReader(idxImages(0x803, n, side, side, payload))})
	if err != nil || got != n || rows != side || cols != side {
		t.Fatalf("ReadIDXImages = %d, %d, %d, err %v", got, rows, cols, err)
	}
	if !bytes.Equal(px, payload) {
		t.Error("pixels differ from the payload")
	}
}

func TestReadIDXLabels(t *testing.T) {
	good := idxLabels(0x801, 5, []byte{0, 1, 9, 3, 255})
	tests := []struct {
		name    string
		data    []byte
		want    []int
		wantErr string
	}{
		{"plain", good, []int{0, 1, 9, 3, 255}, ""},
		{"gzip", gzipped(t, good), []int{0, 1, 9, 3, 255}, ""},
		{"images magic", idxLabels(0x803, 5, []byte{0, 1, 2, 3, 4}), nil, "bad magic number: expected 0x00000801, found 0x00000803"},
		{"short header", good[:3], nil, "truncated: expected 8 bytes of header, got 3"},
		{"truncated labels", good[:10], nil, "truncated: expected 5 bytes of label data, got 2"},
		{"over limit", idxLabels(0x801, 0xffffffff, nil), nil, "more than the limit"},
		{"lying count", idxLabels(0x801, 1_900_000_000, []byte{1, 2, 3}), nil, "truncated: expected 1900000000 bytes of label data, got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			var err error
			alloc := allocatedDuring(func() {
				got, err = project.ReadIDXLabels(bytes.NewReader(tt.data))
			})
			if alloc > 64<<20 {
				t.Errorf("allocated %d MB for a %d-byte input", alloc>>20, len(tt.data))
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("labels = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("labels = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	imgs := idxImages(0x803, 3, 2, 2, []byte{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23})
	labs := idxLabels(0x801, 3, []byte{2, 0, 1})
	// Compression is detected by content, whatever the extension says.
	plainImgs := write("images.idx3-ubyte.gz", imgs)
	gzImgs := write("images.idx3-ubyte", gzipped(t, imgs))
	plainLabs := write("labels.idx1-ubyte", labs)
	gzLabs := write("labels.idx1-ubyte.gz", gzipped(t, labs))
	twoLabs := write("two-labels", idxLabels(0x801, 2, []byte{1, 2}))
	badMagic := write("bad-magic", idxLabels(0x803, 3, []byte{1, 2, 3}))

	tests := []struct {
		name, images, labels string
		wantErr              string
	}{
		{"plain+plain", plainImgs, plainLabs, ""},
		{"gzip+gzip", gzImgs, gzLabs, ""},
		{"plain+gzip", plainImgs, gzLabs, ""},
		{"no labels", gzImgs, "", ""},
		{"count mismatch", plainImgs, twoLabs, "has 3 images but"},
		{"labels bad magic", plainImgs, badMagic, "expected 0x00000801, found 0x00000803"},
		{"images are labels", plainLabs, plainLabs, "expected 0x00000803, found 0x00000801"},
		{"missing images", filepath.Join(dir, "nope"), plainLabs, "no such file"},
		{"missing labels", plainImgs, filepath.Join(dir, "nope"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := project.LoadIDX(tt.images, tt.labels)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadIDX: %v", err)
			}
			if d.Len() != 3 || d.Width != 2 || d.Height != 2 {
				t.Fatalf("Len, Width, Height = %d, %d, %d; want 3, 2, 2", d.Len(), d.Width, d.Height)
			}
			if got := d.Image(2); !bytes.Equal(got, []byte{20, 21, 22, 23}) {
				t.Errorf("Image(2) = %v", got)
			}
			wantLabels, wantClasses := "[2 0 1]", "[0 1 2]"
			if tt.labels == "" {
				wantLabels, wantClasses = "[-1 -1 -1]", "[]"
			}
			if got := sprint(d.Labels); got != wantLabels {
				t.Errorf("Labels = %s, want %s", got, wantLabels)
			}
			if got := sprint(d.Classes); got != wantClasses {
				t.Errorf("Classes = %s, want %s", got, wantClasses)
			}
		})
	}
}
