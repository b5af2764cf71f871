package project

import (
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // register GIF decoding
	_ "image/jpeg" // register JPEG decoding
	_ "image/png"  // register PNG decoding
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	_ "golang.org/x/image/bmp" // register BMP decoding
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // register WebP decoding
)

const (
	// maxImagePixels and maxImageSide bound the images LoadFolder decodes;
	// larger ones are skipped after reading only their header.
	maxImagePixels = 50_000_000
	maxImageSide   = 20000
	// maxFolderDepth bounds recursion, a guard against mount loops that
	// are not symbolic links.
	maxFolderDepth = 64
	// decodePixelBudget bounds the total pixels being decoded at once by
	// all workers, so several huge photos do not exhaust memory.
	decodePixelBudget = 128 << 20
	// maxFolderImageSize is the largest size accepted by LoadFolder.
	maxFolderImageSize = 4096
)

// ErrNoUsableImages is returned (wrapped) by LoadFolder when a folder holds
// no image it could use. The error text reads
// "no usable images in DIR (N files skipped)".
var ErrNoUsableImages = errors.New("no usable images")

// imageExts are the file extensions LoadFolder tries to decode.
var imageExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".bmp": true, ".webp": true,
}

// candidate is an image file found by the walk.
type candidate struct {
	path  string
	class string // first-level sub-folder name, "" for files directly in the root
}

// decoded is the outcome of decoding one candidate.
type decoded struct {
	pix    []uint8 // size*size*channels pixels (C×H×W), nil when skipped
	reason string  // why the file was skipped, "" on success
}

// LoadFolder loads every image under dir (recursively) as a size×size
// grayscale Dataset.
//
// Files ending in .png, .jpg, .jpeg, .gif, .bmp or .webp (any case) are
// decoded by content, centre-cropped to a square and resized with a
// Catmull-Rom filter; transparent areas become black and the grey levels are
// kept as they are (no inversion). Files that cannot be used (other
// extensions, empty, corrupt, over 50 megapixels or 20000 pixels a side,
// ...) are listed in Dataset.Skipped with a reason; hidden files and folders
// (names starting with ".") are ignored. Symbolic links to folders are not
// followed.
//
// Images are ordered by path. The first-level sub-folders that hold usable
// images are the Classes (sorted) and label their images; images directly in
// dir get label -1, or, when no sub-folder holds usable images, label 0 with
// Classes holding just the folder's name.
//
// Images are decoded in parallel. progress, when not nil, is called on the
// calling goroutine with (0, total) first, then from time to time, and with
// (total, total) at the end, where total is the number of image files found.
// Cancelling ctx stops the load and returns ctx.Err(). A folder with no
// usable image returns the Dataset (with its Skipped list) and an error
// wrapping ErrNoUsableImages.
func LoadFolder(ctx context.Context, dir string, size int, progress func(done, total int)) (*Dataset, error) {
	return LoadFolderWith(ctx, dir, Preprocess{Size: size, Channels: 1}, progress)
}

// Preprocess says how loaded images are shaped: Size×Size pixels
// (centre-cropped, resized with a Catmull-Rom filter) in Channels 1
// (grayscale) or 3 (RGB).
type Preprocess struct {
	Size     int    `json:"size"`
	Channels int    `json:"channels"`
	Resize   string `json:"resize,omitempty"` // ResizeCrop (default) or ResizePad
	// Flip asks training for horizontal-flip augmentation (each image of a
	// batch mirrored with probability ½); it does not change the data set.
	Flip bool `json:"flip,omitempty"`
}

// The resize modes of Preprocess.
const (
	ResizeCrop = "crop" // centre-crop to a square, then resize
	ResizePad  = "pad"  // fit the whole image on a black square, then resize
)

// LoadFolderWith is LoadFolder with RGB as an option: see Preprocess.
func LoadFolderWith(ctx context.Context, dir string, pre Preprocess, progress func(done, total int)) (*Dataset, error) {
	size, channels := pre.Size, pre.Channels
	if channels != 3 {
		channels = 1
	}
	if size < 1 || size > maxFolderImageSize {
		return nil, fmt.Errorf("loading folder %s: image size %d is out of range 1..%d", dir, size, maxFolderImageSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("loading folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("loading folder: %s is not a folder", dir)
	}

	w := &walker{ctx: ctx}
	if err := w.walk(dir, "", 0); err != nil {
		return nil, err
	}
	cands := w.cands
	sort.Slice(cands, func(i, j int) bool { return cands[i].path < cands[j].path })

	results, ok := decodeAll(ctx, len(cands), func(i int, budget *pixelBudget) decoded {
		pix, reason := decodeFile(cands[i].path, size, channels, pre.Resize == ResizePad, budget)
		return decoded{pix: pix, reason: reason}
	}, progress)
	if !ok {
		return nil, ctx.Err()
	}

	d := &Dataset{
		Name:     filepath.Base(filepath.Clean(dir)),
		Source:   dir,
		Width:    size,
		Height:   size,
		Channels: channels,
	}
	return assemble(d, cands, results, w.skipped, dir)
}

// assemble fills d (whose Name, Source and shape are set) from the decoded
// candidates: pixels and labels of the usable ones in order, the classes
// (first-level sub-folders holding usable images, sorted) and the skip list
// (sorted by path). where names the source in the "no usable images" error.
func assemble(d *Dataset, cands []candidate, results []decoded, skipped []Skipped, where string) (*Dataset, error) {
	classSet := map[string]bool{}
	good := 0
	for i, c := range cands {
		if results[i].reason != "" {
			skipped = append(skipped, Skipped{Path: c.path, Reason: results[i].reason})
			continue
		}
		good++
		if c.class != "" {
			classSet[c.class] = true
		}
	}
	sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Path < skipped[j].Path })
	d.Skipped = skipped
	if good == 0 {
		return d, fmt.Errorf("%w in %s (%d files skipped)", ErrNoUsableImages, where, len(skipped))
	}

	classIdx := map[string]int{}
	for c := range classSet {
		d.Classes = append(d.Classes, c)
	}
	sort.Strings(d.Classes)
	for i, c := range d.Classes {
		classIdx[c] = i
	}
	rootLabel := -1
	if len(d.Classes) == 0 {
		d.Classes = []string{d.Name}
		rootLabel = 0
	}

	n := d.ImageSize()
	d.Pixels = make([]uint8, 0, good*n)
	d.Labels = make([]int, 0, good)
	for i, c := range cands {
		if results[i].reason != "" {
			continue
		}
		d.Pixels = append(d.Pixels, results[i].pix...)
		label := rootLabel
		if c.class != "" {
			label = classIdx[c.class]
		}
		d.Labels = append(d.Labels, label)
	}
	return d, nil
}

// walker collects candidate image files and skipped entries.
type walker struct {
	ctx     context.Context
	cands   []candidate
	skipped []Skipped
}

// walk visits the folder at path, depth levels below the root; class is the
// first-level sub-folder the folder lies in ("" for the root).
func (w *walker) walk(path, class string, depth int) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		if depth == 0 {
			return fmt.Errorf("reading folder %s: %w", path, err)
		}
		w.skipped = append(w.skipped, Skipped{Path: path, Reason: "cannot read folder: " + errText(err)})
		// os.ReadDir may still have returned some entries; use them.
	}
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(path, name)
		t := e.Type()
		switch {
		case t.IsDir():
			if depth+1 > maxFolderDepth {
				w.skip(p, fmt.Sprintf("folder nested too deep (more than %d levels), not searched", maxFolderDepth))
				continue
			}
			sub := class
			if depth == 0 {
				sub = name
			}
			if err := w.walk(p, sub, depth+1); err != nil {
				return err
			}
		case t&fs.ModeSymlink != 0:
			fi, err := os.Stat(p)
			switch {
			case err != nil:
				w.skip(p, "broken symbolic link: "+errText(err))
			case fi.IsDir():
				w.skip(p, "symbolic link to a folder (not followed)")
			case !fi.Mode().IsRegular():
				w.skip(p, "not a regular file")
			default:
				w.addFile(p, class)
			}
		case t.IsRegular():
			w.addFile(p, class)
		default:
			w.skip(p, "not a regular file")
		}
	}
	return nil
}

func (w *walker) skip(path, reason string) {
	w.skipped = append(w.skipped, Skipped{Path: path, Reason: reason})
}

func (w *walker) addFile(path, class string) {
	if !imageExts[strings.ToLower(filepath.Ext(path))] {
		w.skip(path, "not an image")
		return
	}
	w.cands = append(w.cands, candidate{path: path, class: class})
}

// decodeAll runs decode for items 0..total-1 over runtime.NumCPU()
// workers sharing one pixel budget, results in item order. It reports false
// when ctx was cancelled first.
func decodeAll(ctx context.Context, total int, decode func(i int, budget *pixelBudget) decoded, progress func(done, total int)) ([]decoded, bool) {
	results := make([]decoded, total)
	if progress != nil {
		progress(0, total)
	}
	if total == 0 {
		return results, ctx.Err() == nil
	}
	budget := newPixelBudget(decodePixelBudget)
	jobs := make(chan int)
	doneCh := make(chan struct{}, total) // never blocks a worker
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), total) {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					continue
				}
				results[i] = decode(i, budget)
				doneCh <- struct{}{}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range total {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	step := max(1, total/200)
	for done := 0; done < total; {
		select {
		case <-doneCh:
			done++
			if progress != nil && (done%step == 0 || done == total) {
				progress(done, total)
			}
		case <-ctx.Done():
			wg.Wait()
			return nil, false
		}
	}
	wg.Wait()
	return results, true
}

// decodeFile decodes one image file to size×size pixels, or returns why
// it cannot be used.
func decodeFile(path string, size, channels int, pad bool, budget *pixelBudget) (pix []uint8, reason string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "cannot open: " + errText(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "cannot read: " + errText(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "not a regular file"
	}
	if fi.Size() == 0 {
		return nil, "empty file"
	}
	return decodeImage(f, size, channels, pad, defaultImageLimits, budget)
}

// decodeErrText turns an image decoding error into a skip reason.
func decodeErrText(err error) string {
	switch {
	case errors.Is(err, image.ErrFormat):
		return "not a recognised image format"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated image file"
	}
	return "corrupt image: " + errText(err)
}

// errText returns err's text without the path a *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// toSquare makes img square — by a centre crop, or with pad by fitting it
// whole on a black square — resizes it to size×size with a Catmull-Rom
// filter and returns its luma (channels 1) or its R, G and B planes
// (channels 3). Transparent pixels are composited over black.
func toSquare(img image.Image, size, channels int, pad bool) []uint8 {
	b := img.Bounds()
	// Scaling into *image.RGBA uses x/image/draw's fast paths for the
	// common source types (Gray, RGBA, NRGBA, YCbCr).
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	if pad {
		w, h := size, size
		if b.Dx() > b.Dy() {
			h = max(1, size*b.Dy()/b.Dx())
		} else {
			w = max(1, size*b.Dx()/b.Dy())
		}
		x0, y0 := (size-w)/2, (size-h)/2
		for i := 3; i < len(dst.Pix); i += 4 {
			dst.Pix[i] = 255 // opaque black
		}
		draw.CatmullRom.Scale(dst, image.Rect(x0, y0, x0+w, y0+h), img, b, draw.Over, nil)
		return planes(dst, channels)
	}
	s := min(b.Dx(), b.Dy())
	x0 := b.Min.X + (b.Dx()-s)/2
	y0 := b.Min.Y + (b.Dy()-s)/2
	crop := image.Rect(x0, y0, x0+s, y0+s)
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, crop, draw.Src, nil)
	return planes(dst, channels)
}

// pixelBudget is a counting semaphore over pixels being decoded.
type pixelBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	avail int64
	limit int64
}

func newPixelBudget(limit int64) *pixelBudget {
	b := &pixelBudget{avail: limit, limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n pixels (at most the whole budget) are available
// and takes them.
func (b *pixelBudget) acquire(n int64) {
	n = min(n, b.limit)
	b.mu.Lock()
	for b.avail < n {
		b.cond.Wait()
	}
	b.avail -= n
	b.mu.Unlock()
}

// release returns n pixels taken by acquire.
func (b *pixelBudget) release(n int64) {
	n = min(n, b.limit)
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	b.cond.Broadcast()
}
