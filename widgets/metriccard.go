package widgets

import (
	"image/color"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// MetricMissing is what FormatMetric returns for NaN and what a MetricCard
// shows while it has no value.
const MetricMissing = "—"

// DefaultReferenceLabel is the text a MetricCard puts before its reference
// value ("real data: 9.87").
const DefaultReferenceLabel = "real data"

// metricDigits is the number of significant digits FormatMetric keeps.
const metricDigits = 4

// metricCardMinWidth is the narrowest a MetricCard gets; its help and
// caption lines wrap to the card's width.
const metricCardMinWidth = 180

var _ fyne.Widget = (*MetricCard)(nil)

// FormatMetric formats a metric value for display: integers are written as
// integers ("10", "-3", "60000"), other values with 4 significant digits and
// no trailing zeros ("12.35", "0.5", "0.00123"). Non-integers of 10⁴ and more
// are rounded to whole numbers, magnitudes below 10⁻⁴ or from 10¹⁵ on use an
// exponent ("1.235e-05"). NaN is MetricMissing ("—") and ±Inf is "∞" or "-∞".
func FormatMetric(v float64) string {
	switch {
	case math.IsNaN(v):
		return MetricMissing
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	case v == 0:
		return "0" // also -0
	}
	av := math.Abs(v)
	if av >= 1e15 || av < 1e-4 {
		return strconv.FormatFloat(v, 'g', metricDigits, 64)
	}
	if v == math.Trunc(v) || av >= 1e4 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	decimals := metricDigits - 1 - int(math.Floor(math.Log10(av)))
	if decimals < 0 {
		decimals = 0
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// MetricCard shows one evaluation metric as a small card: a title ("FID"),
// the value in large bold type with an optional "± std", an optional
// reference value beside it ("real data: 1.23", placed below the value when
// the card is too narrow), a one-line explanation and a caption for the
// conditions of the measurement ("N = 10,000 · evaluator mnist-lenet").
// The explanation and caption wrap to the card's width. Update it from the
// UI goroutine (fyne.Do); a mutex keeps its state consistent for readers such
// as Text.
type MetricCard struct {
	widget.BaseWidget

	mu       sync.RWMutex
	title    string
	help     string
	caption  string
	value    float64
	std      float64
	ref      float64
	refLabel string
}

// NewMetricCard creates a MetricCard with the given title and explanation
// that shows MetricMissing until a value is set.
func NewMetricCard(title, help string) *MetricCard {
	c := &MetricCard{
		title:    title,
		help:     help,
		value:    math.NaN(),
		std:      math.NaN(),
		ref:      math.NaN(),
		refLabel: DefaultReferenceLabel,
	}
	c.ExtendBaseWidget(c)
	return c
}

// SetValue shows v without a standard deviation and refreshes the card.
// NaN shows MetricMissing.
func (c *MetricCard) SetValue(v float64) {
	c.SetValueStd(v, math.NaN())
}

// SetValueStd shows "v ± std" (for example a mean over seeds or subsets) and
// refreshes the card. The sign of std is ignored; a NaN or infinite std is
// not shown, and nor is any std while v is NaN.
func (c *MetricCard) SetValueStd(v, std float64) {
	c.mu.Lock()
	c.value, c.std = v, std
	c.mu.Unlock()
	c.Refresh()
}

// Value returns the value and standard deviation last set (NaN when unset).
func (c *MetricCard) Value() (v, std float64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.value, c.std
}

// SetReference shows a reference value beside the metric, such as the score
// of real data under the same evaluator, and refreshes the card. NaN hides it.
func (c *MetricCard) SetReference(v float64) {
	c.mu.Lock()
	c.ref = v
	c.mu.Unlock()
	c.Refresh()
}

// SetReferenceLabel sets the text written before the reference value
// (DefaultReferenceLabel unless changed) and refreshes the card.
func (c *MetricCard) SetReferenceLabel(label string) {
	c.mu.Lock()
	c.refLabel = label
	c.mu.Unlock()
	c.Refresh()
}

// SetCaption sets the small line under the explanation, typically the sample
// count and evaluator the value was measured with, and refreshes the card.
// An empty caption takes no space.
func (c *MetricCard) SetCaption(s string) {
	c.mu.Lock()
	c.caption = s
	c.mu.Unlock()
	c.Refresh()
}

// Caption returns the caption set by SetCaption.
func (c *MetricCard) Caption() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.caption
}

// Title returns the card's title.
func (c *MetricCard) Title() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.title
}

// Help returns the card's one-line explanation.
func (c *MetricCard) Help() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.help
}

// Clear removes the value, standard deviation, reference and caption, so the
// card shows MetricMissing again, and refreshes it. Title, explanation and
// reference label stay.
func (c *MetricCard) Clear() {
	c.mu.Lock()
	c.value, c.std, c.ref = math.NaN(), math.NaN(), math.NaN()
	c.caption = ""
	c.mu.Unlock()
	c.Refresh()
}

// Text returns the value text and the reference text as the card shows them,
// for example "12.35 ± 0.4321" and "real data: 1.234". The reference is ""
// while it is hidden.
func (c *MetricCard) Text() (value, reference string) {
	s := c.snapshot()
	return s.valueText, s.refText
}

// MinSize returns the size that this widget should not shrink below.
func (c *MetricCard) MinSize() fyne.Size {
	c.ExtendBaseWidget(c)
	return c.BaseWidget.MinSize()
}

// CreateRenderer is a private method to Fyne which links this widget to its renderer.
func (c *MetricCard) CreateRenderer() fyne.WidgetRenderer {
	c.ExtendBaseWidget(c)
	r := &metricCardRenderer{card: c}
	r.bg = canvas.NewRectangle(color.Transparent)
	r.title = canvas.NewText("", color.Transparent)
	r.title.TextStyle = fyne.TextStyle{Bold: true}
	r.value = canvas.NewText("", color.Transparent)
	r.value.TextStyle = fyne.TextStyle{Bold: true}
	r.ref = canvas.NewText("", color.Transparent)
	r.update()
	return r
}

// metricCardState is the text a MetricCard shows, taken under the lock.
type metricCardState struct {
	title, help, caption string
	valueText, refText   string
}

func (c *MetricCard) snapshot() metricCardState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := metricCardState{title: c.title, help: c.help, caption: c.caption}
	s.valueText = FormatMetric(c.value)
	if !math.IsNaN(c.value) && isFinite(c.std) {
		s.valueText += " ± " + FormatMetric(math.Abs(c.std))
	}
	if !math.IsNaN(c.ref) {
		s.refText = FormatMetric(c.ref)
		if c.refLabel != "" {
			s.refText = c.refLabel + ": " + s.refText
		}
	}
	return s
}

type metricCardRenderer struct {
	card *MetricCard

	bg                *canvas.Rectangle
	title, value, ref *canvas.Text
	help, caption     []*canvas.Text // one per wrapped line
	state             metricCardState
	objects           []fyne.CanvasObject
}

func (r *metricCardRenderer) Destroy() {}

func (r *metricCardRenderer) Objects() []fyne.CanvasObject {
	return r.objects
}

func (r *metricCardRenderer) MinSize() fyne.Size {
	w := r.arrange(r.card.Size().Width, false)
	return fyne.NewSize(w.Width, w.Height)
}

func (r *metricCardRenderer) Layout(size fyne.Size) {
	r.bg.Move(fyne.NewPos(0, 0))
	r.bg.Resize(size)
	r.arrange(size.Width, true)
	r.collect()
}

func (r *metricCardRenderer) Refresh() {
	r.update()
	r.Layout(r.card.Size())
	for _, o := range r.objects {
		o.Refresh()
	}
	canvas.Refresh(r.card)
}

// update copies widget state and theme values into the fixed canvas objects.
func (r *metricCardRenderer) update() {
	r.state = r.card.snapshot()
	th := r.card.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()

	r.bg.FillColor = th.Color(theme.ColorNameInputBackground, v)
	r.bg.CornerRadius = th.Size(theme.SizeNameInputRadius)

	fg := th.Color(theme.ColorNameForeground, v)
	muted := th.Color(theme.ColorNamePlaceHolder, v)
	r.title.Text, r.title.Color, r.title.TextSize = r.state.title, fg, th.Size(theme.SizeNameText)
	r.value.Text, r.value.Color, r.value.TextSize = r.state.valueText, fg, th.Size(theme.SizeNameHeadingText)
	r.ref.Text, r.ref.Color, r.ref.TextSize = r.state.refText, muted, th.Size(theme.SizeNameText)
	r.ref.Hidden = r.state.refText == ""
}

// arrange computes the card's layout for the given width (at least the
// minimum width) and returns the size it needs. When apply is set it also
// places the canvas objects and fills the wrapped help and caption lines.
func (r *metricCardRenderer) arrange(width float32, apply bool) fyne.Size {
	th := r.card.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	inner := th.Size(theme.SizeNameInnerPadding)
	pad := th.Size(theme.SizeNamePadding)
	capSize := th.Size(theme.SizeNameCaptionText)

	titleSize := fyne.MeasureText(r.title.Text, r.title.TextSize, r.title.TextStyle)
	valueSize, valueBase := renderedText(r.value)
	refSize, refBase := renderedText(r.ref)
	if r.ref.Hidden {
		refSize, refBase = fyne.Size{}, 0
	}

	minW := fyne.Max(titleSize.Width, fyne.Max(valueSize.Width, refSize.Width)) + 2*inner
	minW = fyne.Max(minW, metricCardMinWidth)
	if width < minW {
		width = minW
	}
	content := width - 2*inner

	y := inner
	if r.title.Text != "" {
		if apply {
			r.title.Move(fyne.NewPos(inner, y))
			r.title.Resize(titleSize)
		}
		y += titleSize.Height
	}

	// Value row: the reference sits on the value's baseline to its right, or
	// on its own line below when both do not fit.
	beside := refSize.Width == 0 || valueSize.Width+2*pad+refSize.Width <= content
	rowH := valueSize.Height
	if beside && refSize.Height > 0 {
		rowH = fyne.Max(valueBase, refBase) + fyne.Max(valueSize.Height-valueBase, refSize.Height-refBase)
	}
	if apply {
		base := y + fyne.Max(valueBase, refBase)
		r.value.Move(fyne.NewPos(inner, base-valueBase))
		r.value.Resize(valueSize)
		if beside {
			r.ref.Move(fyne.NewPos(inner+valueSize.Width+2*pad, base-refBase))
		} else {
			r.ref.Move(fyne.NewPos(inner, y+valueSize.Height))
		}
		r.ref.Resize(refSize)
	}
	y += rowH
	if !beside {
		y += refSize.Height
	}

	fg := th.Color(theme.ColorNameForeground, v)
	muted := th.Color(theme.ColorNamePlaceHolder, v)
	helpLines := wrapText(r.state.help, content, capSize, fyne.TextStyle{})
	captionLines := wrapText(r.state.caption, content, capSize, fyne.TextStyle{})
	lineH := fyne.MeasureText("0", capSize, fyne.TextStyle{}).Height
	if len(helpLines)+len(captionLines) > 0 {
		y += pad
	}
	place := func(pool *[]*canvas.Text, lines []string, col color.Color) {
		if apply {
			for i, l := range lines {
				t := text(pool, i)
				t.Text, t.TextSize, t.Color = l, capSize, col
				t.Move(fyne.NewPos(inner, y+float32(i)*lineH))
				t.Resize(fyne.NewSize(content, lineH))
			}
			*pool = trimPool(*pool, len(lines))
		}
		y += float32(len(lines)) * lineH
	}
	place(&r.help, helpLines, fg)
	place(&r.caption, captionLines, muted)
	y += inner
	return fyne.NewSize(width, y)
}

// collect lists the canvas objects back to front.
func (r *metricCardRenderer) collect() {
	objs := make([]fyne.CanvasObject, 0, 4+len(r.help)+len(r.caption))
	objs = append(objs, r.bg, r.title, r.value, r.ref)
	for _, t := range r.help {
		objs = append(objs, t)
	}
	for _, t := range r.caption {
		objs = append(objs, t)
	}
	r.objects = objs
}

// renderedText returns the size of t's text and the distance from its top to
// its baseline. Empty text measures zero.
func renderedText(t *canvas.Text) (fyne.Size, float32) {
	if t.Text == "" {
		return fyne.Size{}, 0
	}
	return fyne.CurrentApp().Driver().RenderedTextSize(t.Text, t.TextSize, t.TextStyle, nil)
}

// wrapText breaks s into lines no wider than width at the given text size,
// between words where it can and inside a word only when the word alone is
// too wide. Newlines in s start new lines; empty input gives no lines.
func wrapText(s string, width, size float32, style fyne.TextStyle) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	fits := func(t string) bool { return fyne.MeasureText(t, size, style).Width <= width }
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		cur := ""
		for _, word := range strings.Fields(para) {
			if cur != "" && fits(cur+" "+word) {
				cur += " " + word
				continue
			}
			if cur != "" {
				lines = append(lines, cur)
			}
			cur = word
			for !fits(cur) && utf8.RuneCountInString(cur) > 1 {
				head := splitToFit(cur, fits)
				lines = append(lines, head)
				cur = cur[len(head):]
			}
		}
		lines = append(lines, cur)
	}
	return lines
}

// splitToFit returns the longest prefix of word (at least one rune) that fits.
func splitToFit(word string, fits func(string) bool) string {
	end := 0
	for i, rn := range word {
		next := i + utf8.RuneLen(rn)
		if end > 0 && !fits(word[:next]) {
			break
		}
		end = next
	}
	return word[:end]
}
