package project_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/project"
)

// zipFile is one entry of a test archive.
type zipFile struct {
	name string
	data []byte
	raw  *zip.FileHeader // when set, data is written raw (already compressed) with this header
}

// makeZip builds a zip archive of files (deflated unless raw).
func makeZip(t testing.TB, files []zipFile) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		if f.raw != nil {
			w, err := zw.CreateRaw(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(f.data)
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// cifarBatch builds a CIFAR-10 batch whose record i has label labels[i]
// and every red pixel i*10, green 100, blue 200.
func cifarBatch(labels ...byte) []byte {
	var b bytes.Buffer
	for i, l := range labels {
		b.WriteByte(l)
		b.Write(bytes.Repeat([]byte{byte(i * 10)}, 1024))
		b.Write(bytes.Repeat([]byte{100}, 1024))
		b.Write(bytes.Repeat([]byte{200}, 1024))
	}
	return b.Bytes()
}

// reasons maps the base names of skipped paths to their reasons.
func reasons(d *project.Dataset) map[string]string {
	m := map[string]string{}
	if d == nil {
		return m
	}
	for _, s := range d.Skipped {
		m[s.Path[strings.LastIndex(s.Path, ".zip/")+5:]] = s.Reason
	}
	return m
}

// listTree returns every path under dir, relative.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestLoadSourceDispatch(t *testing.T) {
	root := t.TempDir()
	png := encodePNG(t, uniformGray(8, 8, 200))
	png2 := encodePNG(t, uniformGray(8, 8, 50))

	// A folder of two classes.
	writeFile(t, filepath.Join(root, "folder", "a", "1.png"), png)
	writeFile(t, filepath.Join(root, "folder", "b", "2.png"), png2)
	// A zip with a wrapper folder, as zipping a folder makes.
	writeFile(t, filepath.Join(root, "digits.zip"), makeZip(t, []zipFile{
		{name: "digits/cats/1.png", data: png},
		{name: "digits/dogs/2.png", data: png2},
		{name: "digits/dogs/3.png", data: png2},
	}))
	// MNIST-style IDX with labels beside it, gzip and plain.
	mn := filepath.Join(root, "mnist")
	writeFile(t, filepath.Join(mn, "train-images-idx3-ubyte.gz"), gzipped(t, idxImages(0x803, 3, 4, 4, seq(48))))
	writeFile(t, filepath.Join(mn, "train-labels-idx1-ubyte.gz"), gzipped(t, idxLabels(0x801, 3, []byte{0, 2, 1})))
	writeFile(t, filepath.Join(mn, "t10k-images-idx3-ubyte"), idxImages(0x803, 2, 4, 4, seq(32)))
	writeFile(t, filepath.Join(mn, "t10k-labels-idx1-ubyte"), idxLabels(0x801, 2, []byte{7, 3}))
	writeFile(t, filepath.Join(root, "lone", "images-idx3-ubyte"), idxImages(0x803, 2, 4, 4, seq(32)))
	writeFile(t, filepath.Join(root, "wrong", "x-images-idx3-ubyte"), idxImages(0x803, 2, 4, 4, seq(32)))
	writeFile(t, filepath.Join(root, "wrong", "x-labels-idx1-ubyte"), idxLabels(0x801, 3, []byte{1, 2, 3}))
	writeFile(t, filepath.Join(root, "badidx", "a-images-idx3-ubyte"), idxImages(0x803, 1000, 28, 28, seq(100)))
	writeFile(t, filepath.Join(root, "idx.bad"), idxImages(0x803, 1, 28, 28, nil)[:10])
	// CIFAR-10.
	writeFile(t, filepath.Join(root, "cifar", "data_batch_1.bin"), cifarBatch(3, 0, 9))
	writeFile(t, filepath.Join(root, "cifar", "test_batch.bin"), cifarBatch(1)[:3000])
	writeFile(t, filepath.Join(root, "cifar", "other.bin"), cifarBatch(12))
	// Things that are not data sets.
	writeFile(t, filepath.Join(root, "one.png"), png)
	writeFile(t, filepath.Join(root, "photo.jpg"), []byte("not really a jpeg"))
	writeFile(t, filepath.Join(root, "fake.zip"), []byte("this is not a zip archive at all"))
	writeFile(t, filepath.Join(root, "empty.zip"), nil)
	writeFile(t, filepath.Join(root, "notes.txt"), []byte("hello"))
	writeFile(t, filepath.Join(root, "labels-only"), idxLabels(0x801, 1, []byte{1}))
	writeFile(t, filepath.Join(root, "archive.tar.gz"), gzipped(t, []byte("tar data")))

	tests := []struct {
		path    string
		pre     project.Preprocess
		n       int
		c       int
		labels  []int
		classes []string
		errHas  string
		errIs   error
	}{
		{path: "folder", pre: project.Preprocess{Size: 4}, n: 2, c: 1, labels: []int{0, 1}, classes: []string{"a", "b"}},
		{path: "digits.zip", pre: project.Preprocess{Size: 4, Channels: 3}, n: 3, c: 3, labels: []int{0, 1, 1}, classes: []string{"cats", "dogs"}},
		{path: "mnist/train-images-idx3-ubyte.gz", pre: project.Preprocess{Size: 8, Channels: 1}, n: 3, c: 1, labels: []int{0, 2, 1}, classes: []string{"0", "1", "2"}},
		{path: "mnist/t10k-images-idx3-ubyte", pre: project.Preprocess{Size: 4, Channels: 3}, n: 2, c: 3, labels: []int{7, 3}},
		{path: "lone/images-idx3-ubyte", pre: project.Preprocess{Size: 4}, n: 2, c: 1, labels: []int{-1, -1}},
		{path: "wrong/x-images-idx3-ubyte", pre: project.Preprocess{Size: 4}, errHas: "has 2 images but"},
		{path: "badidx/a-images-idx3-ubyte", pre: project.Preprocess{Size: 4}, errHas: "truncated"},
		{path: "idx.bad", pre: project.Preprocess{Size: 4}, errHas: "truncated"},
		{path: "cifar/data_batch_1.bin", pre: project.Preprocess{Size: 32, Channels: 3}, n: 3, c: 3, labels: []int{3, 0, 9}},
		{path: "cifar/data_batch_1.bin", pre: project.Preprocess{Size: 16, Channels: 1}, n: 3, c: 1, labels: []int{3, 0, 9}},
		{path: "cifar/test_batch.bin", pre: project.Preprocess{Size: 32, Channels: 3}, errHas: "CIFAR-10 batch test_batch.bin has 3000 bytes, not a multiple of 3073"},
		{path: "cifar/other.bin", pre: project.Preprocess{Size: 32, Channels: 3}, errHas: "label 12"},
		{path: "one.png", pre: project.Preprocess{Size: 4}, errIs: project.ErrSingleImage, errHas: "a single image is not a data set; drop its folder"},
		{path: "photo.jpg", pre: project.Preprocess{Size: 4}, errIs: project.ErrSingleImage},
		{path: "fake.zip", pre: project.Preprocess{Size: 4}, errHas: "not a zip archive"},
		{path: "empty.zip", pre: project.Preprocess{Size: 4}, errHas: "empty"},
		{path: "notes.txt", pre: project.Preprocess{Size: 4}, errHas: "not a supported data set"},
		{path: "labels-only", pre: project.Preprocess{Size: 4}, errHas: "labels file"},
		{path: "archive.tar.gz", pre: project.Preprocess{Size: 4}, errHas: "does not hold IDX images"},
		{path: "missing", pre: project.Preprocess{Size: 4}, errIs: os.ErrNotExist},
		{path: "folder", pre: project.Preprocess{Size: 0}, errHas: "out of range"},
		{path: "folder", pre: project.Preprocess{Size: 4, Channels: 2}, errHas: "channels"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := filepath.Join(root, tt.path)
			d, err := project.LoadSource(context.Background(), p, tt.pre, nil)
			if tt.errHas != "" || tt.errIs != nil {
				if err == nil {
					t.Fatalf("LoadSource succeeded with %d images, want an error", d.Len())
				}
				if tt.errIs != nil && !errors.Is(err, tt.errIs) {
					t.Errorf("error %q is not %v", err, tt.errIs)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != tt.n || d.C() != tt.c || d.Width != tt.pre.Size || d.Height != tt.pre.Size {
				t.Errorf("got %d images %dx%dx%d, want %d %dx%dx%d", d.Len(), d.Width, d.Height, d.C(), tt.n, tt.pre.Size, tt.pre.Size, tt.c)
			}
			if sprint(d.Labels) != sprint(tt.labels) {
				t.Errorf("labels %v, want %v", d.Labels, tt.labels)
			}
			if tt.classes != nil && sprint(d.Classes) != sprint(tt.classes) {
				t.Errorf("classes %v, want %v", d.Classes, tt.classes)
			}
			if d.Source != p {
				t.Errorf("Source %q, want %q", d.Source, p)
			}
		})
	}
}

func TestLoadSourceCIFARPixels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "data_batch_2.bin")
	writeFile(t, p, cifarBatch(5, 6, 7))
	d, err := project.LoadSource(context.Background(), p, project.Preprocess{Size: 32, Channels: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sprint(d.Classes) != "[airplane automobile bird cat deer dog frog horse ship truck]" {
		t.Errorf("classes %v", d.Classes)
	}
	img := d.Image(2)
	if img[0] != 20 || img[1023] != 20 || img[1024] != 100 || img[2048] != 200 || img[3071] != 200 {
		t.Errorf("image 2 planes start %d %d %d", img[0], img[1024], img[2048])
	}
}

func TestLoadSourceMNIST(t *testing.T) {
	d, err := project.LoadSource(context.Background(), project.MNISTSource, project.Preprocess{Size: 28}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 60000 || d.Source != project.MNISTSource {
		t.Errorf("got %d images from %q", d.Len(), d.Source)
	}
}

func TestLoadZipBadEntries(t *testing.T) {
	root := t.TempDir()
	work := filepath.Join(root, "work")
	os.MkdirAll(work, 0o755)
	png := encodePNG(t, uniformGray(8, 8, 128))
	zeros := make([]byte, 8<<20)
	archive := filepath.Join(work, "set.zip")
	writeFile(t, archive, makeZip(t, []zipFile{
		{name: "good.png", data: png},
		{name: "sub/good2.png", data: png},
		{name: "../evil.png", data: png},
		{name: "/abs.png", data: png},
		{name: `..\win.png`, data: png},
		{name: "C:/drive.png", data: png},
		{name: "a/../../up.png", data: png},
		{name: "empty.png", data: nil},
		{name: "truncated.png", data: png[:len(png)/2]},
		{name: "corrupt.png", data: append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0xAB}, 64)...)},
		{name: "notes.txt", data: []byte("hi")},
		{name: ".hidden.png", data: png},
		{name: "__MACOSX/._good.png", data: png},
		{name: "zeros.png", data: zeros}, // highly compressible: read, then not an image
		{name: "bomb.png", raw: &zip.FileHeader{Name: "bomb.png", Method: zip.Deflate,
			CompressedSize64: 100, UncompressedSize64: 1 << 30, CRC32: 0}, data: bytes.Repeat([]byte{0}, 100)},
		{name: "liar.png", raw: &zip.FileHeader{Name: "liar.png", Method: zip.Store,
			CompressedSize64: 10, UncompressedSize64: 10, CRC32: 1}, data: []byte("0123456789")},
	}))
	before := listTree(t, root)
	d, err := project.LoadZip(context.Background(), archive, project.Preprocess{Size: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after := listTree(t, root); sprint(after) != sprint(before) {
		t.Errorf("loading the archive changed the disk: %v -> %v", before, after)
	}
	if d.Len() != 2 {
		t.Errorf("got %d images, want 2", d.Len())
	}
	// "sub" is a class; good.png at the root is unlabelled.
	if sprint(d.Labels) != "[0 -1]" && sprint(d.Labels) != "[-1 0]" {
		t.Errorf("labels %v", d.Labels)
	}
	got := reasons(d)
	want := map[string]string{
		"../evil.png":    "unsafe path in archive",
		"/abs.png":       "unsafe path in archive",
		`..\win.png`:     "unsafe path in archive",
		"C:/drive.png":   "unsafe path in archive",
		"a/../../up.png": "unsafe path in archive",
		"empty.png":      "empty file",
		"truncated.png":  "truncated",
		"corrupt.png":    "corrupt",
		"notes.txt":      "not an image",
		"zeros.png":      "",
		"bomb.png":       "suspicious compression ratio",
		"liar.png":       "corrupt entry",
	}
	for name, r := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s not skipped; skipped: %v", name, got)
			continue
		}
		if !strings.Contains(g, r) {
			t.Errorf("%s skipped for %q, want %q", name, g, r)
		}
	}
	for _, n := range []string{".hidden.png", "__MACOSX/._good.png"} {
		if _, ok := got[n]; ok {
			t.Errorf("%s should be ignored silently", n)
		}
	}
}

func TestLoadZipNoImages(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.zip")
	writeFile(t, p, makeZip(t, []zipFile{{name: "a.txt", data: []byte("x")}, {name: "b.png", data: nil}}))
	d, err := project.LoadSource(context.Background(), p, project.Preprocess{Size: 4}, nil)
	if !errors.Is(err, project.ErrNoUsableImages) {
		t.Fatalf("err %v, want ErrNoUsableImages", err)
	}
	if d == nil || len(d.Skipped) != 2 {
		t.Errorf("want the 2 skipped entries, got %+v", d)
	}
}

func TestLoadZipFlatAndCancel(t *testing.T) {
	png := encodePNG(t, uniformGray(8, 8, 90))
	p := filepath.Join(t.TempDir(), "flat.zip")
	writeFile(t, p, makeZip(t, []zipFile{{name: "a.png", data: png}, {name: "b.png", data: png}}))
	var calls [][2]int
	d, err := project.LoadZip(context.Background(), p, project.Preprocess{Size: 4}, func(done, total int) {
		calls = append(calls, [2]int{done, total})
	})
	if err != nil {
		t.Fatal(err)
	}
	if sprint(d.Labels) != "[0 0]" || sprint(d.Classes) != "[flat]" {
		t.Errorf("labels %v classes %v", d.Labels, d.Classes)
	}
	checkUniform(t, d.Image(0), 90, 2)
	if len(calls) == 0 || calls[len(calls)-1] != [2]int{2, 2} {
		t.Errorf("progress calls %v", calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := project.LoadZip(ctx, p, project.Preprocess{Size: 4}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled load: %v", err)
	}
}
