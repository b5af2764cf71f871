package widgets

import (
	"image"
	"image/color"
	"math"
	"sort"
	"strconv"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// DefaultLossChartPlaceholder is the text a LossChart shows while it has no data.
const DefaultLossChartPlaceholder = "No data yet"

// MaxDrawSegments is the largest number of line segments a LossChart draws per
// series. Longer series are downsampled into MaxDrawSegments+1 buckets, each
// drawn at the mean step and mean value of the points it holds.
const MaxDrawSegments = 400

const (
	lossChartMinWidth  = 320
	lossChartMinHeight = 200

	seriesStrokeWidth = 1.5
	minSegmentPx      = 2
	plotMargin        = 3
	yPadding          = 0.05 // fraction of the value range left free above and below the data
	swatchWidth       = 16
	swatchStroke      = 3
)

// lossPalette holds the series colours, assigned in order of first appearance.
// They are the Tableau 10 colours, which stay distinct on dark and light backgrounds.
var lossPalette = []color.NRGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
	{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, // brown
	{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff}, // pink
	{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, // grey
	{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff}, // olive
	{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff}, // cyan
}

// SeriesColor returns the colour a LossChart uses for its i-th series
// (counting from 0 in order of first appearance). Colours repeat after the
// palette's ten entries.
func SeriesColor(i int) color.Color {
	if i < 0 {
		i = -i
	}
	return lossPalette[i%len(lossPalette)]
}

var _ fyne.Widget = (*LossChart)(nil)

// LossChart is a live line chart of several named series (for example
// "D loss" and "G loss") plotted against the training step.
// Series get distinct colours in order of first appearance, and a legend
// shows their names. Non-finite values (NaN, ±Inf) are skipped. All points
// are kept, but for drawing long series are downsampled by per-bucket means to
// at most MaxDrawSegments segments (fewer on narrow charts: about one per two
// units of plot width) so that refreshing stays cheap. The lines are drawn
// anti-aliased into a single raster over the plot area; axes, grid and text
// use the current theme's foreground colour. Update it from the UI goroutine
// (fyne.Do).
type LossChart struct {
	widget.BaseWidget

	mu          sync.RWMutex
	series      []*lossSeries
	index       map[string]int
	smoothing   float64
	logY        bool
	placeholder string
}

// lossSeries holds the finite points of one named series in insertion order.
type lossSeries struct {
	name   string
	steps  []float64
	values []float64
}

// chartPoint is one point in data coordinates.
type chartPoint struct{ x, y float64 }

// NewLossChart creates an empty LossChart.
func NewLossChart() *LossChart {
	c := &LossChart{index: map[string]int{}, placeholder: DefaultLossChartPlaceholder}
	c.ExtendBaseWidget(c)
	return c
}

// Add appends one point at the given step to each named series in values and
// refreshes the chart. Names not seen before create new series; when one call
// introduces several new names they are added in sorted order so that colours
// stay deterministic. NaN and infinite values are skipped (the series is still
// created so its colour is reserved).
func (c *LossChart) Add(step int, values map[string]float64) {
	if len(values) == 0 {
		return
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)

	c.mu.Lock()
	for _, name := range names {
		s := c.seriesLocked(name)
		v := values[name]
		if !isFinite(v) {
			continue
		}
		s.steps = append(s.steps, float64(step))
		s.values = append(s.values, v)
	}
	c.mu.Unlock()
	c.Refresh()
}

// SetSeries replaces all points of the named series (creating it if needed)
// and refreshes the chart once. steps and values are paired by index; extra
// entries in the longer slice are ignored and non-finite values are skipped.
func (c *LossChart) SetSeries(name string, steps []int, values []float64) {
	n := len(steps)
	if len(values) < n {
		n = len(values)
	}
	xs := make([]float64, 0, n)
	ys := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if !isFinite(values[i]) {
			continue
		}
		xs = append(xs, float64(steps[i]))
		ys = append(ys, values[i])
	}

	c.mu.Lock()
	s := c.seriesLocked(name)
	s.steps, s.values = xs, ys
	c.mu.Unlock()
	c.Refresh()
}

// Clear removes all series and their colours and refreshes the chart.
func (c *LossChart) Clear() {
	c.mu.Lock()
	c.series = nil
	c.index = map[string]int{}
	c.mu.Unlock()
	c.Refresh()
}

// SeriesNames returns the names of all series in order of first appearance.
func (c *LossChart) SeriesNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, len(c.series))
	for i, s := range c.series {
		names[i] = s.name
	}
	return names
}

// Len returns the number of stored (finite) points of the named series, or 0
// if there is no such series.
func (c *LossChart) Len(name string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.index[name]
	if !ok {
		return 0
	}
	return len(c.series[i].values)
}

// SetSmoothing sets the weight of the exponential moving average applied to
// the drawn lines (like TensorBoard's smoothing slider) and refreshes the
// chart. 0 disables smoothing; values are clamped to [0, 0.999]. Stored data
// is not changed.
func (c *LossChart) SetSmoothing(weight float64) {
	if !(weight > 0) { // also catches NaN
		weight = 0
	}
	if weight > 0.999 {
		weight = 0.999
	}
	c.mu.Lock()
	c.smoothing = weight
	c.mu.Unlock()
	c.Refresh()
}

// Smoothing returns the current smoothing weight set by SetSmoothing.
func (c *LossChart) Smoothing() float64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.smoothing
}

// SetLogScale draws the values on a log₁₀ axis (points ≤ 0 are left
// out) or, with false, on a linear one, and refreshes the chart.
func (c *LossChart) SetLogScale(on bool) {
	c.mu.Lock()
	c.logY = on
	c.mu.Unlock()
	c.Refresh()
}

// LogScale reports whether the value axis is logarithmic.
func (c *LossChart) LogScale() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.logY
}

// SetPlaceholder sets the text shown while the chart has no data and refreshes the chart.
func (c *LossChart) SetPlaceholder(text string) {
	c.mu.Lock()
	c.placeholder = text
	c.mu.Unlock()
	c.Refresh()
}

// MinSize returns the size that this widget should not shrink below.
func (c *LossChart) MinSize() fyne.Size {
	c.ExtendBaseWidget(c)
	return c.BaseWidget.MinSize()
}

// CreateRenderer is a private method to Fyne which links this widget to its renderer.
func (c *LossChart) CreateRenderer() fyne.WidgetRenderer {
	c.ExtendBaseWidget(c)
	r := &lossChartRenderer{chart: c}
	r.xAxis = canvas.NewLine(color.Transparent)
	r.yAxis = canvas.NewLine(color.Transparent)
	r.empty = canvas.NewText("", color.Transparent)
	r.empty.Alignment = fyne.TextAlignCenter
	r.plot = canvas.NewRaster(r.paintSeries)
	r.build(c.Size())
	return r
}

// seriesLocked returns the named series, creating it if needed. c.mu must be held.
func (c *LossChart) seriesLocked(name string) *lossSeries {
	if c.index == nil {
		c.index = map[string]int{}
	}
	if i, ok := c.index[name]; ok {
		return c.series[i]
	}
	s := &lossSeries{name: name}
	c.index[name] = len(c.series)
	c.series = append(c.series, s)
	return s
}

// drawData is a snapshot of what the renderer needs, taken under the lock.
type drawData struct {
	names       []string
	points      [][]chartPoint
	placeholder string
	logY        bool
}

func (c *LossChart) drawData() drawData {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d := drawData{
		names:       make([]string, len(c.series)),
		points:      make([][]chartPoint, len(c.series)),
		placeholder: c.placeholder,
		logY:        c.logY,
	}
	for i, s := range c.series {
		d.names[i] = s.name
		steps, values := s.steps, s.values
		if c.logY {
			steps, values = logPoints(steps, values)
		}
		d.points[i] = downsample(steps, values, c.smoothing, MaxDrawSegments+1)
	}
	return d
}

// logPoints keeps the points with positive values, as log₁₀ of them.
func logPoints(steps, values []float64) (xs, ys []float64) {
	for i, v := range values {
		if v > 0 && i < len(steps) {
			xs, ys = append(xs, steps[i]), append(ys, math.Log10(v))
		}
	}
	return xs, ys
}

// yTick formats a value-axis tick: on a log axis the value 10^v.
func yTick(v, step, maxAbs float64, logY bool) string {
	if logY {
		return strconv.FormatFloat(math.Pow(10, v), 'g', 3, 64)
	}
	return formatTick(v, step, maxAbs)
}

// downsample returns at most maxPoints points for drawing. Non-finite values
// are skipped. When smoothing > 0 a debiased exponential moving average is
// applied first. If more than maxPoints points remain, they are split into
// maxPoints buckets of consecutive points and each bucket is replaced by the
// mean of its steps and values.
func downsample(steps, values []float64, smoothing float64, maxPoints int) []chartPoint {
	n := min(len(steps), len(values))
	if maxPoints < 2 {
		maxPoints = 2
	}
	finite := 0
	for i := 0; i < n; i++ {
		if isFinite(steps[i]) && isFinite(values[i]) {
			finite++
		}
	}
	// Stream the points into buckets (one point per bucket when short) so that
	// long series cost no allocation beyond the result.
	buckets := min(finite, maxPoints)
	out := make([]chartPoint, 0, buckets)
	ema, weight := 0.0, 1.0
	var sx, sy float64
	j, b, count := 0, 0, 0
	end := 0
	if buckets > 0 {
		end = finite / buckets
	}
	for i := 0; i < n; i++ {
		x, y := steps[i], values[i]
		if !isFinite(x) || !isFinite(y) {
			continue
		}
		if smoothing > 0 {
			ema = ema*smoothing + (1-smoothing)*y
			weight *= smoothing
			y = ema / (1 - weight)
		}
		sx += x
		sy += y
		count++
		j++
		if j >= end {
			out = append(out, chartPoint{sx / float64(count), sy / float64(count)})
			sx, sy, count = 0, 0, 0
			b++
			end = (b + 1) * finite / buckets
		}
	}
	return out
}

// bucketMeans splits pts into maxPoints buckets of consecutive points and
// replaces each bucket by the mean of its steps and values. Series with at
// most maxPoints points are returned unchanged.
func bucketMeans(pts []chartPoint, maxPoints int) []chartPoint {
	if maxPoints < 2 {
		maxPoints = 2
	}
	if len(pts) <= maxPoints {
		return pts
	}
	out := make([]chartPoint, 0, maxPoints)
	total := len(pts)
	for b := 0; b < maxPoints; b++ {
		lo := b * total / maxPoints
		hi := (b + 1) * total / maxPoints
		if hi <= lo {
			continue
		}
		var sx, sy float64
		for _, p := range pts[lo:hi] {
			sx += p.x
			sy += p.y
		}
		k := float64(hi - lo)
		out = append(out, chartPoint{sx / k, sy / k})
	}
	return out
}

func isFinite(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0)
}

// niceNum returns a "nice" number (1, 2 or 5 times a power of ten) close to x.
// If round is true the closest nice number is returned, otherwise the
// smallest nice number not below x.
func niceNum(x float64, round bool) float64 {
	if x <= 0 || !isFinite(x) {
		return 1
	}
	exp := math.Floor(math.Log10(x))
	f := x / math.Pow(10, exp)
	var nf float64
	if round {
		switch {
		case f < 1.5:
			nf = 1
		case f < 3:
			nf = 2
		case f < 7:
			nf = 5
		default:
			nf = 10
		}
	} else {
		switch {
		case f <= 1:
			nf = 1
		case f <= 2:
			nf = 2
		case f <= 5:
			nf = 5
		default:
			nf = 10
		}
	}
	return nf * math.Pow(10, exp)
}

// niceTicks returns rounded axis bounds that contain [lo, hi] and the tick
// spacing, aiming for about target ticks. minStep is a lower bound for the
// spacing (use 1 for integer axes, 0 for none).
func niceTicks(lo, hi float64, target int, minStep float64) (start, end, step float64) {
	if target < 2 {
		target = 2
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		d := math.Abs(lo) * 0.1
		if d == 0 {
			d = 0.5
		}
		lo, hi = lo-d, hi+d
	}
	step = niceNum((hi-lo)/float64(target-1), true)
	if step < minStep {
		step = minStep
	}
	start = math.Floor(lo/step+1e-9) * step
	end = math.Ceil(hi/step-1e-9) * step
	if end <= start {
		end = start + step
	}
	return start, end, step
}

// paddedRange widens [lo, hi] by frac of its span on both sides, so that
// curves do not run along the plot's edges. A zero span is widened around the
// value first.
func paddedRange(lo, hi, frac float64) (float64, float64) {
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		d := math.Abs(lo) * 0.1
		if d == 0 {
			d = 0.5
		}
		return lo - d, hi + d
	}
	pad := (hi - lo) * frac
	return lo - pad, hi + pad
}

// tickValues lists the tick positions from start to end (inclusive) with the given step.
func tickValues(start, end, step float64) []float64 {
	if step <= 0 || !isFinite(step) {
		return []float64{start, end}
	}
	n := int(math.Round((end-start)/step)) + 1
	if n > 100 {
		n = 100
	}
	ticks := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		ticks = append(ticks, start+float64(i)*step)
	}
	return ticks
}

// formatTick formats a tick value with just enough decimals for the spacing.
// maxAbs is the largest absolute tick value on the axis: when it reaches
// 10000 and the spacing is at least 1000, every label on the axis is written
// in thousands with a "k" suffix ("2k", "12.5k", "20k") for a consistent look.
func formatTick(v, step, maxAbs float64) string {
	if math.Abs(v) < step*1e-6 {
		v = 0
	}
	av := math.Abs(v)
	if av >= 1e7 || (av != 0 && av < 1e-4) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	if step >= 1000 && maxAbs >= 10000 && maxAbs < 1e7 {
		if v == 0 {
			return "0"
		}
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	decimals := 0
	if step > 0 && step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// fade returns c with its alpha scaled by a/255.
func fade(c color.Color, a uint8) color.Color {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	n.A = uint8(uint16(n.A) * uint16(a) / 255)
	return n
}

type lossChartRenderer struct {
	chart *LossChart

	xAxis, yAxis *canvas.Line
	empty        *canvas.Text
	grid         []*canvas.Line
	tickLabels   []*canvas.Text
	swatches     []*canvas.Line
	legendLabels []*canvas.Text
	plot         *canvas.Raster

	// polylines holds the drawn points of each series in canvas units
	// relative to the plot raster's origin; colours holds their colours.
	// The raster generator reads them, so they are guarded by mu.
	mu        sync.Mutex
	polylines [][]fyne.Position
	colours   []color.NRGBA
	pixels    *image.RGBA // raster buffers reused by paintSeries
	coverage  []uint8

	objects []fyne.CanvasObject
}

func (r *lossChartRenderer) Destroy() {}

func (r *lossChartRenderer) Objects() []fyne.CanvasObject {
	return r.objects
}

func (r *lossChartRenderer) MinSize() fyne.Size {
	return fyne.NewSize(lossChartMinWidth, lossChartMinHeight)
}

func (r *lossChartRenderer) Layout(size fyne.Size) {
	r.build(size)
}

func (r *lossChartRenderer) Refresh() {
	r.build(r.chart.Size())
	canvas.Refresh(r.chart)
}

// segmentCount returns the number of line segments drawn for series i.
func (r *lossChartRenderer) segmentCount(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < 0 || i >= len(r.polylines) || len(r.polylines[i]) < 2 {
		return 0
	}
	return len(r.polylines[i]) - 1
}

func text(pool *[]*canvas.Text, i int) *canvas.Text {
	for len(*pool) <= i {
		*pool = append(*pool, canvas.NewText("", color.Transparent))
	}
	t := (*pool)[i]
	t.Show()
	return t
}

func line(pool *[]*canvas.Line, i int) *canvas.Line {
	for len(*pool) <= i {
		*pool = append(*pool, canvas.NewLine(color.Transparent))
	}
	l := (*pool)[i]
	l.Show()
	return l
}

// trimPool hides the pooled objects beyond n and drops them, keeping the
// pool small after the data shrink (the charts' lines, texts, rectangles
// and circles alike).
func trimPool[T interface{ Hide() }](pool []T, n int) []T {
	if n < len(pool) {
		for _, o := range pool[n:] {
			o.Hide()
		}
		return pool[:n]
	}
	return pool
}

// build recomputes the geometry and styling of every canvas object for the given size.
func (r *lossChartRenderer) build(size fyne.Size) {
	data := r.chart.drawData()
	th := r.chart.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()

	fg := th.Color(theme.ColorNameForeground, v)
	axisColor := fade(fg, 0x99)
	gridColor := fade(fg, 0x26)
	pad := th.Size(theme.SizeNamePadding)
	capSize := th.Size(theme.SizeNameCaptionText)
	textSize := th.Size(theme.SizeNameText)
	tickLen := pad
	lineH := fyne.MeasureText("0", capSize, fyne.TextStyle{}).Height

	// Data bounds over all drawn points.
	xMin, xMax := math.Inf(1), math.Inf(-1)
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for _, pts := range data.points {
		for _, p := range pts {
			xMin, xMax = math.Min(xMin, p.x), math.Max(xMax, p.x)
			yMin, yMax = math.Min(yMin, p.y), math.Max(yMax, p.y)
		}
	}
	hasData := xMin <= xMax

	// Legend: centred rows of swatch + name, wrapping within the widget width.
	items := make([]float32, len(data.names))
	for i, name := range data.names {
		items[i] = swatchWidth + pad + fyne.MeasureText(name, capSize, fyne.TextStyle{}).Width
	}
	var rows [][]int
	avail := size.Width - 2*pad
	var rowW float32
	for i, w := range items {
		if len(rows) == 0 || (rowW+2*pad+w > avail && len(rows[len(rows)-1]) > 0) {
			rows = append(rows, nil)
			rowW = -2 * pad
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], i)
		rowW += 2*pad + w
	}
	top := pad + lineH/2
	if len(rows) > 0 {
		top = pad + float32(len(rows))*lineH + float32(len(rows)-1)*pad/2 + pad
	}
	for ri, row := range rows {
		var w float32
		for k, i := range row {
			if k > 0 {
				w += 2 * pad
			}
			w += items[i]
		}
		x := (size.Width - w) / 2
		y := pad + float32(ri)*(lineH+pad/2)
		for _, i := range row {
			col := SeriesColor(i)
			s := line(&r.swatches, i)
			s.StrokeColor = col
			s.StrokeWidth = swatchStroke
			s.Position1 = fyne.NewPos(x, y+lineH/2)
			s.Position2 = fyne.NewPos(x+swatchWidth, y+lineH/2)
			t := text(&r.legendLabels, i)
			t.Text = data.names[i]
			t.TextSize = capSize
			t.Color = fg
			t.Alignment = fyne.TextAlignLeading
			ts := fyne.MeasureText(t.Text, capSize, t.TextStyle)
			t.Move(fyne.NewPos(x+swatchWidth+pad, y))
			t.Resize(ts)
			x += items[i] + 2*pad
		}
	}
	r.swatches = trimPool(r.swatches, len(data.names))
	r.legendLabels = trimPool(r.legendLabels, len(data.names))

	bottom := size.Height - (tickLen + lineH + pad)
	nTick := 0
	nGrid := 0
	left, right := pad+tickLen, size.Width-pad

	var xs, ys []float64
	var x0, x1, y0, y1, xStep, yStep, xMaxAbs, yMaxAbs float64
	if hasData {
		// Y ticks depend only on the plot height.
		plotH := float64(bottom - top)
		yTarget := int(plotH / float64(lineH*2.5))
		yTarget = clampInt(yTarget, 3, 8)
		y0, y1 = paddedRange(yMin, yMax, yPadding)
		_, _, yStep = niceTicks(y0, y1, yTarget, 0)
		ys = tickValues(math.Ceil(y0/yStep-1e-9)*yStep, math.Floor(y1/yStep+1e-9)*yStep, yStep)
		yMaxAbs = math.Max(math.Abs(y0), math.Abs(y1))
		var labelW float32
		for _, yv := range ys {
			labelW = fyne.Max(labelW, fyne.MeasureText(yTick(yv, yStep, yMaxAbs, data.logY), capSize, fyne.TextStyle{}).Width)
		}
		left = pad + labelW + tickLen

		// X ticks: space labels by an estimate of their width.
		xAbs := math.Max(math.Abs(xMin), math.Abs(xMax))
		est := fyne.MeasureText(formatTick(xAbs, 1, xAbs), capSize, fyne.TextStyle{}).Width
		right = size.Width - pad - est/2
		plotW := float64(right - left)
		xTarget := clampInt(int(plotW/float64(est+4*pad)), 2, 10)
		x0, x1, xStep = niceTicks(xMin, xMax, xTarget, 1)
		xs = tickValues(x0, x1, xStep)
		xMaxAbs = math.Max(math.Abs(x0), math.Abs(x1))
		lastW := fyne.MeasureText(formatTick(x1, xStep, xMaxAbs), capSize, fyne.TextStyle{}).Width
		right = fyne.Min(size.Width-pad-lastW/2, size.Width-pad)
	}
	if right < left+1 {
		right = left + 1
	}
	if bottom < top+1 {
		bottom = top + 1
	}
	plotW, plotH := right-left, bottom-top
	mapX := func(x float64) float32 { return left + float32((x-x0)/(x1-x0))*plotW }
	mapY := func(y float64) float32 { return bottom - float32((y-y0)/(y1-y0))*plotH }

	// Grid lines, ticks and tick labels.
	for _, yv := range ys {
		py := mapY(yv)
		g := line(&r.grid, nGrid)
		nGrid++
		g.StrokeColor, g.StrokeWidth = gridColor, 1
		g.Position1, g.Position2 = fyne.NewPos(left, py), fyne.NewPos(right, py)
		tk := line(&r.grid, nGrid)
		nGrid++
		tk.StrokeColor, tk.StrokeWidth = axisColor, 1
		tk.Position1, tk.Position2 = fyne.NewPos(left-tickLen, py), fyne.NewPos(left, py)

		t := text(&r.tickLabels, nTick)
		nTick++
		t.Text = yTick(yv, yStep, yMaxAbs, data.logY)
		t.TextSize, t.Color, t.Alignment = capSize, fg, fyne.TextAlignTrailing
		t.Move(fyne.NewPos(0, py-lineH/2))
		t.Resize(fyne.NewSize(left-tickLen-pad/2, lineH))
	}
	for _, xv := range xs {
		px := mapX(xv)
		g := line(&r.grid, nGrid)
		nGrid++
		g.StrokeColor, g.StrokeWidth = gridColor, 1
		g.Position1, g.Position2 = fyne.NewPos(px, top), fyne.NewPos(px, bottom)
		tk := line(&r.grid, nGrid)
		nGrid++
		tk.StrokeColor, tk.StrokeWidth = axisColor, 1
		tk.Position1, tk.Position2 = fyne.NewPos(px, bottom), fyne.NewPos(px, bottom+tickLen)

		t := text(&r.tickLabels, nTick)
		nTick++
		t.Text = formatTick(xv, xStep, xMaxAbs)
		t.TextSize, t.Color, t.Alignment = capSize, fg, fyne.TextAlignCenter
		ts := fyne.MeasureText(t.Text, capSize, t.TextStyle)
		t.Move(fyne.NewPos(px-ts.Width/2, bottom+tickLen))
		t.Resize(ts)
	}
	r.grid = trimPool(r.grid, nGrid)
	r.tickLabels = trimPool(r.tickLabels, nTick)

	// Axes.
	r.xAxis.StrokeColor, r.xAxis.StrokeWidth = axisColor, 1
	r.xAxis.Position1, r.xAxis.Position2 = fyne.NewPos(left, bottom), fyne.NewPos(right, bottom)
	r.yAxis.StrokeColor, r.yAxis.StrokeWidth = axisColor, 1
	r.yAxis.Position1, r.yAxis.Position2 = fyne.NewPos(left, top), fyne.NewPos(left, bottom)

	// Series: polylines in one anti-aliased raster over the plot area (plus a
	// margin so strokes at the edges are not clipped), with at least
	// minSegmentPx of plot width per segment.
	maxSegments := clampInt(int(plotW/minSegmentPx), 1, MaxDrawSegments)
	polylines := make([][]fyne.Position, len(data.points))
	colours := make([]color.NRGBA, len(data.points))
	for i, pts := range data.points {
		pts = bucketMeans(pts, maxSegments+1)
		pl := make([]fyne.Position, len(pts))
		for k, p := range pts {
			pl[k] = fyne.NewPos(mapX(p.x)-left+plotMargin, mapY(p.y)-top+plotMargin)
		}
		polylines[i] = pl
		colours[i] = lossPalette[i%len(lossPalette)]
	}
	r.mu.Lock()
	r.polylines, r.colours = polylines, colours
	r.mu.Unlock()
	r.plot.Move(fyne.NewPos(left-plotMargin, top-plotMargin))
	r.plot.Resize(fyne.NewSize(plotW+2*plotMargin, plotH+2*plotMargin))
	r.plot.Refresh()

	// Placeholder.
	r.empty.Text = data.placeholder
	r.empty.TextSize = textSize
	r.empty.Color = th.Color(theme.ColorNamePlaceHolder, v)
	es := fyne.MeasureText(r.empty.Text, textSize, r.empty.TextStyle)
	r.empty.Move(fyne.NewPos(left, top+(plotH-es.Height)/2))
	r.empty.Resize(fyne.NewSize(plotW, es.Height))
	if hasData {
		r.empty.Hide()
	} else {
		r.empty.Show()
	}

	// Collect objects back to front: grid, axes, series, legend, labels.
	objs := make([]fyne.CanvasObject, 0, len(r.grid)+len(r.tickLabels)+2*len(r.swatches)+4)
	for _, g := range r.grid {
		objs = append(objs, g)
	}
	objs = append(objs, r.xAxis, r.yAxis)
	objs = append(objs, r.plot)
	for _, s := range r.swatches {
		objs = append(objs, s)
	}
	for _, t := range r.legendLabels {
		objs = append(objs, t)
	}
	for _, t := range r.tickLabels {
		objs = append(objs, t)
	}
	objs = append(objs, r.empty)
	r.objects = objs
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// paintSeries is the plot raster's generator: it draws every series'
// polyline with anti-aliased strokes into a w x h pixel image.
// The painters copy the result straight away, so its pixel and coverage
// buffers are reused between calls of the same size.
func (r *lossChartRenderer) paintSeries(w, h int) image.Image {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, h = max(w, 0), max(h, 0)
	img := r.pixels
	if img == nil || img.Rect.Dx() != w || img.Rect.Dy() != h {
		img = image.NewRGBA(image.Rect(0, 0, w, h))
		r.pixels = img
		r.coverage = make([]uint8, w*h)
	} else {
		clear(img.Pix)
	}
	size := r.plot.Size()
	if w == 0 || h == 0 || size.Width <= 0 || size.Height <= 0 {
		return img
	}
	polylines, colours := r.polylines, r.colours

	sx := float64(w) / float64(size.Width)
	sy := float64(h) / float64(size.Height)
	half := seriesStrokeWidth * (sx + sy) / 4
	cov := r.coverage
	for i, pl := range polylines {
		if len(pl) == 0 {
			continue
		}
		clear(cov)
		minX, minY, maxX, maxY := w, h, -1, -1
		radius := half
		if len(pl) == 1 { // a lone point: draw a visible dot
			radius = 2 * half
		}
		for k := range pl {
			a, b := pl[k], pl[k]
			if k > 0 {
				a = pl[k-1]
			} else if len(pl) > 1 {
				continue
			}
			x0, y0, x1, y1 := strokeSegment(cov, w, h,
				float64(a.X)*sx, float64(a.Y)*sy, float64(b.X)*sx, float64(b.Y)*sy, radius)
			minX, minY = min(minX, x0), min(minY, y0)
			maxX, maxY = max(maxX, x1), max(maxY, y1)
		}
		compositeCoverage(img, cov, colours[i], minX, minY, maxX, maxY)
	}
	return img
}

// strokeSegment records in cov (a w x h coverage mask, combined by maximum)
// an anti-aliased stroke of half-width half from (ax, ay) to (bx, by), in
// pixels. A zero-length segment draws a dot. It returns the touched pixel
// bounds (inclusive), or an empty box if nothing was inside the mask.
func strokeSegment(cov []uint8, w, h int, ax, ay, bx, by, half float64) (x0, y0, x1, y1 int) {
	reach := half + 1
	x0 = max(0, int(math.Floor(math.Min(ax, bx)-reach)))
	y0 = max(0, int(math.Floor(math.Min(ay, by)-reach)))
	x1 = min(w-1, int(math.Ceil(math.Max(ax, bx)+reach)))
	y1 = min(h-1, int(math.Ceil(math.Max(ay, by)+reach)))
	if x0 > x1 || y0 > y1 {
		return w, h, -1, -1
	}
	dx, dy := bx-ax, by-ay
	len2 := dx*dx + dy*dy
	for y := y0; y <= y1; y++ {
		py := float64(y) + 0.5
		row := y * w
		for x := x0; x <= x1; x++ {
			px := float64(x) + 0.5
			t := 0.0
			if len2 > 0 {
				t = ((px-ax)*dx + (py-ay)*dy) / len2
				t = math.Max(0, math.Min(1, t))
			}
			ex, ey := px-(ax+t*dx), py-(ay+t*dy)
			c := half + 0.5 - math.Sqrt(ex*ex+ey*ey)
			if c <= 0 {
				continue
			}
			v := uint8(255)
			if c < 1 {
				v = uint8(c*255 + 0.5)
			}
			if v > cov[row+x] {
				cov[row+x] = v
			}
		}
	}
	return x0, y0, x1, y1
}

// compositeCoverage paints col over img wherever cov is non-zero inside the
// inclusive box (x0, y0)-(x1, y1), using cov as extra alpha.
func compositeCoverage(img *image.RGBA, cov []uint8, col color.NRGBA, x0, y0, x1, y1 int) {
	w := img.Bounds().Dx()
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			c := cov[y*w+x]
			if c == 0 {
				continue
			}
			a := uint32(col.A) * uint32(c) / 255 // 0..255
			o := img.PixOffset(x, y)
			p := img.Pix[o : o+4 : o+4]
			inv := 255 - a
			p[0] = uint8((uint32(col.R)*a + uint32(p[0])*inv) / 255)
			p[1] = uint8((uint32(col.G)*a + uint32(p[1])*inv) / 255)
			p[2] = uint8((uint32(col.B)*a + uint32(p[2])*inv) / 255)
			p[3] = uint8(a + uint32(p[3])*inv/255)
		}
	}
}
