package training

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"os"
	"path/filepath"

	"github.com/genstudio/genstudio/models"
)

// GridGutter is the gap in pixels between images in a grid.
const GridGutter = 2

// SampleImage turns image i of samples (values in [0, 1]) into an RGBA image.
func SampleImage(samples []float32, i int, s models.ImageShape) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, s.Width, s.Height))
	drawSample(img, 0, 0, samples[i*s.Size():(i+1)*s.Size()], s)
	return img
}

func toByte(v float32) uint8 {
	if !(v > 0) { // also NaN
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(math.Round(float64(v) * 255))
}

// drawSample draws one image (channel-major planes: C×H×W) at (x0, y0).
func drawSample(dst *image.RGBA, x0, y0 int, px []float32, s models.ImageShape) {
	plane := s.Width * s.Height
	for y := 0; y < s.Height; y++ {
		for x := 0; x < s.Width; x++ {
			i := y*s.Width + x
			var c color.RGBA
			if s.Channels >= 3 {
				c = color.RGBA{toByte(px[i]), toByte(px[plane+i]), toByte(px[2*plane+i]), 255}
			} else {
				v := toByte(px[i])
				c = color.RGBA{v, v, v, 255}
			}
			dst.SetRGBA(x0+x, y0+y, c)
		}
	}
}

// GridImage lays n samples out in rows of cols with a dark gutter.
func GridImage(samples []float32, n, cols int, s models.ImageShape) *image.RGBA {
	if cols < 1 {
		cols = 1
	}
	rows := (n + cols - 1) / cols
	w := cols*s.Width + (cols+1)*GridGutter
	h := rows*s.Height + (rows+1)*GridGutter
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg := color.RGBA{40, 40, 48, 255}
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = bg.R, bg.G, bg.B, bg.A
	}
	for k := 0; k < n; k++ {
		r, c := k/cols, k%cols
		drawSample(img, GridGutter+c*(s.Width+GridGutter), GridGutter+r*(s.Height+GridGutter), samples[k*s.Size():(k+1)*s.Size()], s)
	}
	return img
}

// GridCell is the index of the sample at pixel pt of a GridImage of n
// samples in cols columns, or -1 for a gutter or an empty cell.
func GridCell(pt image.Point, n, cols int, s models.ImageShape) int {
	if cols < 1 || pt.X < GridGutter || pt.Y < GridGutter {
		return -1
	}
	x, y := pt.X-GridGutter, pt.Y-GridGutter
	c, r := x/(s.Width+GridGutter), y/(s.Height+GridGutter)
	if c >= cols || x%(s.Width+GridGutter) >= s.Width || y%(s.Height+GridGutter) >= s.Height {
		return -1
	}
	if i := r*cols + c; i < n {
		return i
	}
	return -1
}

// MarkCell draws a frame of colour c in the gutter around sample i of a
// GridImage in cols columns.
func MarkCell(img *image.RGBA, i, cols int, s models.ImageShape, c color.RGBA) {
	x0 := GridGutter + (i%cols)*(s.Width+GridGutter) - GridGutter
	y0 := GridGutter + (i/cols)*(s.Height+GridGutter) - GridGutter
	w, h := s.Width+2*GridGutter, s.Height+2*GridGutter
	for y := y0; y < y0+h; y++ {
		for x := x0; x < x0+w; x++ {
			if x-x0 < GridGutter || x-x0 >= w-GridGutter || y-y0 < GridGutter || y-y0 >= h-GridGutter {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

// CellImage copies sample i of a GridImage in cols columns out of it.
func CellImage(grid *image.RGBA, i, cols int, s models.ImageShape) *image.RGBA {
	x0 := GridGutter + (i%cols)*(s.Width+GridGutter)
	y0 := GridGutter + (i/cols)*(s.Height+GridGutter)
	out := image.NewRGBA(image.Rect(0, 0, s.Width, s.Height))
	for y := 0; y < s.Height; y++ {
		off := grid.PixOffset(grid.Rect.Min.X+x0, grid.Rect.Min.Y+y0+y)
		copy(out.Pix[y*out.Stride:(y+1)*out.Stride], grid.Pix[off:off+4*s.Width])
	}
	return out
}

// ImagePixels turns an image of shape s back into values in [0, 1]
// (channel-major planes, as models take them): the inverse of SampleImage
// up to rounding.
func ImagePixels(img image.Image, s models.ImageShape) []float32 {
	b := img.Bounds()
	plane := s.Width * s.Height
	out := make([]float32, s.Size())
	for y := 0; y < s.Height; y++ {
		for x := 0; x < s.Width; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := y*s.Width + x
			if s.Channels >= 3 {
				out[i], out[plane+i], out[2*plane+i] = float32(r>>8)/255, float32(g>>8)/255, float32(bl>>8)/255
			} else {
				out[i] = float32(r>>8) / 255
			}
		}
	}
	return out
}

// TileImages lays images of one size out in rows of cols, with the grid's
// gutter.
func TileImages(imgs []image.Image, cols int) *image.RGBA {
	if len(imgs) == 0 {
		return nil
	}
	cols = max(1, min(cols, len(imgs)))
	w, h := imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy()
	rows := (len(imgs) + cols - 1) / cols
	out := image.NewRGBA(image.Rect(0, 0, cols*w+(cols+1)*GridGutter, rows*h+(rows+1)*GridGutter))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{40, 40, 48, 255}), image.Point{}, draw.Src)
	for k, img := range imgs {
		x0 := GridGutter + (k%cols)*(w+GridGutter)
		y0 := GridGutter + (k/cols)*(h+GridGutter)
		draw.Draw(out, image.Rect(x0, y0, x0+w, y0+h), img, img.Bounds().Min, draw.Src)
	}
	return out
}

// GridCols is the number of columns for a square-ish grid of n images.
func GridCols(n int) int {
	c := int(math.Ceil(math.Sqrt(float64(n))))
	return max(c, 1)
}

// Gallery is what ExportGallery wrote.
type Gallery struct {
	Grid       string   // the grid PNG
	Images     []string // one PNG per sample
	Checkpoint string   // the checkpoint the samples were drawn from
}

// ExportModelGallery writes n samples of m from the noise seed into dir,
// with a checkpoint of m beside them (model-step-N.safetensors) that their
// provenance names, so that every image can be drawn again. A diffusion
// model's chain reports progress (about every eighth step: done of total;
// nil: none) and stops when ctx is cancelled; a cancelled export removes the checkpoint
// it wrote and leaves no images.
func ExportModelGallery(ctx context.Context, dir string, m models.Model, info CheckpointInfo, seed uint64, n int,
	progress func(done, total int)) (*Gallery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export gallery: %w", err)
	}
	ck := filepath.Join(dir, "model-"+CheckpointName(info.Step))
	if err := SaveCheckpoint(ck, m, info); err != nil {
		return nil, fmt.Errorf("export gallery: %w", err)
	}
	p, err := NewProvenance(KindGrid, m, ck, info.Step, nil)
	if err != nil {
		return nil, err
	}
	p.Seed, p.N, p.Cols = seed, n, GridCols(n)
	top := -1 // the chain's first t (it counts down to 0)
	samples, err := p.Samples(m, nil, func(t int, _ []float32) error {
		if top < 0 {
			top = max(t, 1)
		}
		if progress != nil {
			progress(top-min(t, top), top)
		}
		return ctx.Err()
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		os.Remove(ck)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("export gallery: %w", err)
	}
	g, err := ExportGallery(dir, samples, n, m.Shape(), p)
	if err != nil {
		return nil, err
	}
	g.Checkpoint = ck
	return g, nil
}

// ExportGallery writes n samples into dir: grid.png and sample-0001.png
// ..., each with its provenance when p (the grid's) is set. It creates dir
// if needed; existing files with the same names are replaced.
func ExportGallery(dir string, samples []float32, n int, s models.ImageShape, p *Provenance) (*Gallery, error) {
	if n < 1 || len(samples) < n*s.Size() {
		return nil, fmt.Errorf("export gallery: %d samples of %d values needed, have %d values", n, s.Size(), len(samples))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export gallery: %w", err)
	}
	g := &Gallery{Grid: filepath.Join(dir, "grid.png")}
	if err := WritePNGWith(g.Grid, GridImage(samples, n, GridCols(n), s), p); err != nil {
		return nil, fmt.Errorf("export gallery: %w", err)
	}
	for i := 0; i < n; i++ {
		path := filepath.Join(dir, fmt.Sprintf("sample-%04d.png", i+1))
		if err := WritePNGWith(path, SampleImage(samples, i, s), p.ForSample(i)); err != nil {
			return nil, fmt.Errorf("export gallery: %w", err)
		}
		g.Images = append(g.Images, path)
	}
	return g, nil
}

// AuxView draws a family's second preview, or returns nil: for a
// models.Encoder, rows of real images (from real) above their
// reconstructions; for a diffusion model, the denoising path of the first
// 8 noise vectors of z, x_t from t = T (left) to t = 0 (right).
func AuxView(m models.Model, z []float32, real []uint8) (*image.RGBA, string, error) {
	s := m.Shape()
	switch mm := m.(type) {
	case models.Encoder:
		n := len(real) / s.Size()
		if n == 0 {
			return nil, "", nil
		}
		rec, err := mm.Reconstruct(real)
		if err != nil {
			return nil, "", err
		}
		const cols = 8
		rows := (n + cols - 1) / cols
		both := make([]float32, 0, 2*rows*cols*s.Size())
		blank := make([]float32, s.Size())
		for r := 0; r < rows; r++ {
			for _, src := range []int{0, 1} {
				for c := 0; c < cols; c++ {
					k := r*cols + c
					switch {
					case k >= n:
						both = append(both, blank...)
					case src == 0:
						for _, p := range real[k*s.Size() : (k+1)*s.Size()] {
							both = append(both, float32(p)/255)
						}
					default:
						both = append(both, rec[k*s.Size():(k+1)*s.Size()]...)
					}
				}
			}
		}
		return GridImage(both, 2*rows*cols, cols, s), "Reconstructions (rows: real, then reconstructed)", nil
	case models.Diffuser:
		k := min(8, len(z)/m.NoiseDim())
		var frames [][]float32
		_, err := mm.SampleWith(z[:k*m.NoiseDim()], mm.DefaultSampleOptions(), nil,
			func(t int, xt []float32) error { frames = append(frames, xt); return nil })
		if err != nil || len(frames) == 0 {
			return nil, "", err
		}
		return denoisingPath(m, frames, k)
	}
	return nil, "", nil
}

// denoisingPath draws the first k images of each frame of a sampling run
// (x_t in model scale, from t = T to 0) as rows, one image per frame.
func denoisingPath(m models.Model, frames [][]float32, k int) (*image.RGBA, string, error) {
	s := m.Shape()
	cols := len(frames)
	out := make([]float32, 0, k*cols*s.Size())
	for i := 0; i < k; i++ {
		for _, f := range frames {
			for _, v := range f[i*s.Size() : (i+1)*s.Size()] {
				out = append(out, (v+1)/2)
			}
		}
	}
	return GridImage(out, k*cols, cols, s), "Denoising: x_t from pure noise (left) to the sample (right)", nil
}

// Preview draws a model's live preview from the fixed noise z: the grid of
// its samples and, for some models, the second view of AuxView (nil
// otherwise). A diffusion model makes both in one sampling run. The
// worker, Load checkpoint and the headless sample command all draw their
// grids here (PreviewNoise gives the noise of a preview).
func Preview(m models.Model, z []float32, real []uint8) (grid, aux *image.RGBA, auxTitle string, err error) {
	s, n := m.Shape(), len(z)/m.NoiseDim()
	if _, ok := m.(models.Diffuser); ok {
		k := min(8, n)
		var frames [][]float32
		x, err := models.SampleImages(m, z, nil, func(t int, xt []float32) error {
			frames = append(frames, append([]float32(nil), xt[:k*s.Size()]...))
			return nil
		})
		if err != nil {
			return nil, nil, "", fmt.Errorf("preview: %w", err)
		}
		aux, auxTitle, err = denoisingPath(m, frames, k)
		return GridImage(x, n, GridCols(n), s), aux, auxTitle, err
	}
	out, err := m.Sample(z)
	if err != nil {
		return nil, nil, "", fmt.Errorf("preview: %w", err)
	}
	if aux, auxTitle, err = AuxView(m, z, real); err != nil {
		return nil, nil, "", fmt.Errorf("preview: %w", err)
	}
	return GridImage(out, n, GridCols(n), s), aux, auxTitle, nil
}

// PreviewNoise is the noise of m's preview from seed: models.PreviewCount
// images (fewer for models that sample slowly).
func PreviewNoise(m models.Model, seed uint64) []float32 {
	return models.NoiseFromSeed(models.PreviewCount(m), m.NoiseDim(), seed)
}

// PreviewSeed is the seed of a run's fixed preview noise, from the run's seed.
func PreviewSeed(seed uint64) uint64 { return seed ^ 0x5eed }
