package widgets

import (
	"math"
	"reflect"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
)

var digitLabels = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// sampleBarChart returns the class histogram of a half-collapsed MNIST
// generator beside that of the real test set.
func sampleBarChart() *BarChart {
	b := NewBarChart()
	b.SetData(digitLabels, []string{"samples", "real data"}, [][]float64{
		{0.021, 0.412, 0.006, 0.097, 0.149, 0, 0.052, 0.183, 0.003, 0.077},
		{0.098, 0.1135, 0.1032, 0.101, 0.0982, 0.0892, 0.0958, 0.1028, 0.0974, 0.1009},
	})
	return b
}

func barRenderer(t *testing.T, b *BarChart) *barChartRenderer {
	t.Helper()
	r, ok := test.WidgetRenderer(b).(*barChartRenderer)
	if !ok {
		t.Fatalf("renderer is %T, want *barChartRenderer", test.WidgetRenderer(b))
	}
	return r
}

func texts(pool []*canvas.Text) []string {
	out := make([]string, 0, len(pool))
	for _, t := range pool {
		out = append(out, t.Text)
	}
	return out
}

func TestBarChart_TwoSeries(t *testing.T) {
	test.NewTempApp(t)

	b := sampleBarChart()
	w := test.NewTempWindow(t, b)
	w.Resize(fyne.NewSize(420, 240))
	test.AssertRendersToImage(t, "barchart_two_series.png", w.Canvas())

	r := barRenderer(t, b)
	if r.empty.Visible() {
		t.Error("placeholder should be hidden when there is data")
	}
	if got := len(r.bars); got != 19 { // class 5 has no samples
		t.Errorf("drew %d bars, want 19", got)
	}
	if got, want := texts(r.legendLabels), []string{"samples", "real data"}; !reflect.DeepEqual(got, want) {
		t.Errorf("legend = %v, want %v", got, want)
	}
	if got, want := texts(r.groupLabels), digitLabels; !reflect.DeepEqual(got, want) {
		t.Errorf("group labels = %v, want %v", got, want)
	}
	// Max share 0.412 with at most 3 intervals: 0, 20 and 40 percent.
	if got, want := texts(r.tickLabels), []string{"0%", "20%", "40%"}; !reflect.DeepEqual(got, want) {
		t.Errorf("y ticks = %v, want %v", got, want)
	}
	for i, sw := range r.swatches {
		if sw.FillColor != SeriesColor(i) {
			t.Errorf("swatch %d colour %v, want %v", i, sw.FillColor, SeriesColor(i))
		}
	}
	// The bars of class 1 (samples 41.2%, real 11.35%) stand side by side in series colours.
	s1, r1 := r.bars[1], r.bars[9+1]
	if s1.FillColor != SeriesColor(0) || r1.FillColor != SeriesColor(1) {
		t.Errorf("bar colours %v, %v", s1.FillColor, r1.FillColor)
	}
	if s1.Position().X >= r1.Position().X || s1.Position().X+s1.Size().Width > r1.Position().X+0.01 {
		t.Errorf("bars of one class overlap or are out of order: %v+%v, %v", s1.Position(), s1.Size(), r1.Position())
	}
	if ratio := s1.Size().Height / r1.Size().Height; math.Abs(float64(ratio)-0.412/0.1135) > 0.01 {
		t.Errorf("bar heights ratio %v, want %v", ratio, 0.412/0.1135)
	}
	if base1, base2 := s1.Position().Y+s1.Size().Height, r1.Position().Y+r1.Size().Height; math.Abs(float64(base1-base2)) > 0.01 {
		t.Errorf("bars should share a baseline: %v vs %v", base1, base2)
	}
}

func TestBarChart_Empty(t *testing.T) {
	test.NewTempApp(t)

	b := NewBarChart()
	w := test.NewTempWindow(t, b)
	w.Resize(fyne.NewSize(268, 168))
	test.AssertRendersToMarkup(t, "barchart_empty.xml", w.Canvas())

	r := barRenderer(t, b)
	if !r.empty.Visible() || r.empty.Text != DefaultBarChartPlaceholder {
		t.Errorf("placeholder visible=%v text=%q", r.empty.Visible(), r.empty.Text)
	}

	b.SetData(digitLabels, []string{"samples"}, [][]float64{{0.1, 0.2}})
	if r.empty.Visible() || len(r.bars) != 2 {
		t.Errorf("with data: placeholder visible=%v, %d bars", r.empty.Visible(), len(r.bars))
	}
	b.Clear()
	if !r.empty.Visible() || len(r.bars) != 0 || len(r.legendLabels) != 0 || r.axis.Visible() {
		t.Error("Clear should remove bars, legend and axis and show the placeholder again")
	}
	b.SetPlaceholder("Run an evaluation to see classes")
	if r.empty.Text != "Run an evaluation to see classes" || b.Placeholder() != r.empty.Text {
		t.Errorf("placeholder = %q", r.empty.Text)
	}

	// Labels without any finite value are no data.
	b.SetData(digitLabels, []string{"samples"}, [][]float64{{math.NaN()}})
	if !r.empty.Visible() {
		t.Error("only NaN values should still show the placeholder")
	}
}

func TestBarChart_MismatchedLengths(t *testing.T) {
	tests := []struct {
		name       string
		labels     []string
		series     []string
		values     [][]float64
		bars       int
		legend     []string
		names      []string
		hasData    bool
		groupTexts int
	}{
		{"no labels", nil, []string{"a"}, [][]float64{{0.5}}, 0, nil, []string{"a"}, false, 0},
		{"no values", digitLabels, []string{"a"}, nil, 0, nil, []string{}, false, 0},
		{"extra values ignored", []string{"x", "y"}, []string{"a"}, [][]float64{{0.2, 0.3, 0.5}}, 2, []string{"a"}, []string{"a"}, true, 2},
		{"missing values draw no bar", []string{"x", "y", "z"}, []string{"a"}, [][]float64{{0.2}}, 1, []string{"a"}, []string{"a"}, true, 3},
		{"extra names ignored", []string{"x"}, []string{"a", "b", "c"}, [][]float64{{0.2}}, 1, []string{"a"}, []string{"a"}, true, 1},
		{"unnamed series drawn without legend", []string{"x"}, nil, [][]float64{{0.2}, {0.4}}, 2, nil, []string{"", ""}, true, 1},
		{"bad values skipped", []string{"x", "y", "z", "w"}, []string{"a"}, [][]float64{{math.NaN(), math.Inf(1), -0.1, 0.3}}, 1, []string{"a"}, []string{"a"}, true, 4},
		{"all zero", []string{"x", "y"}, []string{"a"}, [][]float64{{0, 0}}, 0, []string{"a"}, []string{"a"}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			test.NewTempApp(t)
			b := NewBarChart()
			w := test.NewTempWindow(t, b)
			w.Resize(fyne.NewSize(300, 200))
			b.SetData(tt.labels, tt.series, tt.values)

			r := barRenderer(t, b)
			if len(r.bars) != tt.bars {
				t.Errorf("bars = %d, want %d", len(r.bars), tt.bars)
			}
			if got := texts(r.legendLabels); len(got)+len(tt.legend) > 0 && !reflect.DeepEqual(got, tt.legend) {
				t.Errorf("legend = %v, want %v", got, tt.legend)
			}
			if got := b.SeriesNames(); len(got)+len(tt.names) > 0 && !reflect.DeepEqual(got, tt.names) {
				t.Errorf("SeriesNames = %v, want %v", got, tt.names)
			}
			if r.empty.Visible() == tt.hasData {
				t.Errorf("placeholder visible = %v with hasData %v", r.empty.Visible(), tt.hasData)
			}
			if len(r.groupLabels) != tt.groupTexts {
				t.Errorf("group labels = %d, want %d", len(r.groupLabels), tt.groupTexts)
			}
			size := b.Size()
			for _, bar := range r.bars {
				p, s := bar.Position(), bar.Size()
				if s.Height < 0 || s.Width <= 0 || p.X < 0 || p.Y < 0 || p.X+s.Width > size.Width || p.Y+s.Height > size.Height {
					t.Errorf("bar at %v size %v outside the chart %v", p, s, size)
				}
			}
		})
	}
}

func TestBarChart_SetDataCopies(t *testing.T) {
	test.NewTempApp(t)

	labels := []string{"x", "y"}
	row := []float64{0.25, 0.75}
	b := NewBarChart()
	b.SetData(labels, []string{"a"}, [][]float64{row})
	labels[0], row[0] = "changed", 9
	if got := b.Labels(); got[0] != "x" {
		t.Errorf("Labels = %v, want the chart's own copy", got)
	}
	if b.values[0][0] != 0.25 {
		t.Errorf("values changed with the caller's slice: %v", b.values)
	}
}

func TestBarChart_ThinsWideLabels(t *testing.T) {
	test.NewTempApp(t)

	names := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	b := NewBarChart()
	b.SetData(names, []string{"samples"}, [][]float64{{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}})
	w := test.NewTempWindow(t, b)
	w.Resize(fyne.NewSize(300, 200))

	r := barRenderer(t, b)
	n := len(r.groupLabels)
	if n == 0 || n >= len(names) {
		t.Fatalf("%d of %d labels written, want some thinned out", n, len(names))
	}
	for i := 1; i < n; i++ {
		a, c := r.groupLabels[i-1], r.groupLabels[i]
		aEnd := a.Position().X + (a.Size().Width+fyne.MeasureText(a.Text, a.TextSize, a.TextStyle).Width)/2
		cStart := c.Position().X + (c.Size().Width-fyne.MeasureText(c.Text, c.TextSize, c.TextStyle).Width)/2
		if aEnd > cStart {
			t.Errorf("labels %q and %q overlap: %v > %v", a.Text, c.Text, aEnd, cStart)
		}
	}

	w.Resize(fyne.NewSize(900, 200))
	if got := len(r.groupLabels); got != len(names) {
		t.Errorf("wide chart writes %d labels, want all %d", got, len(names))
	}
}

func TestShareTicks(t *testing.T) {
	tests := []struct {
		name      string
		maxV      float64
		intervals int
		top, step float64
	}{
		{"uniform ten classes", 0.1135, 3, 0.1135 * 1.05, 0.05},
		{"collapsed", 0.412, 3, 0.412 * 1.05, 0.2},
		{"four ticks", 0.31, 3, 0.31 * 1.05, 0.1},
		{"one class", 1, 3, 1.05, 0.5},
		{"short plot", 0.1135, 1, 0.1135 * 1.05, 0.1},
		{"small shares", 0.0042, 3, 0.0042 * 1.05, 0.002},
		{"zero", 0, 3, 1, 0.5},
		{"NaN", math.NaN(), 3, 1, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, step := shareTicks(tt.maxV, tt.intervals)
			if !near(top, tt.top) || !near(step, tt.step) {
				t.Errorf("shareTicks(%v, %d) = %v, %v; want %v, %v", tt.maxV, tt.intervals, top, step, tt.top, tt.step)
			}
			if n := math.Floor(top/step + 1e-9); n > float64(tt.intervals) || n < 1 {
				t.Errorf("%v intervals, want 1 to %d", n, tt.intervals)
			}
		})
	}
}

func TestFormatPercent(t *testing.T) {
	tests := []struct {
		v, step float64
		want    string
	}{
		{0, 0.05, "0%"},
		{0.15, 0.05, "15%"},
		{0.6, 0.2, "60%"},
		{1, 0.5, "100%"},
		{0.004, 0.002, "0.4%"},
		{0.05 * 3, 0.05, "15%"},
	}
	for _, tt := range tests {
		if got := formatPercent(tt.v, tt.step); got != tt.want {
			t.Errorf("formatPercent(%v, %v) = %q, want %q", tt.v, tt.step, got, tt.want)
		}
	}
}

func TestBarChart_MinSize(t *testing.T) {
	test.NewTempApp(t)

	min := NewBarChart().MinSize()
	if min.Width < 260 || min.Height < 160 {
		t.Errorf("MinSize = %v, want at least 260x160", min)
	}
}
