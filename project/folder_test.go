package project_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/genstudio/genstudio/project"
)

// uniform returns a w×h RGBA image filled with c.
func uniform(w, h int, c color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

// uniformGray returns a w×h gray image filled with v.
func uniformGray(w, h int, v uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	return img
}

// uniformPaletted returns a w×h paletted image whose every pixel is gray v.
func uniformPaletted(w, h int, v uint8) *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.Gray{v}, color.White})
	for i := range img.Pix {
		img.Pix[i] = 1
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, img *image.Paletted) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeBMP(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := bmp.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeaderOnly returns a PNG signature and an IHDR chunk (with a valid
// CRC) declaring a w×h 8-bit grayscale image, and no pixel data.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	var data [13]byte
	binary.BigEndian.PutUint32(data[0:], w)
	binary.BigEndian.PutUint32(data[4:], h)
	data[8] = 8 // bit depth; colour type, compression, filter, interlace 0
	chunk := append([]byte("IHDR"), data[:]...)
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// cropTest returns an 84×28 gray image: black, then v, then black thirds.
func cropTest(v uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 84, 28))
	for y := range 28 {
		for x := 28; x < 56; x++ {
			img.SetGray(x, y, color.Gray{v})
		}
	}
	return img
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkUniform fails unless img's pixels are all within tol of want.
func checkUniform(t *testing.T, img []uint8, want, tol int) {
	t.Helper()
	lo, hi := 255, 0
	for _, p := range img {
		lo, hi = min(lo, int(p)), max(hi, int(p))
	}
	if lo < want-tol || hi > want+tol {
		t.Errorf("pixels range over %d..%d, want %d±%d", lo, hi, want, tol)
	}
}

func TestLoadFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pets")
	webp, err := os.ReadFile(filepath.Join("testdata", "gopher.lossless.webp"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	fullPNG := encodePNG(t, uniform(64, 64, color.RGBA{10, 200, 30, 255}))

	// Usable files: value is the expected uniform gray (-1: don't check).
	type good struct {
		rel   string
		data  []byte
		label string // class name, "" for -1
		value int
		tol   int
	}
	goods := []good{
		{"cats/a_rgba.png", encodePNG(t, uniform(40, 30, color.RGBA{77, 77, 77, 255})), "cats", 77, 1},
		{"cats/b_gray.png", encodePNG(t, uniformGray(28, 28, 40)), "cats", 40, 0},
		{"cats/c_paletted.png", encodePNG(t, uniformPaletted(50, 20, 90)), "cats", 90, 1},
		{"cats/d_green.jpg", encodeJPEG(t, uniform(64, 48, color.RGBA{0, 255, 0, 255})), "cats", 150, 5},
		{"cats/kittens/e_nested.gif", encodeGIF(t, uniformPaletted(33, 33, 180)), "cats", 180, 1},
		{"cats/f_upper.PNG", encodePNG(t, uniformGray(10, 10, 220)), "cats", 220, 1},
		{"cats/g_transparent.png", encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 30, 30))), "cats", 0, 0},
		{"cats/h_png_named.jpg", encodePNG(t, uniformGray(100, 300, 60)), "cats", 60, 1},
		{"dogs/a.bmp", encodeBMP(t, uniform(31, 29, color.RGBA{110, 110, 110, 255})), "dogs", 110, 1},
		{"dogs/b.webp", webp, "dogs", -1, 0},
		{"dogs/c_crop.png", encodePNG(t, cropTest(200)), "dogs", 200, 1},
		{"dogs/d_gray.jpeg", encodeJPEG(t, uniformGray(500, 400, 70)), "dogs", 70, 3},
		{"top.png", encodePNG(t, uniformGray(28, 28, 128)), "", 128, 0},
	}
	// Unusable files: reason is a substring of the expected reason.
	type bad struct {
		rel, reason string
		data        []byte
	}
	bads := []bad{
		{"cats/corrupt.png", "not a recognised image format", random},
		{"cats/empty.jpg", "empty file", nil},
		{"dogs/readme.txt", "not an image", []byte("hello")},
		{"dogs/huge.png", "image too large: 100000x100000", pngHeaderOnly(100000, 100000)},
		{"dogs/wide.png", "image too large: 30000x10", pngHeaderOnly(30000, 10)},
		{"dogs/zero.png", "", pngHeaderOnly(0, 10)},
		{"dogs/truncated.png", "", fullPNG[:len(fullPNG)/2]},
		{"dogs/header-only.png", "", pngHeaderOnly(28, 28)},
		{"dogs/bad-jpeg.jpg", "", append([]byte{0xff, 0xd8, 0xff, 0xe0}, random[:100]...)},
		{"junk/notes.TXT", "not an image", []byte("notes")},
		{"Thumbs.db", "not an image", random[:64]},
	}
	for _, g := range goods {
		writeFile(t, filepath.Join(dir, g.rel), g.data)
	}
	for _, b := range bads {
		writeFile(t, filepath.Join(dir, b.rel), b.data)
	}
	// Ignored silently: hidden files and folders; empty folders are no class.
	writeFile(t, filepath.Join(dir, ".DS_Store"), random[:100])
	writeFile(t, filepath.Join(dir, "cats", ".hidden.png"), fullPNG)
	writeFile(t, filepath.Join(dir, ".thumbs", "x.png"), fullPNG)
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Symbolic links: a loop to the root, a link to a file (followed) and a
	// dangling one.
	if err := os.Symlink(dir, filepath.Join(dir, "loop")); err != nil {
		t.Logf("no symbolic links here (%v); skipping those cases", err)
	} else {
		bads = append(bads, bad{"loop", "symbolic link to a folder (not followed)", nil})
		if err := os.Symlink(filepath.Join("..", "cats", "b_gray.png"), filepath.Join(dir, "dogs", "e_link.png")); err != nil {
			t.Fatal(err)
		}
		goods = append(goods, good{"dogs/e_link.png", nil, "dogs", 40, 0})
		if err := os.Symlink(filepath.Join(dir, "nowhere.png"), filepath.Join(dir, "cats", "dangling.png")); err != nil {
			t.Fatal(err)
		}
		bads = append(bads, bad{"cats/dangling.png", "broken symbolic link", nil})
		if err := os.Symlink(filepath.Join("..", ".."), filepath.Join(dir, "cats", "kittens", "up")); err != nil {
			t.Fatal(err)
		}
		bads = append(bads, bad{"cats/kittens/up", "symbolic link to a folder (not followed)", nil})
	}

	var calls [][2]int
	d, err := project.LoadFolder(context.Background(), dir, 28, func(done, total int) {
		calls = append(calls, [2]int{done, total})
	})
	if err != nil {
		t.Fatalf("LoadFolder: %v", err)
	}

	sort.Slice(goods, func(i, j int) bool {
		return filepath.Join(dir, goods[i].rel) < filepath.Join(dir, goods[j].rel)
	})
	t.Run("dataset", func(t *testing.T) {
		if d.Name != "pets" || d.Source != dir {
			t.Errorf("Name, Source = %q, %q; want %q, %q", d.Name, d.Source, "pets", dir)
		}
		if d.Width != 28 || d.Height != 28 {
			t.Errorf("size = %dx%d, want 28x28", d.Width, d.Height)
		}
		if d.Len() != len(goods) || len(d.Labels) != len(goods) || len(d.Pixels) != len(goods)*28*28 {
			t.Fatalf("Len = %d, %d labels, %d pixels; want %d images", d.Len(), len(d.Labels), len(d.Pixels), len(goods))
		}
		if got, want := fmt.Sprint(d.Classes), "[cats dogs]"; got != want {
			t.Errorf("Classes = %s, want %s", got, want)
		}
	})

	for i, g := range goods {
		t.Run("image "+g.rel, func(t *testing.T) {
			if i >= d.Len() {
				t.Skip("missing")
			}
			want := -1
			if g.label != "" {
				want = map[string]int{"cats": 0, "dogs": 1}[g.label]
			}
			if d.Labels[i] != want {
				t.Errorf("label = %d, want %d (%s)", d.Labels[i], want, g.label)
			}
			if g.value >= 0 {
				checkUniform(t, d.Image(i), g.value, g.tol)
			}
		})
	}

	t.Run("skipped", func(t *testing.T) {
		got := map[string]string{}
		for _, s := range d.Skipped {
			rel, err := filepath.Rel(dir, s.Path)
			if err != nil {
				t.Fatal(err)
			}
			got[filepath.ToSlash(rel)] = s.Reason
			if s.Reason == "" {
				t.Errorf("%s skipped without a reason", s.Path)
			}
		}
		for _, b := range bads {
			reason, ok := got[b.rel]
			if !ok {
				t.Errorf("%s not in Skipped", b.rel)
				continue
			}
			if !strings.Contains(reason, b.reason) {
				t.Errorf("%s skipped for %q, want %q", b.rel, reason, b.reason)
			}
			t.Logf("%-22s %s", b.rel, reason)
			delete(got, b.rel)
		}
		for rel, reason := range got {
			t.Errorf("unexpectedly skipped %s: %s", rel, reason)
		}
		if !sort.SliceIsSorted(d.Skipped, func(i, j int) bool { return d.Skipped[i].Path < d.Skipped[j].Path }) {
			t.Error("Skipped is not sorted by path")
		}
	})

	t.Run("progress", func(t *testing.T) {
		// Image files found: the usable ones plus the bad ones with an
		// image extension that are not links to folders.
		// Links to nowhere are dropped by the walk, not the decoder.
		total := len(goods)
		for _, b := range bads {
			ext := strings.ToLower(filepath.Ext(b.rel))
			if (ext == ".png" || ext == ".jpg") && !strings.Contains(b.reason, "symbolic link") {
				total++
			}
		}
		if len(calls) < 2 || calls[0] != [2]int{0, total} || calls[len(calls)-1] != [2]int{total, total} {
			t.Errorf("progress calls = %v, want (0,%d) first and (%d,%d) last", calls, total, total, total)
		}
		for i := 1; i < len(calls); i++ {
			if calls[i][0] < calls[i-1][0] {
				t.Errorf("progress went backwards: %v", calls)
			}
		}
	})
}

func TestLoadFolderFlatAndDeterministic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "faces")
	const n = 64
	for i := range n {
		img := uniformGray(20+i%7*13, 20+i%5*17, uint8(10+3*i))
		writeFile(t, filepath.Join(dir, fmt.Sprintf("img_%03d.png", i)), encodePNG(t, img))
	}
	var last [2]int
	calls := 0
	d, err := project.LoadFolder(context.Background(), dir, 28, func(done, total int) {
		calls++
		last = [2]int{done, total}
	})
	if err != nil {
		t.Fatalf("LoadFolder: %v", err)
	}
	if d.Len() != n {
		t.Fatalf("Len = %d, want %d", d.Len(), n)
	}
	if got := fmt.Sprint(d.Classes); got != "[faces]" {
		t.Errorf("Classes = %s, want [faces]", got)
	}
	for i := range n {
		if d.Labels[i] != 0 {
			t.Fatalf("label %d = %d, want 0", i, d.Labels[i])
		}
		checkUniform(t, d.Image(i), 10+3*i, 1)
	}
	if last != [2]int{n, n} || calls > n+1 {
		t.Errorf("%d progress calls, last %v", calls, last)
	}
	again, err := project.LoadFolder(context.Background(), dir, 28, nil)
	if err != nil {
		t.Fatalf("second LoadFolder: %v", err)
	}
	if !bytes.Equal(d.Pixels, again.Pixels) {
		t.Error("two loads of the same folder differ")
	}

	t.Run("other size", func(t *testing.T) {
		d, err := project.LoadFolder(context.Background(), dir, 9, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Width != 9 || d.Height != 9 || d.Len() != n {
			t.Fatalf("got %d images of %dx%d", d.Len(), d.Width, d.Height)
		}
		checkUniform(t, d.Image(5), 25, 1)
	})
}

func TestLoadFolderNoUsableImages(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
	}{
		{"empty", nil},
		{"only bad files", map[string][]byte{
			"a/corrupt.png":  []byte("definitely not a PNG"),
			"a/empty.jpg":    nil,
			"notes.txt":      []byte("hi"),
			"b/huge.png":     pngHeaderOnly(100000, 100000),
			".DS_Store":      []byte("ignored"),
			"c/.hidden.jpeg": nil,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			skipped := 0
			for rel, data := range tt.files {
				writeFile(t, filepath.Join(dir, rel), data)
				if !strings.Contains(rel, "/.") && !strings.HasPrefix(rel, ".") {
					skipped++
				}
			}
			d, err := project.LoadFolder(context.Background(), dir, 28, nil)
			if !errors.Is(err, project.ErrNoUsableImages) {
				t.Fatalf("err = %v, want ErrNoUsableImages", err)
			}
			want := fmt.Sprintf("no usable images in %s (%d files skipped)", dir, skipped)
			if err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
			if d == nil {
				t.Fatal("no Dataset returned with the error")
			}
			if d.Len() != 0 || len(d.Skipped) != skipped {
				t.Errorf("Len = %d, %d skipped (%v); want 0, %d", d.Len(), len(d.Skipped), d.Skipped, skipped)
			}
		})
	}
}

func TestLoadFolderErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.png")
	writeFile(t, file, encodePNG(t, uniformGray(4, 4, 1)))
	tests := []struct {
		name, dir string
		size      int
		want      string
	}{
		{"missing folder", filepath.Join(dir, "nope"), 28, "no such file"},
		{"a file", file, 28, "is not a folder"},
		{"size 0", dir, 0, "out of range"},
		{"negative size", dir, -28, "out of range"},
		{"huge size", dir, 1 << 20, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := project.LoadFolder(context.Background(), tt.dir, tt.size, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
			if d != nil {
				t.Errorf("got a Dataset with the error")
			}
		})
	}
}

func TestLoadFolderCancel(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		writeFile(t, filepath.Join(dir, "c", fmt.Sprintf("%02d.png", i)), encodePNG(t, uniformGray(64, 64, uint8(i))))
	}
	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		d, err := project.LoadFolder(ctx, dir, 28, nil)
		if !errors.Is(err, context.Canceled) || d != nil {
			t.Errorf("LoadFolder = %v, %v; want nil, context.Canceled", d, err)
		}
	})
	t.Run("while decoding", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d, err := project.LoadFolder(ctx, dir, 28, func(done, total int) {
			cancel()
		})
		if !errors.Is(err, context.Canceled) || d != nil {
			t.Errorf("LoadFolder = %v, %v; want nil, context.Canceled", d, err)
		}
	})
}
