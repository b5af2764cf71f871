package widgets

import (
	"image/color"
	"math"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// DefaultBarChartPlaceholder is the text a BarChart shows while it has no data.
const DefaultBarChartPlaceholder = "No histogram yet"

const (
	barChartMinWidth  = 260
	barChartMinHeight = 160

	barGroupFill  = 0.8  // share of a label's slot covered by its bars
	barGap        = 1    // space between the bars of one group, when they are wide enough
	maxYIntervals = 3    // at most 4 tick labels on the y axis
	yHeadroom     = 0.05 // share of the largest value left free above it
	legendSwatch  = 10   // side of a legend's colour square
)

var _ fyne.Widget = (*BarChart)(nil)

// BarChart is a small vertical bar chart of shares, such as the class
// histogram of generated samples beside that of real data. Each label (a
// class) gets a group of bars, one per series, side by side in the colours
// of SeriesColor; a legend above names the series. Values are shares: the y
// axis runs from 0 to a little above the largest value, with 2 to 4 ticks at
// round shares written as percent (0.1 is "10%"). Zero, negative and non-finite values draw no bar, and a positive
// value draws at least a one-unit sliver so that it is told apart from zero.
// When the labels are too wide for their slots only every k-th is written.
// It shows a placeholder text while it has no data. Update it from the UI
// goroutine (fyne.Do).
type BarChart struct {
	widget.BaseWidget

	mu          sync.RWMutex
	labels      []string
	series      []string
	values      [][]float64
	placeholder string
}

// NewBarChart creates an empty BarChart that shows DefaultBarChartPlaceholder.
func NewBarChart() *BarChart {
	b := &BarChart{placeholder: DefaultBarChartPlaceholder}
	b.ExtendBaseWidget(b)
	return b
}

// SetData replaces the chart's data and refreshes it. values[s][i] is the
// share of label i in series s. Mismatched lengths are tolerated: there is one
// group of bars per label, values beyond the last label are ignored and
// missing ones draw no bar; there is one series per row of values, names
// beyond the last row are ignored and a row without a name (or with an empty
// one) is drawn but left out of the legend. The slices are copied, so the
// caller may reuse them.
func (b *BarChart) SetData(labels []string, series []string, values [][]float64) {
	ls := append([]string(nil), labels...)
	names := make([]string, len(values))
	copy(names, series)
	vs := make([][]float64, len(values))
	for s, row := range values {
		vs[s] = append([]float64(nil), row[:min(len(row), len(ls))]...)
	}

	b.mu.Lock()
	b.labels, b.series, b.values = ls, names, vs
	b.mu.Unlock()
	b.Refresh()
}

// Clear removes all data, so the chart shows its placeholder, and refreshes it.
func (b *BarChart) Clear() {
	b.mu.Lock()
	b.labels, b.series, b.values = nil, nil, nil
	b.mu.Unlock()
	b.Refresh()
}

// Labels returns a copy of the labels set by SetData.
func (b *BarChart) Labels() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]string(nil), b.labels...)
}

// SeriesNames returns the names of the drawn series, one per row of values
// ("" for a row without a name).
func (b *BarChart) SeriesNames() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]string(nil), b.series...)
}

// SetPlaceholder sets the text shown while the chart has no data and refreshes it.
func (b *BarChart) SetPlaceholder(text string) {
	b.mu.Lock()
	b.placeholder = text
	b.mu.Unlock()
	b.Refresh()
}

// Placeholder returns the text shown while the chart has no data.
func (b *BarChart) Placeholder() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.placeholder
}

// MinSize returns the size that this widget should not shrink below.
func (b *BarChart) MinSize() fyne.Size {
	b.ExtendBaseWidget(b)
	return b.BaseWidget.MinSize()
}

// CreateRenderer is a private method to Fyne which links this widget to its renderer.
func (b *BarChart) CreateRenderer() fyne.WidgetRenderer {
	b.ExtendBaseWidget(b)
	r := &barChartRenderer{chart: b}
	r.axis = canvas.NewLine(color.Transparent)
	r.empty = canvas.NewText("", color.Transparent)
	r.empty.Alignment = fyne.TextAlignCenter
	r.build(b.Size())
	return r
}

// barData is a snapshot of what the renderer needs, taken under the lock.
// The slices are shared with the chart, which replaces rather than mutates them.
type barData struct {
	labels      []string
	series      []string
	values      [][]float64
	placeholder string
}

func (b *BarChart) barData() barData {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return barData{labels: b.labels, series: b.series, values: b.values, placeholder: b.placeholder}
}

// shareTicks returns the top of a share axis that starts at 0 and the
// spacing of its ticks. The top leaves yHeadroom above maxV (a maxV that is
// not positive gives an axis up to 100%); the spacing is the smallest 1, 2 or
// 5 times a power of ten that puts at most maxIntervals+1 ticks on the axis,
// the first at 0.
func shareTicks(maxV float64, maxIntervals int) (top, step float64) {
	if !(maxV > 0) || !isFinite(maxV) {
		maxV = 1 / (1 + yHeadroom)
	}
	maxIntervals = max(maxIntervals, 1)
	top = maxV * (1 + yHeadroom)
	step = niceNum(top/float64(maxIntervals+1), false)
	for k := 0; k < 4 && math.Floor(top/step+1e-9) > float64(maxIntervals); k++ {
		step = niceNum(step*1.01, false) // the next nice number up
	}
	return top, step
}

// formatPercent writes a share as percent with just enough decimals for the
// tick spacing step (also a share): 0.15 with step 0.05 is "15%".
func formatPercent(v, step float64) string {
	return formatTick(v*100, step*100, 0) + "%"
}

type barChartRenderer struct {
	chart *BarChart

	axis         *canvas.Line
	empty        *canvas.Text
	grid         []*canvas.Line
	bars         []*canvas.Rectangle
	swatches     []*canvas.Rectangle
	legendLabels []*canvas.Text
	tickLabels   []*canvas.Text
	groupLabels  []*canvas.Text

	objects []fyne.CanvasObject
}

func (r *barChartRenderer) Destroy() {}

func (r *barChartRenderer) Objects() []fyne.CanvasObject {
	return r.objects
}

func (r *barChartRenderer) MinSize() fyne.Size {
	return fyne.NewSize(barChartMinWidth, barChartMinHeight)
}

func (r *barChartRenderer) Layout(size fyne.Size) {
	r.build(size)
}

func (r *barChartRenderer) Refresh() {
	r.build(r.chart.Size())
	for _, o := range r.objects {
		o.Refresh()
	}
	canvas.Refresh(r.chart)
}

func rect(pool *[]*canvas.Rectangle, i int) *canvas.Rectangle {
	for len(*pool) <= i {
		*pool = append(*pool, canvas.NewRectangle(color.Transparent))
	}
	o := (*pool)[i]
	o.Show()
	return o
}

// build recomputes the geometry and styling of every canvas object for the given size.
func (r *barChartRenderer) build(size fyne.Size) {
	data := r.chart.barData()
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

	maxV := math.Inf(-1)
	for _, row := range data.values {
		for _, x := range row {
			if isFinite(x) {
				maxV = math.Max(maxV, x)
			}
		}
	}
	hasData := len(data.labels) > 0 && !math.IsInf(maxV, -1)

	nSwatch, nLegend, nGrid, nBar, nTick, nGroup := 0, 0, 0, 0, 0, 0
	if hasData {
		// Legend: centred rows of swatch + name for the named series.
		type item struct {
			series int
			width  float32
		}
		var items []item
		for s, name := range data.series {
			if name != "" {
				items = append(items, item{s, legendSwatch + pad + fyne.MeasureText(name, capSize, fyne.TextStyle{}).Width})
			}
		}
		var rows [][]item
		avail := size.Width - 2*pad
		var rowW float32
		for _, it := range items {
			if len(rows) == 0 || rowW+3*pad+it.width > avail {
				rows = append(rows, nil)
				rowW = -3 * pad
			}
			rows[len(rows)-1] = append(rows[len(rows)-1], it)
			rowW += 3*pad + it.width
		}
		top := pad + lineH/2
		if len(rows) > 0 {
			top = 2*pad + float32(len(rows))*lineH + float32(len(rows)-1)*pad/2 + lineH/2
		}
		for ri, row := range rows {
			var w float32
			for k, it := range row {
				if k > 0 {
					w += 3 * pad
				}
				w += it.width
			}
			x := (size.Width - w) / 2
			y := pad + float32(ri)*(lineH+pad/2)
			for _, it := range row {
				sw := rect(&r.swatches, nSwatch)
				nSwatch++
				sw.FillColor = SeriesColor(it.series)
				sw.Move(fyne.NewPos(x, y+(lineH-legendSwatch)/2))
				sw.Resize(fyne.NewSquareSize(legendSwatch))
				t := text(&r.legendLabels, nLegend)
				nLegend++
				t.Text, t.TextSize, t.Color, t.Alignment = data.series[it.series], capSize, fg, fyne.TextAlignLeading
				t.Move(fyne.NewPos(x+legendSwatch+pad, y))
				t.Resize(fyne.MeasureText(t.Text, capSize, t.TextStyle))
				x += it.width + 3*pad
			}
		}

		// Y axis: 0 to a rounded maximum, labelled in percent.
		bottom := size.Height - (pad + lineH + tickLen/2)
		if bottom < top+1 {
			bottom = top + 1
		}
		plotH := bottom - top
		yTop, yStep := shareTicks(maxV, clampInt(int(plotH/(lineH*1.5)), 1, maxYIntervals))
		ticks := tickValues(0, math.Floor(yTop/yStep+1e-9)*yStep, yStep)
		var labelW float32
		for _, yv := range ticks {
			labelW = fyne.Max(labelW, fyne.MeasureText(formatPercent(yv, yStep), capSize, fyne.TextStyle{}).Width)
		}
		left := pad + labelW + tickLen
		right := size.Width - pad
		if right < left+1 {
			right = left + 1
		}
		mapY := func(y float64) float32 { return bottom - float32(y/yTop)*plotH }
		for _, yv := range ticks {
			py := mapY(yv)
			if yv > 0 {
				g := line(&r.grid, nGrid)
				nGrid++
				g.StrokeColor, g.StrokeWidth = gridColor, 1
				g.Position1, g.Position2 = fyne.NewPos(left, py), fyne.NewPos(right, py)
			}
			tk := line(&r.grid, nGrid)
			nGrid++
			tk.StrokeColor, tk.StrokeWidth = axisColor, 1
			tk.Position1, tk.Position2 = fyne.NewPos(left-tickLen, py), fyne.NewPos(left, py)

			t := text(&r.tickLabels, nTick)
			nTick++
			t.Text = formatPercent(yv, yStep)
			t.TextSize, t.Color, t.Alignment = capSize, fg, fyne.TextAlignTrailing
			t.Move(fyne.NewPos(0, py-lineH/2))
			t.Resize(fyne.NewSize(left-tickLen-pad/2, lineH))
		}
		r.axis.StrokeColor, r.axis.StrokeWidth = axisColor, 1
		r.axis.Position1, r.axis.Position2 = fyne.NewPos(left, bottom), fyne.NewPos(right, bottom)
		r.axis.Show()

		// Bars, one group per label.
		nGroups := len(data.labels)
		nSeries := max(len(data.values), 1)
		slot := (right - left) / float32(nGroups)
		inner := slot * barGroupFill
		bw := inner / float32(nSeries)
		gap := float32(0)
		if nSeries > 1 && bw > 4*barGap {
			gap = barGap
		}
		for s, row := range data.values {
			col := SeriesColor(s)
			for i, x := range row {
				if !isFinite(x) || x <= 0 {
					continue
				}
				h := float32(x/yTop) * plotH
				if h < 1 {
					h = 1
				}
				bar := rect(&r.bars, nBar)
				nBar++
				bar.FillColor = col
				bx := left + float32(i)*slot + (slot-inner)/2 + float32(s)*bw
				bar.Move(fyne.NewPos(bx+gap/2, bottom-h))
				bar.Resize(fyne.NewSize(bw-gap, h))
			}
		}

		// Group labels under the bars, thinned out when they do not fit.
		var widest float32
		for _, l := range data.labels {
			widest = fyne.Max(widest, fyne.MeasureText(l, capSize, fyne.TextStyle{}).Width)
		}
		every := 1
		if slot > 0 {
			every = max(1, int(math.Ceil(float64((widest+pad)/slot))))
		}
		for i := 0; i < nGroups; i += every {
			t := text(&r.groupLabels, nGroup)
			nGroup++
			t.Text, t.TextSize, t.Color, t.Alignment = data.labels[i], capSize, fg, fyne.TextAlignCenter
			// Centred under the group, but kept inside the widget.
			tw := fyne.MeasureText(t.Text, capSize, t.TextStyle).Width
			x := left + (float32(i)+0.5)*slot - tw/2
			x = fyne.Max(0, fyne.Min(x, size.Width-tw))
			t.Move(fyne.NewPos(x, bottom+tickLen/2))
			t.Resize(fyne.NewSize(tw, lineH))
		}
	} else {
		r.axis.Hide()
	}
	r.swatches = trimPool(r.swatches, nSwatch)
	r.legendLabels = trimPool(r.legendLabels, nLegend)
	r.grid = trimPool(r.grid, nGrid)
	r.bars = trimPool(r.bars, nBar)
	r.tickLabels = trimPool(r.tickLabels, nTick)
	r.groupLabels = trimPool(r.groupLabels, nGroup)

	// Placeholder, centred in the widget.
	r.empty.Text = data.placeholder
	r.empty.TextSize = textSize
	r.empty.Color = th.Color(theme.ColorNamePlaceHolder, v)
	es := fyne.MeasureText(r.empty.Text, textSize, r.empty.TextStyle)
	r.empty.Move(fyne.NewPos(0, (size.Height-es.Height)/2))
	r.empty.Resize(fyne.NewSize(size.Width, es.Height))
	r.empty.Hidden = hasData

	// Collect objects back to front: grid, bars, axis, legend, labels, placeholder.
	objs := make([]fyne.CanvasObject, 0, nGrid+nBar+nSwatch+nLegend+nTick+nGroup+2)
	for _, g := range r.grid {
		objs = append(objs, g)
	}
	for _, b := range r.bars {
		objs = append(objs, b)
	}
	objs = append(objs, r.axis)
	for _, s := range r.swatches {
		objs = append(objs, s)
	}
	for _, t := range r.legendLabels {
		objs = append(objs, t)
	}
	for _, t := range r.tickLabels {
		objs = append(objs, t)
	}
	for _, t := range r.groupLabels {
		objs = append(objs, t)
	}
	objs = append(objs, r.empty)
	r.objects = objs
}
