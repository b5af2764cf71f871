package widgets

import (
	"image"
	"image/color"
	"math"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// DefaultScatterPlaceholder is the text a ScatterPlot shows while it has
// nothing to draw.
const DefaultScatterPlaceholder = "No points yet"

// MaxScatterSeries is the number of point series a ScatterPlot holds:
// SetSeries ignores indices outside [0, MaxScatterSeries).
const MaxScatterSeries = 16

const (
	scatterMinSize = 300

	scatterDotRadius    = 1.3  // radius of a point, in canvas units (a dot about 2.6 px wide at scale 1)
	scatterDotAlpha     = 0.8  // opacity of one point, so that dense clusters read darker
	scatterMarkerRadius = 8    // radius of a mode marker's ring, in canvas units
	scatterRingStroke   = 2    // width of a covered marker's ring
	scatterMissStroke   = 1.3  // width of an uncovered marker's ring
	scatterCoverFill    = 0.22 // opacity of a covered marker's fill
	scatterHeatAlpha    = 0.38 // opacity of the heat map where the sigmoid reaches 0 or 1
	scatterAutoPad      = 0.1  // share of the data span left free around it when no bounds are set
	scatterMaxTicks     = 4    // at most this many ticks per axis
	scatterSwatch       = 8    // diameter of a legend symbol
)

// Marker colours: a covered mode is green, a missed one a neutral grey that
// reads on light and dark backgrounds.
var (
	scatterCoveredColor = color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	scatterMissedColor  = color.NRGBA{R: 0x8c, G: 0x8c, B: 0x8c, A: 0xff}
)

var _ fyne.Widget = (*ScatterPlot)(nil)

// ScatterPlot is a 2-D scatter plot for a live view of a model trained on
// 2-D points, such as a GAN learning a ring of Gaussians: one or more series
// of points, the modes of the data as ring markers (covered ones filled
// green, missed ones hollow grey) and, behind them, a heat map such as the
// discriminator's output over the plane.
//
// The data window is fixed by SetBounds and shown at a 1:1 aspect ratio,
// centred (letterboxed) in the widget, with 2 to 4 round ticks per axis and
// a legend above. Heat map, grid, points and markers are painted into one
// raster at the canvas's pixel density, so thousands of points can be
// replaced several times a second. Series take the colours of SeriesColor;
// points are small anti-aliased, slightly translucent dots, drawn series 0
// first, and non-finite coordinates are skipped.
//
// All setters copy their arguments and refresh the plot; call them from the
// UI goroutine (fyne.Do). A placeholder text is shown while there are no
// points, markers or heat map.
type ScatterPlot struct {
	widget.BaseWidget

	mu          sync.RWMutex
	bounds      scatterBounds
	hasBounds   bool
	series      []scatterSeries
	markers     []float32
	covered     []bool
	heat        *scatterHeat
	placeholder string
}

// scatterBounds is a data window.
type scatterBounds struct{ xmin, xmax, ymin, ymax float64 }

// scatterSeries is one named series of points (x, y pairs flattened).
type scatterSeries struct {
	name string
	xy   []float32
	set  bool
}

// scatterHeat is a heat map of probabilities (the sigmoid of the values
// given) over the window b, w x h cells, row 0 at the top.
type scatterHeat struct {
	w, h int
	p    []float32
	b    scatterBounds
}

// NewScatterPlot creates an empty ScatterPlot that shows
// DefaultScatterPlaceholder. Until SetBounds is called its window fits the
// points and markers it is given (or [-1, 1]² when there are none).
func NewScatterPlot() *ScatterPlot {
	p := &ScatterPlot{placeholder: DefaultScatterPlaceholder}
	p.ExtendBaseWidget(p)
	return p
}

// SetBounds fixes the data window: x from xmin to xmax and y from ymin to
// ymax. The window keeps a 1:1 aspect ratio inside the widget, so a window
// wider than tall leaves space above and below it (and the other way round).
// Reversed limits are swapped; a call with non-finite limits or an empty
// range is ignored.
func (p *ScatterPlot) SetBounds(xmin, xmax, ymin, ymax float64) {
	if xmax < xmin {
		xmin, xmax = xmax, xmin
	}
	if ymax < ymin {
		ymin, ymax = ymax, ymin
	}
	if !isFinite(xmin) || !isFinite(xmax) || !isFinite(ymin) || !isFinite(ymax) || xmax == xmin || ymax == ymin {
		return
	}
	p.mu.Lock()
	p.bounds = scatterBounds{xmin, xmax, ymin, ymax}
	p.hasBounds = true
	p.mu.Unlock()
	p.Refresh()
}

// Bounds returns the data window drawn: the one set by SetBounds, or the one
// fitted to the data before that.
func (p *ScatterPlot) Bounds() (xmin, xmax, ymin, ymax float64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	b := p.viewLocked()
	return b.xmin, b.xmax, b.ymin, b.ymax
}

// SetSeries replaces the points of series i, given as x, y pairs flattened
// ([x0, y0, x1, y1, ...]; a trailing odd value is ignored), and names it in
// the legend (an empty name leaves it out of the legend). Series are drawn in
// order of index, 0 first, in the colour SeriesColor(i). Indices outside
// [0, MaxScatterSeries) are ignored. The slice is copied.
func (p *ScatterPlot) SetSeries(i int, name string, xy []float32) {
	if i < 0 || i >= MaxScatterSeries {
		return
	}
	pts := append([]float32(nil), xy[:len(xy)&^1]...)
	p.mu.Lock()
	for len(p.series) <= i {
		p.series = append(p.series, scatterSeries{})
	}
	p.series[i] = scatterSeries{name: name, xy: pts, set: true}
	p.mu.Unlock()
	p.Refresh()
}

// SetMarkers sets the mode centres (x, y pairs flattened; a trailing odd
// value is ignored), drawn as rings over the points. Marker k is drawn
// highlighted (filled, green) when covered[k] is true and as a hollow grey
// ring otherwise; covered may be shorter than the markers, or empty, and
// entries beyond the last marker are ignored. The slices are copied; nil
// markers remove them.
func (p *ScatterPlot) SetMarkers(xy []float32, covered []bool) {
	pts := append([]float32(nil), xy[:len(xy)&^1]...)
	cov := make([]bool, len(pts)/2)
	copy(cov, covered)
	p.mu.Lock()
	p.markers, p.covered = pts, cov
	p.mu.Unlock()
	p.Refresh()
}

// SetHeatMap sets the background: w x h values in row-major order, row 0 at
// the top (ymax), spread over the data window current at the call, each
// value at the centre of its cell (value (r, c) at x = xmin + (c+½)·(xmax−xmin)/w,
// y = ymax − (r+½)·(ymax−ymin)/h). Values are logits, such as a
// discriminator's raw output: each is mapped through the sigmoid to a
// probability and drawn, interpolated smoothly between cell centres, as a
// faint diverging colour map: transparent at ½, tinted towards the blue of
// SeriesColor(0) as it nears 1 and towards the orange of SeriesColor(1) as it
// nears 0 (on a light theme that is blue–white–orange). With series 0 the
// real data, the regions a discriminator takes for real are tinted like the
// real points. Non-finite values draw as ½. Values beyond the first w·h are
// ignored; nil values, fewer than w·h of them or a size below 1x1 clear the
// heat map. The values are copied.
func (p *ScatterPlot) SetHeatMap(w, h int, values []float32) {
	var heat *scatterHeat
	if w > 0 && h > 0 && len(values)/w >= h {
		probs := make([]float32, w*h)
		for k, v := range values[:w*h] {
			probs[k] = float32(scatterSigmoid(float64(v)))
		}
		heat = &scatterHeat{w: w, h: h, p: probs}
	}
	p.mu.Lock()
	if heat != nil {
		heat.b = p.viewLocked()
	}
	p.heat = heat
	p.mu.Unlock()
	p.Refresh()
}

// Clear removes all series, markers and the heat map, so that the plot shows
// its placeholder, and refreshes it. The bounds and placeholder are kept.
func (p *ScatterPlot) Clear() {
	p.mu.Lock()
	p.series, p.markers, p.covered, p.heat = nil, nil, nil, nil
	p.mu.Unlock()
	p.Refresh()
}

// SetPlaceholder sets the text shown while the plot has nothing to draw and refreshes it.
func (p *ScatterPlot) SetPlaceholder(text string) {
	p.mu.Lock()
	p.placeholder = text
	p.mu.Unlock()
	p.Refresh()
}

// Placeholder returns the text shown while the plot has nothing to draw.
func (p *ScatterPlot) Placeholder() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.placeholder
}

// MinSize returns the size that this widget should not shrink below.
func (p *ScatterPlot) MinSize() fyne.Size {
	p.ExtendBaseWidget(p)
	return p.BaseWidget.MinSize()
}

// CreateRenderer is a private method to Fyne which links this widget to its renderer.
func (p *ScatterPlot) CreateRenderer() fyne.WidgetRenderer {
	p.ExtendBaseWidget(p)
	r := &scatterRenderer{plot: p}
	r.frame = canvas.NewRectangle(color.Transparent)
	r.raster = canvas.NewRaster(r.paint)
	r.empty = canvas.NewText("", color.Transparent)
	r.empty.Alignment = fyne.TextAlignCenter
	r.build(p.Size())
	return r
}

// viewLocked returns the data window to draw. p.mu must be held.
func (p *ScatterPlot) viewLocked() scatterBounds {
	if p.hasBounds {
		return p.bounds
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	fit := func(xy []float32) {
		for k := 0; k+1 < len(xy); k += 2 {
			x, y := float64(xy[k]), float64(xy[k+1])
			if !isFinite(x) || !isFinite(y) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	for _, s := range p.series {
		fit(s.xy)
	}
	fit(p.markers)
	if xmin > xmax {
		return scatterBounds{-1, 1, -1, 1}
	}
	// Pad the larger span on every side so that the window stays square-ish.
	span := math.Max(xmax-xmin, ymax-ymin)
	if span == 0 {
		span = math.Max(math.Abs(xmin), math.Abs(ymin))
		if span == 0 {
			span = 1
		}
	}
	pad := span * scatterAutoPad
	return scatterBounds{xmin - pad, xmax + pad, ymin - pad, ymax + pad}
}

// scatterData is a snapshot of what the renderer needs, taken under the lock.
// The slices are shared with the plot, which replaces rather than mutates them.
type scatterData struct {
	view        scatterBounds
	series      []scatterSeries
	markers     []float32
	covered     []bool
	heat        *scatterHeat
	placeholder string
	hasData     bool
}

func (p *ScatterPlot) snapshot() scatterData {
	p.mu.RLock()
	defer p.mu.RUnlock()
	d := scatterData{
		view:        p.viewLocked(),
		series:      p.series,
		markers:     p.markers,
		covered:     p.covered,
		heat:        p.heat,
		placeholder: p.placeholder,
	}
	d.hasData = len(p.markers) > 0 || p.heat != nil
	for _, s := range p.series {
		if len(s.xy) > 0 {
			d.hasData = true
		}
	}
	return d
}

// toPixel maps the data point (x, y) to pixel coordinates in a w x h image
// that shows exactly the window b: (xmin, ymax) is the image's top-left
// corner (0, 0) and (xmax, ymin) its bottom-right corner (w, h).
func (b scatterBounds) toPixel(x, y float64, w, h int) (px, py float64) {
	px = (x - b.xmin) / (b.xmax - b.xmin) * float64(w)
	py = (b.ymax - y) / (b.ymax - b.ymin) * float64(h)
	return px, py
}

// scatterLetterbox returns the largest rectangle of the given aspect ratio
// (width / height) that fits in the area at pos with the given size,
// centred in it.
func scatterLetterbox(pos fyne.Position, size fyne.Size, aspect float64) (fyne.Position, fyne.Size) {
	if !(aspect > 0) || !isFinite(aspect) || size.Width <= 0 || size.Height <= 0 {
		return pos, size
	}
	w, h := size.Width, size.Height
	if float64(w)/float64(h) > aspect {
		w = float32(float64(h) * aspect)
	} else {
		h = float32(float64(w) / aspect)
	}
	return fyne.NewPos(pos.X+(size.Width-w)/2, pos.Y+(size.Height-h)/2), fyne.NewSize(w, h)
}

// scatterTicks returns 2 to scatterMaxTicks round tick values inside [lo, hi]
// and their spacing.
func scatterTicks(lo, hi float64) ([]float64, float64) {
	var ticks []float64
	var step float64
	for target := scatterMaxTicks; target >= 2; target-- {
		_, _, step = niceTicks(lo, hi, target, 0)
		ticks = tickValues(math.Ceil(lo/step-1e-9)*step, math.Floor(hi/step+1e-9)*step, step)
		if len(ticks) <= scatterMaxTicks {
			break
		}
	}
	return ticks, step
}

func scatterSigmoid(v float64) float64 {
	if math.IsNaN(v) {
		return 0.5
	}
	return 1 / (1 + math.Exp(-v))
}

// scatterLegendItem is one legend entry: a round symbol and a name.
type scatterLegendItem struct {
	name         string
	fill, stroke color.Color
}

// scatterScene is what the raster paints, in data coordinates, taken from a
// snapshot by build.
type scatterScene struct {
	view     scatterBounds
	size     fyne.Size // the raster's size in canvas units
	series   []scatterSeries
	markers  []float32
	covered  []bool
	heat     *scatterHeat
	xTicks   []float64
	yTicks   []float64
	gridLine color.NRGBA
}

type scatterRenderer struct {
	plot *ScatterPlot

	frame        *canvas.Rectangle
	raster       *canvas.Raster
	empty        *canvas.Text
	ticks        []*canvas.Line
	tickLabels   []*canvas.Text
	swatches     []*canvas.Circle
	legendLabels []*canvas.Text

	// mu guards the scene and the pixel buffer, which the raster's
	// generator reads.
	mu     sync.Mutex
	scene  scatterScene
	pixels *image.RGBA

	objects []fyne.CanvasObject
}

func (r *scatterRenderer) Destroy() {}

func (r *scatterRenderer) Objects() []fyne.CanvasObject {
	return r.objects
}

func (r *scatterRenderer) MinSize() fyne.Size {
	return fyne.NewSize(scatterMinSize, scatterMinSize)
}

func (r *scatterRenderer) Layout(size fyne.Size) {
	r.build(size)
}

func (r *scatterRenderer) Refresh() {
	r.build(r.plot.Size())
	canvas.Refresh(r.plot)
}

func scatterCircle(pool *[]*canvas.Circle, i int) *canvas.Circle {
	for len(*pool) <= i {
		*pool = append(*pool, canvas.NewCircle(color.Transparent))
	}
	c := (*pool)[i]
	c.Show()
	return c
}

// legendItems lists the named series, then the marker kinds present.
func (d scatterData) legendItems() []scatterLegendItem {
	var items []scatterLegendItem
	for i, s := range d.series {
		if s.set && s.name != "" {
			items = append(items, scatterLegendItem{s.name, SeriesColor(i), color.Transparent})
		}
	}
	nCovered := 0
	for _, c := range d.covered {
		if c {
			nCovered++
		}
	}
	nMarkers := len(d.markers) / 2
	if nCovered > 0 {
		items = append(items, scatterLegendItem{"covered", fade(scatterCoveredColor, 0x80), scatterCoveredColor})
	}
	if nMarkers > nCovered {
		name := "missed"
		if nCovered == 0 {
			name = "mode"
		}
		items = append(items, scatterLegendItem{name, color.Transparent, scatterMissedColor})
	}
	return items
}

// build recomputes the geometry and styling of every canvas object for the given size.
func (r *scatterRenderer) build(size fyne.Size) {
	d := r.plot.snapshot()
	th := r.plot.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()

	fg := th.Color(theme.ColorNameForeground, v)
	axisColor := fade(fg, 0x99)
	gridColor := color.NRGBAModel.Convert(fade(fg, 0x1c)).(color.NRGBA)
	pad := th.Size(theme.SizeNamePadding)
	capSize := th.Size(theme.SizeNameCaptionText)
	textSize := th.Size(theme.SizeNameText)
	tickLen := pad
	lineH := fyne.MeasureText("0", capSize, fyne.TextStyle{}).Height

	// Legend: centred rows of symbol + name, wrapping within the widget width.
	items := d.legendItems()
	widths := make([]float32, len(items))
	for i, it := range items {
		widths[i] = scatterSwatch + pad + fyne.MeasureText(it.name, capSize, fyne.TextStyle{}).Width
	}
	var rows [][]int
	var rowW float32
	for i, w := range widths {
		if len(rows) == 0 || rowW+2*pad+w > size.Width-2*pad {
			rows = append(rows, nil)
			rowW = -2 * pad
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], i)
		rowW += 2*pad + w
	}
	for ri, row := range rows {
		var w float32
		for k, i := range row {
			if k > 0 {
				w += 2 * pad
			}
			w += widths[i]
		}
		x := (size.Width - w) / 2
		y := pad + float32(ri)*(lineH+pad/2)
		for _, i := range row {
			it := items[i]
			sw := scatterCircle(&r.swatches, i)
			sw.FillColor, sw.StrokeColor = it.fill, it.stroke
			sw.StrokeWidth = 0
			if it.stroke != color.Transparent {
				sw.StrokeWidth = scatterMissStroke
			}
			sw.Move(fyne.NewPos(x, y+(lineH-scatterSwatch)/2))
			sw.Resize(fyne.NewSize(scatterSwatch, scatterSwatch))
			t := text(&r.legendLabels, i)
			t.Text = it.name
			t.TextSize, t.Color, t.Alignment = capSize, fg, fyne.TextAlignLeading
			t.Move(fyne.NewPos(x+scatterSwatch+pad, y))
			t.Resize(fyne.MeasureText(t.Text, capSize, t.TextStyle))
			x += widths[i] + 2*pad
		}
	}
	r.swatches = trimPool(r.swatches, len(items))
	r.legendLabels = trimPool(r.legendLabels, len(items))

	// Plot area: room for the legend above, the y labels on the left and
	// the x labels below, then letterboxed to the window's aspect ratio.
	b := d.view
	xs, xStep := scatterTicks(b.xmin, b.xmax)
	ys, yStep := scatterTicks(b.ymin, b.ymax)
	xMaxAbs := math.Max(math.Abs(b.xmin), math.Abs(b.xmax))
	yMaxAbs := math.Max(math.Abs(b.ymin), math.Abs(b.ymax))
	var labelW, lastW float32
	for _, yv := range ys {
		labelW = fyne.Max(labelW, fyne.MeasureText(formatTick(yv, yStep, yMaxAbs), capSize, fyne.TextStyle{}).Width)
	}
	if len(xs) > 0 {
		lastW = fyne.MeasureText(formatTick(xs[len(xs)-1], xStep, xMaxAbs), capSize, fyne.TextStyle{}).Width
	}
	top := pad
	if len(rows) > 0 {
		top = pad + float32(len(rows))*lineH + float32(len(rows)-1)*pad/2 + pad
	}
	left := pad + labelW + tickLen + pad/2
	right := size.Width - pad - lastW/2
	bottom := size.Height - (tickLen + lineH + pad)
	// Balance the margins so that the plot sits in the middle of the widget.
	if m := fyne.Max(left, size.Width-right); m > 0 {
		left, right = m, size.Width-m
	}
	avail := fyne.NewSize(fyne.Max(right-left, 1), fyne.Max(bottom-top, 1))
	pos, psize := scatterLetterbox(fyne.NewPos(left, top), avail, (b.xmax-b.xmin)/(b.ymax-b.ymin))
	mapX := func(x float64) float32 { return pos.X + float32((x-b.xmin)/(b.xmax-b.xmin))*psize.Width }
	mapY := func(y float64) float32 { return pos.Y + float32((b.ymax-y)/(b.ymax-b.ymin))*psize.Height }
	plotBottom := pos.Y + psize.Height

	// Tick marks and labels; the grid lines are painted in the raster.
	nTick := 0
	for k, yv := range ys {
		py := mapY(yv)
		tk := line(&r.ticks, k)
		tk.StrokeColor, tk.StrokeWidth = axisColor, 1
		tk.Position1, tk.Position2 = fyne.NewPos(pos.X-tickLen, py), fyne.NewPos(pos.X, py)
		t := text(&r.tickLabels, nTick)
		nTick++
		t.Text = formatTick(yv, yStep, yMaxAbs)
		t.TextSize, t.Color, t.Alignment = capSize, fg, fyne.TextAlignTrailing
		t.Move(fyne.NewPos(0, py-lineH/2))
		t.Resize(fyne.NewSize(fyne.Max(pos.X-tickLen-pad/2, 0), lineH))
	}
	for k, xv := range xs {
		px := mapX(xv)
		tk := line(&r.ticks, len(ys)+k)
		tk.StrokeColor, tk.StrokeWidth = axisColor, 1
		tk.Position1, tk.Position2 = fyne.NewPos(px, plotBottom), fyne.NewPos(px, plotBottom+tickLen)
		t := text(&r.tickLabels, nTick)
		nTick++
		t.Text = formatTick(xv, xStep, xMaxAbs)
		t.TextSize, t.Color, t.Alignment = capSize, fg, fyne.TextAlignCenter
		ts := fyne.MeasureText(t.Text, capSize, t.TextStyle)
		t.Move(fyne.NewPos(px-ts.Width/2, plotBottom+tickLen))
		t.Resize(ts)
	}
	r.ticks = trimPool(r.ticks, len(xs)+len(ys))
	r.tickLabels = trimPool(r.tickLabels, nTick)

	r.frame.FillColor = color.Transparent
	r.frame.StrokeColor, r.frame.StrokeWidth = axisColor, 1
	r.frame.Move(pos)
	r.frame.Resize(psize)

	r.mu.Lock()
	r.scene = scatterScene{
		view:     b,
		size:     psize,
		series:   d.series,
		markers:  d.markers,
		covered:  d.covered,
		heat:     d.heat,
		xTicks:   xs,
		yTicks:   ys,
		gridLine: gridColor,
	}
	r.mu.Unlock()
	r.raster.Move(pos)
	r.raster.Resize(psize)
	r.raster.Refresh()

	// Placeholder, centred in the plot.
	r.empty.Text = d.placeholder
	r.empty.TextSize = textSize
	r.empty.Color = th.Color(theme.ColorNamePlaceHolder, v)
	es := fyne.MeasureText(r.empty.Text, textSize, r.empty.TextStyle)
	r.empty.Move(fyne.NewPos(pos.X, pos.Y+(psize.Height-es.Height)/2))
	r.empty.Resize(fyne.NewSize(psize.Width, es.Height))
	if d.hasData {
		r.empty.Hide()
	} else {
		r.empty.Show()
	}

	// Objects back to front: plot raster, frame, ticks, legend, labels.
	objs := make([]fyne.CanvasObject, 0, 3+len(r.ticks)+len(r.tickLabels)+2*len(r.swatches))
	objs = append(objs, r.raster, r.frame)
	for _, l := range r.ticks {
		objs = append(objs, l)
	}
	for i := range r.swatches {
		objs = append(objs, r.swatches[i], r.legendLabels[i])
	}
	for _, t := range r.tickLabels {
		objs = append(objs, t)
	}
	objs = append(objs, r.empty)
	r.objects = objs
}

// paint is the raster's generator: it paints the heat map, the grid, the
// covered markers' fill, the points and the markers' rings, in that order,
// into a w x h pixel image. The painters copy the result straight away, so
// the pixel buffer is reused between calls of the same size.
func (r *scatterRenderer) paint(w, h int) image.Image {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, h = max(w, 0), max(h, 0)
	img := r.pixels
	if img == nil || img.Rect.Dx() != w || img.Rect.Dy() != h {
		img = image.NewRGBA(image.Rect(0, 0, w, h))
		r.pixels = img
	} else {
		clear(img.Pix)
	}
	s := r.scene
	if w == 0 || h == 0 || s.size.Width <= 0 || s.size.Height <= 0 {
		return img
	}
	// Pixels per canvas unit: the canvas scale, for crisp output on HiDPI screens.
	scale := (float64(w)/float64(s.size.Width) + float64(h)/float64(s.size.Height)) / 2
	b := s.view

	if s.heat != nil {
		paintScatterHeat(img, b, s.heat)
	}

	lw := max(1, int(math.Round(scale)))
	for _, xv := range s.xTicks {
		px, _ := b.toPixel(xv, 0, w, h)
		x0 := clampInt(int(math.Round(px))-lw/2, 0, w-lw)
		scatterFillRect(img, x0, 0, x0+lw, h, s.gridLine)
	}
	for _, yv := range s.yTicks {
		_, py := b.toPixel(0, yv, w, h)
		y0 := clampInt(int(math.Round(py))-lw/2, 0, h-lw)
		scatterFillRect(img, 0, y0, w, y0+lw, s.gridLine)
	}

	markerR := scatterMarkerRadius * scale
	forMarkers := func(f func(k int, px, py float64)) {
		for k := 0; k+1 < len(s.markers); k += 2 {
			x, y := float64(s.markers[k]), float64(s.markers[k+1])
			if !isFinite(x) || !isFinite(y) {
				continue
			}
			px, py := b.toPixel(x, y, w, h)
			f(k/2, px, py)
		}
	}
	fill := scatterCoveredColor
	fill.A = uint8(math.Round(scatterCoverFill * 255))
	forMarkers(func(k int, px, py float64) {
		if k < len(s.covered) && s.covered[k] {
			scatterDisc(img, px, py, markerR, fill)
		}
	})

	dotR := scatterDotRadius * scale
	for i, ser := range s.series {
		col := lossPalette[i%len(lossPalette)]
		col.A = uint8(math.Round(scatterDotAlpha * 255))
		for k := 0; k+1 < len(ser.xy); k += 2 {
			x, y := float64(ser.xy[k]), float64(ser.xy[k+1])
			if !isFinite(x) || !isFinite(y) {
				continue
			}
			px, py := b.toPixel(x, y, w, h)
			scatterDisc(img, px, py, dotR, col)
		}
	}

	forMarkers(func(k int, px, py float64) {
		if k < len(s.covered) && s.covered[k] {
			scatterRing(img, px, py, markerR, scatterRingStroke*scale/2, scatterCoveredColor)
		} else {
			scatterRing(img, px, py, markerR, scatterMissStroke*scale/2, scatterMissedColor)
		}
	})
	return img
}

// scatterHeatLUT maps a probability in 256 steps to a premultiplied colour of the
// faint diverging map: series 1's orange at 0, transparent at ½, series 0's
// blue at 1.
var scatterHeatLUT = func() (lut [256][4]uint8) {
	low, high := lossPalette[1], lossPalette[0]
	for i := range lut {
		t := float64(i)/255*2 - 1
		c := high
		if t < 0 {
			c, t = low, -t
		}
		a := scatterHeatAlpha * t
		lut[i] = [4]uint8{
			uint8(float64(c.R)*a + 0.5),
			uint8(float64(c.G)*a + 0.5),
			uint8(float64(c.B)*a + 0.5),
			uint8(255*a + 0.5),
		}
	}
	return lut
}()

// paintScatterHeat fills img, which shows the window b, with the heat map's colours,
// interpolating the probabilities bilinearly between cell centres. Pixels
// outside the heat map's own window stay transparent.
func paintScatterHeat(img *image.RGBA, b scatterBounds, heat *scatterHeat) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	hb := heat.b
	// Per column: the left cell and the weight of the right one.
	cols := make([]int, w)
	colT := make([]float32, w)
	for px := 0; px < w; px++ {
		x := b.xmin + (float64(px)+0.5)/float64(w)*(b.xmax-b.xmin)
		g := (x-hb.xmin)/(hb.xmax-hb.xmin)*float64(heat.w) - 0.5
		if g < -0.5 || g > float64(heat.w)-0.5 {
			cols[px] = -1
			continue
		}
		g = math.Max(0, math.Min(g, float64(heat.w-1)))
		c := min(int(g), heat.w-1)
		cols[px], colT[px] = c, float32(g-float64(c))
	}
	for py := 0; py < h; py++ {
		y := b.ymax - (float64(py)+0.5)/float64(h)*(b.ymax-b.ymin)
		g := (hb.ymax-y)/(hb.ymax-hb.ymin)*float64(heat.h) - 0.5
		if g < -0.5 || g > float64(heat.h)-0.5 {
			continue
		}
		g = math.Max(0, math.Min(g, float64(heat.h-1)))
		r0 := min(int(g), heat.h-1)
		r1 := min(r0+1, heat.h-1)
		rt := float32(g - float64(r0))
		row0, row1 := heat.p[r0*heat.w:(r0+1)*heat.w], heat.p[r1*heat.w:(r1+1)*heat.w]
		o := img.PixOffset(0, py)
		for px := 0; px < w; px, o = px+1, o+4 {
			c := cols[px]
			if c < 0 {
				continue
			}
			c1 := min(c+1, heat.w-1)
			ct := colT[px]
			top := row0[c] + (row0[c1]-row0[c])*ct
			bot := row1[c] + (row1[c1]-row1[c])*ct
			v := top + (bot-top)*rt
			if !(v >= 0) { // also NaN
				v = 0
			} else if v > 1 {
				v = 1
			}
			copy(img.Pix[o:o+4], scatterHeatLUT[int(v*255+0.5)][:])
		}
	}
}

// scatterBlend paints col over the pixel at offset o of img with extra coverage cov (0..1).
func scatterBlend(img *image.RGBA, o int, col color.NRGBA, cov float64) {
	a := uint32(float64(col.A)*cov + 0.5) // 0..255
	if a == 0 {
		return
	}
	p := img.Pix[o : o+4 : o+4]
	inv := 255 - a
	p[0] = uint8((uint32(col.R)*a + uint32(p[0])*inv) / 255)
	p[1] = uint8((uint32(col.G)*a + uint32(p[1])*inv) / 255)
	p[2] = uint8((uint32(col.B)*a + uint32(p[2])*inv) / 255)
	p[3] = uint8(a + uint32(p[3])*inv/255)
}

// scatterFillRect blends col over the pixels of img in [x0, x1) x [y0, y1).
func scatterFillRect(img *image.RGBA, x0, y0, x1, y1 int, col color.NRGBA) {
	for y := max(y0, 0); y < min(y1, img.Rect.Dy()); y++ {
		for x := max(x0, 0); x < min(x1, img.Rect.Dx()); x++ {
			scatterBlend(img, img.PixOffset(x, y), col, 1)
		}
	}
}

// scatterDisc blends an anti-aliased disc of radius rad centred at (cx, cy), in pixels.
func scatterDisc(img *image.RGBA, cx, cy, rad float64, col color.NRGBA) {
	scatterShape(img, cx, cy, rad+1, col, func(d float64) float64 { return rad + 0.5 - d })
}

// scatterRing blends an anti-aliased ring of radius rad and half-width half
// centred at (cx, cy), in pixels.
func scatterRing(img *image.RGBA, cx, cy, rad, half float64, col color.NRGBA) {
	scatterShape(img, cx, cy, rad+half+1, col, func(d float64) float64 { return half + 0.5 - math.Abs(d-rad) })
}

// scatterShape blends col over the pixels within reach of (cx, cy) with the
// coverage cov(d), clamped to [0, 1], where d is a pixel centre's distance
// from (cx, cy).
func scatterShape(img *image.RGBA, cx, cy, reach float64, col color.NRGBA, cov func(d float64) float64) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	x0, x1 := max(0, int(math.Floor(cx-reach))), min(w-1, int(math.Ceil(cx+reach)))
	y0, y1 := max(0, int(math.Floor(cy-reach))), min(h-1, int(math.Ceil(cy+reach)))
	for y := y0; y <= y1; y++ {
		dy := float64(y) + 0.5 - cy
		o := img.PixOffset(x0, y)
		for x := x0; x <= x1; x, o = x+1, o+4 {
			dx := float64(x) + 0.5 - cx
			c := cov(math.Sqrt(dx*dx + dy*dy))
			if c <= 0 {
				continue
			}
			scatterBlend(img, o, col, math.Min(c, 1))
		}
	}
}
