// Package widgets provides reusable Fyne widgets for Gen Studio: a pixel-exact
// viewer for grids of generated samples and a live multi-series loss chart.
// For evaluation results it adds MetricCard, one metric with its spread and a
// reference value, and BarChart, a small side-by-side chart of class shares.
//
// The widgets only deal with images, numbers and callbacks; they do not know
// anything about models or training loops. Like all Fyne widgets they should be
// updated from the UI goroutine (wrap calls from worker goroutines in fyne.Do).
package widgets

import (
	"image"
	"image/draw"
	"math"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// DefaultSampleGridPlaceholder is the text a SampleGrid shows before it has an image.
const DefaultSampleGridPlaceholder = "No samples yet"

// sampleGridMinSize is the smallest size a SampleGrid asks for. It fits an
// 8x8 grid of 28x28 digits (224x224 pixels) plus gutters at scale 1.
const sampleGridMinSize = 240

// snapThreshold is how much of the available area a whole-number pixel
// magnification must still cover to be preferred over a fractional one.
const snapThreshold = 0.8

var _ fyne.Widget = (*SampleGrid)(nil)

// SampleGrid displays a single image, typically a composed grid of generated
// samples, scaled to fit the widget while keeping its aspect ratio and using
// nearest-neighbour scaling so that every source pixel stays crisp. When the
// magnification is close to a whole number it is snapped to it, so that all
// source pixels become equally sized blocks.
// When no image has been set it shows a placeholder text instead.
type SampleGrid struct {
	widget.BaseWidget

	// OnTappedPixel, when set, gets the pixel of the image under a tap
	// or click (in the image's own coordinates); taps beside the image are
	// ignored.
	OnTappedPixel func(p image.Point)

	mu          sync.RWMutex
	img         *image.RGBA
	placeholder string
	minSide     float32       // 0: sampleGridMinSize
	drawn       fyne.Position // where the image lies in the widget, and its size
	drawnSize   fyne.Size
}

var _ fyne.Tappable = (*SampleGrid)(nil)

// SetMinSide sets the side of the square the grid asks for at least (the
// default fits 8×8 digits; a strip beside other views needs less).
func (g *SampleGrid) SetMinSide(side float32) {
	g.mu.Lock()
	g.minSide = side
	g.mu.Unlock()
	g.Refresh()
}

// Tapped implements fyne.Tappable: it reports the image pixel tapped.
func (g *SampleGrid) Tapped(ev *fyne.PointEvent) {
	if g.OnTappedPixel == nil {
		return
	}
	if p, ok := g.PixelAt(ev.Position); ok {
		g.OnTappedPixel(p)
	}
}

// PixelAt is the image pixel shown at pos (widget coordinates), and false
// where no image is shown.
func (g *SampleGrid) PixelAt(pos fyne.Position) (image.Point, bool) {
	g.mu.RLock()
	img, at, size := g.img, g.drawn, g.drawnSize
	g.mu.RUnlock()
	if img == nil || size.Width <= 0 || size.Height <= 0 {
		return image.Point{}, false
	}
	b := img.Bounds()
	// The contain fill mode centres the image in the object at its aspect.
	k := math.Min(float64(size.Width)/float64(b.Dx()), float64(size.Height)/float64(b.Dy()))
	w, h := k*float64(b.Dx()), k*float64(b.Dy())
	x0 := float64(at.X) + (float64(size.Width)-w)/2
	y0 := float64(at.Y) + (float64(size.Height)-h)/2
	px := int(math.Floor((float64(pos.X) - x0) / k))
	py := int(math.Floor((float64(pos.Y) - y0) / k))
	if px < 0 || py < 0 || px >= b.Dx() || py >= b.Dy() {
		return image.Point{}, false
	}
	return image.Pt(px, py), true
}

// NewSampleGrid creates an empty SampleGrid that shows DefaultSampleGridPlaceholder
// until SetImage is called.
func NewSampleGrid() *SampleGrid {
	g := &SampleGrid{placeholder: DefaultSampleGridPlaceholder}
	g.ExtendBaseWidget(g)
	return g
}

// SetImage replaces the displayed image and refreshes the widget.
// The image is copied into a new *image.RGBA whose bounds start at (0, 0), so
// the caller may reuse or modify img afterwards. Passing nil clears the image
// and shows the placeholder again. Call it from the UI goroutine (fyne.Do).
func (g *SampleGrid) SetImage(img image.Image) {
	rgba := toRGBA(img)
	g.mu.Lock()
	g.img = rgba
	g.mu.Unlock()
	g.Refresh()
}

// Image returns the image currently displayed, or nil when there is none.
// The returned value is the widget's private copy (an *image.RGBA); treat it as read-only.
func (g *SampleGrid) Image() image.Image {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.img == nil {
		return nil
	}
	return g.img
}

// SetPlaceholder sets the text shown while the widget has no image and refreshes the widget.
func (g *SampleGrid) SetPlaceholder(text string) {
	g.mu.Lock()
	g.placeholder = text
	g.mu.Unlock()
	g.Refresh()
}

// Placeholder returns the text shown while the widget has no image.
func (g *SampleGrid) Placeholder() string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.placeholder
}

// MinSize returns the size that this widget should not shrink below.
func (g *SampleGrid) MinSize() fyne.Size {
	g.ExtendBaseWidget(g)
	return g.BaseWidget.MinSize()
}

// CreateRenderer is a private method to Fyne which links this widget to its renderer.
func (g *SampleGrid) CreateRenderer() fyne.WidgetRenderer {
	g.ExtendBaseWidget(g)
	r := &sampleGridRenderer{grid: g}
	r.image = &canvas.Image{
		FillMode:  canvas.ImageFillContain,
		ScaleMode: canvas.ImageScalePixels,
	}
	r.text = canvas.NewText("", theme.Color(theme.ColorNamePlaceHolder))
	r.text.Alignment = fyne.TextAlignCenter
	r.objects = []fyne.CanvasObject{r.image, r.text}
	r.update()
	return r
}

// snapshot returns the current image and placeholder under the lock.
func (g *SampleGrid) snapshot() (*image.RGBA, string) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.img, g.placeholder
}

type sampleGridRenderer struct {
	grid    *SampleGrid
	image   *canvas.Image
	text    *canvas.Text
	objects []fyne.CanvasObject
}

func (r *sampleGridRenderer) Destroy() {}

func (r *sampleGridRenderer) Objects() []fyne.CanvasObject {
	return r.objects
}

func (r *sampleGridRenderer) MinSize() fyne.Size {
	r.grid.mu.RLock()
	side := r.grid.minSide
	r.grid.mu.RUnlock()
	if side == 0 {
		side = sampleGridMinSize
	}
	ms := fyne.NewSquareSize(side)
	if r.text.Text != "" {
		ts := fyne.MeasureText(r.text.Text, r.text.TextSize, r.text.TextStyle)
		pad := r.grid.Theme().Size(theme.SizeNameInnerPadding) * 2
		ms = ms.Max(ts.AddWidthHeight(pad, pad))
	}
	return ms
}

func (r *sampleGridRenderer) Layout(size fyne.Size) {
	imgSize := pixelSnappedSize(r.image.Image, size, r.canvasScale())
	at := fyne.NewPos((size.Width-imgSize.Width)/2, (size.Height-imgSize.Height)/2)
	r.image.Move(at)
	r.image.Resize(imgSize)
	r.grid.mu.Lock()
	r.grid.drawn, r.grid.drawnSize = at, imgSize
	r.grid.mu.Unlock()
	ts := r.text.MinSize()
	r.text.Move(fyne.NewPos(0, (size.Height-ts.Height)/2))
	r.text.Resize(fyne.NewSize(size.Width, ts.Height))
}

func (r *sampleGridRenderer) Refresh() {
	r.update()
	r.Layout(r.grid.Size())
	r.image.Refresh()
	r.text.Refresh()
	canvas.Refresh(r.grid)
}

// canvasScale returns the number of device pixels per canvas unit for the grid, or 1 if unknown.
func (r *sampleGridRenderer) canvasScale() float32 {
	app := fyne.CurrentApp()
	if app == nil || app.Driver() == nil {
		return 1
	}
	if c := app.Driver().CanvasForObject(r.grid); c != nil && c.Scale() > 0 {
		return c.Scale()
	}
	return 1
}

// pixelSnappedSize returns the size to give the image object inside an area of
// the given size. When the image is magnified by a factor that is close to a
// whole number of device pixels (the whole-number size still covers at least
// snapThreshold of the aspect-fit size) it snaps to that whole number so every
// source pixel becomes an equal square block. Otherwise, and when shrinking,
// it returns the full area and lets the contain fill mode fit the image.
func pixelSnappedSize(img image.Image, area fyne.Size, scale float32) fyne.Size {
	if img == nil || scale <= 0 {
		return area
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return area
	}
	fit := math.Min(float64(area.Width*scale)/float64(b.Dx()), float64(area.Height*scale)/float64(b.Dy()))
	k := math.Floor(fit)
	if k < 1 || k/fit < snapThreshold {
		return area
	}
	return fyne.NewSize(float32(k*float64(b.Dx()))/scale, float32(k*float64(b.Dy()))/scale)
}

// update copies widget state and theme values into the canvas objects.
func (r *sampleGridRenderer) update() {
	img, placeholder := r.grid.snapshot()
	th := r.grid.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()

	r.text.Text = placeholder
	r.text.Color = th.Color(theme.ColorNamePlaceHolder, v)
	r.text.TextSize = th.Size(theme.SizeNameText)

	if img == nil {
		r.image.Image = nil
		r.image.Hide()
		r.text.Show()
		return
	}
	r.image.Image = img
	r.image.Show()
	r.text.Hide()
}

// toRGBA copies img into a fresh *image.RGBA with bounds starting at (0, 0).
// It returns nil for a nil or empty image.
func toRGBA(img image.Image) *image.RGBA {
	if img == nil {
		return nil
	}
	b := img.Bounds()
	if b.Empty() {
		return nil
	}
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if src, ok := img.(*image.RGBA); ok {
		for y := 0; y < b.Dy(); y++ {
			si := src.PixOffset(b.Min.X, b.Min.Y+y)
			di := out.PixOffset(0, y)
			copy(out.Pix[di:di+4*b.Dx()], src.Pix[si:si+4*b.Dx()])
		}
		return out
	}
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}
