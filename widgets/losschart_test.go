package widgets

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// decayingLosses returns deterministic GAN-like loss curves for step s.
func decayingLosses(s int) map[string]float64 {
	x := float64(s)
	return map[string]float64{
		"D loss": 0.65 + 0.75*math.Exp(-x/35) + 0.05*math.Sin(x/6),
		"G loss": 0.9 + 1.9*math.Exp(-x/60) + 0.08*math.Sin(x/9+1),
	}
}

func chartRenderer(t *testing.T, c *LossChart) *lossChartRenderer {
	t.Helper()
	r, ok := test.WidgetRenderer(c).(*lossChartRenderer)
	if !ok {
		t.Fatalf("renderer is %T, want *lossChartRenderer", test.WidgetRenderer(c))
	}
	return r
}

func tickTexts(r *lossChartRenderer) []string {
	out := make([]string, 0, len(r.tickLabels))
	for _, l := range r.tickLabels {
		out = append(out, l.Text)
	}
	return out
}

func TestLossChart_TwoSeries(t *testing.T) {
	test.NewTempApp(t)

	c := NewLossChart()
	for s := 0; s < 200; s++ {
		c.Add(s, decayingLosses(s))
	}
	w := test.NewTempWindow(t, c)
	w.Resize(fyne.NewSize(480, 300))

	test.AssertRendersToImage(t, "losschart_two_series.png", w.Canvas())

	if got, want := c.SeriesNames(), []string{"D loss", "G loss"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SeriesNames = %v, want %v", got, want)
	}
	r := chartRenderer(t, c)
	for i := range 2 {
		if n := r.segmentCount(i); n != 199 {
			t.Errorf("series %d draws %d segments, want 199", i, n)
		}
	}
	if r.empty.Visible() {
		t.Error("placeholder should be hidden when there is data")
	}
}

func TestLossChart_Empty(t *testing.T) {
	test.NewTempApp(t)

	c := NewLossChart()
	w := test.NewTempWindow(t, c)
	w.Resize(fyne.NewSize(340, 220))

	test.AssertRendersToImage(t, "losschart_empty.png", w.Canvas())

	r := chartRenderer(t, c)
	if !r.empty.Visible() || r.empty.Text != DefaultLossChartPlaceholder {
		t.Errorf("placeholder visible=%v text=%q", r.empty.Visible(), r.empty.Text)
	}
	if !r.xAxis.Visible() || !r.yAxis.Visible() {
		t.Error("axes should be drawn on an empty chart")
	}

	c.Add(0, map[string]float64{"loss": 1})
	c.Add(10, map[string]float64{"loss": 0.5})
	if r.empty.Visible() {
		t.Error("placeholder should hide once data arrives")
	}
	c.Clear()
	if !r.empty.Visible() || len(c.SeriesNames()) != 0 || r.segmentCount(0) != 0 {
		t.Error("Clear should remove all series and show the placeholder again")
	}
}

func TestLossChart_IgnoresNonFinite(t *testing.T) {
	test.NewTempApp(t)

	c := NewLossChart()
	w := test.NewTempWindow(t, c)
	w.Resize(fyne.NewSize(400, 260))

	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	finite := 0
	for s := 0; s < 100; s++ {
		v := 1 + float64(s)/100 // 1.00 .. 1.99
		if s%10 == 5 {
			v = bad[(s/10)%len(bad)]
		} else {
			finite++
		}
		c.Add(s, map[string]float64{"loss": v, "other": 0.5})
	}
	// A series whose first value is NaN is still created (colour reserved).
	c.Add(100, map[string]float64{"late": math.NaN()})

	if got := c.Len("loss"); got != finite {
		t.Errorf("Len(loss) = %d, want %d finite points", got, finite)
	}
	if got := c.Len("late"); got != 0 {
		t.Errorf("Len(late) = %d, want 0", got)
	}
	if got, want := c.SeriesNames(), []string{"loss", "other", "late"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SeriesNames = %v, want %v", got, want)
	}

	r := chartRenderer(t, c)
	if n := r.segmentCount(0); n != finite-1 {
		t.Errorf("loss draws %d segments, want %d", n, finite-1)
	}
	if n := r.segmentCount(2); n != 0 {
		t.Errorf("late draws %d segments, want 0", n)
	}
	area := r.plot.Size()
	for i, pl := range r.polylines {
		for _, p := range pl {
			if !isFinite(float64(p.X)) || !isFinite(float64(p.Y)) ||
				p.X < 0 || p.Y < 0 || p.X > area.Width || p.Y > area.Height {
				t.Fatalf("series %d has a point %v outside the plot area %v", i, p, area)
			}
		}
	}
	test.AssertRendersToImage(t, "losschart_nonfinite.png", w.Canvas())
	labels := strings.Join(tickTexts(r), " ")
	if strings.Contains(labels, "NaN") || strings.Contains(labels, "Inf") {
		t.Errorf("tick labels mention non-finite values: %s", labels)
	}
	// The y scale must come from the finite data (0.5 .. 1.99): 0.5 to 2.0 in steps of 0.5.
	for _, want := range []string{"0.5", "1.0", "1.5", "2.0"} {
		if !strings.Contains(labels, want) {
			t.Errorf("tick labels %q lack %s", labels, want)
		}
	}
}

func TestLossChart_DownsamplesLongSeries(t *testing.T) {
	test.NewTempApp(t)

	steps := make([]int, 20000)
	vals := make([]float64, 20000)
	for i := range steps {
		steps[i] = i
		vals[i] = 1 + math.Exp(-float64(i)/3000) + 0.1*math.Sin(float64(i))
	}

	tests := []struct {
		name      string
		size      fyne.Size
		exactlyAt int // expected segment count when the cap binds, or 0
	}{
		{"wide window hits MaxDrawSegments", fyne.NewSize(1400, 500), MaxDrawSegments},
		{"narrow window uses fewer segments", fyne.NewSize(640, 360), 0},
		{"minimum size", fyne.NewSize(320, 200), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewLossChart()
			c.SetSeries("D loss", steps, vals)
			c.SetSeries("G loss", steps, vals)
			w := test.NewTempWindow(t, c)
			w.Resize(tt.size)

			r := chartRenderer(t, c)
			limit := int(r.plot.Size().Width / minSegmentPx)
			for i := range 2 {
				n := r.segmentCount(i)
				if n > MaxDrawSegments || n > limit || n < limit/2 {
					t.Errorf("series %d draws %d segments, want at most %d and %d (plot width)", i, n, MaxDrawSegments, limit)
				}
				if tt.exactlyAt > 0 && n != tt.exactlyAt {
					t.Errorf("series %d draws %d segments, want %d", i, n, tt.exactlyAt)
				}
			}
			if got := c.Len("D loss"); got != 20000 {
				t.Errorf("Len = %d, want all 20000 points kept", got)
			}
			if len(r.Objects()) > 100 {
				t.Errorf("renderer has %d objects, want a small bounded number", len(r.Objects()))
			}
			if labels := tickTexts(r); !contains(labels, "20k") {
				t.Errorf("x tick labels %v should end at 20k", labels)
			}

			// Adding more points keeps the bound.
			for s := 20000; s < 20100; s++ {
				c.Add(s, map[string]float64{"D loss": 1})
			}
			if n := r.segmentCount(0); n > MaxDrawSegments || n > limit {
				t.Errorf("after Add: %d segments, want <= %d", n, min(MaxDrawSegments, limit))
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestLossChart_SeriesOrderAndColours(t *testing.T) {
	test.NewTempApp(t)

	c := NewLossChart()
	c.Add(0, map[string]float64{"zeta": 1, "alpha": 2, "mid": 3})
	c.Add(1, map[string]float64{"beta": 1, "zeta": 2})
	c.Add(2, map[string]float64{"alpha": 1})
	want := []string{"alpha", "mid", "zeta", "beta"}
	if got := c.SeriesNames(); !reflect.DeepEqual(got, want) {
		t.Fatalf("SeriesNames = %v, want %v", got, want)
	}

	r := chartRenderer(t, c)
	seen := map[string]bool{}
	for i, name := range want {
		if r.legendLabels[i].Text != name {
			t.Errorf("legend %d = %q, want %q", i, r.legendLabels[i].Text, name)
		}
		if r.swatches[i].StrokeColor != SeriesColor(i) {
			t.Errorf("swatch %d colour = %v, want %v", i, r.swatches[i].StrokeColor, SeriesColor(i))
		}
		key := fmt.Sprint(SeriesColor(i))
		if seen[key] {
			t.Errorf("colour %s reused for series %d", key, i)
		}
		seen[key] = true
	}
	if SeriesColor(0) != SeriesColor(len(lossPalette)) {
		t.Error("palette should wrap around")
	}
}

func TestLossChart_SetSeriesAndSmoothing(t *testing.T) {
	test.NewTempApp(t)

	c := NewLossChart()
	c.SetSeries("loss", []int{0, 1, 2, 3}, []float64{1, math.NaN(), 3}) // extra step ignored, NaN skipped
	if got := c.Len("loss"); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	c.SetSeries("loss", []int{0, 1}, []float64{4, 5}) // replaces
	if got := c.Len("loss"); got != 2 {
		t.Errorf("Len after replace = %d, want 2", got)
	}

	tests := []struct {
		in, want float64
	}{
		{-1, 0}, {0, 0}, {0.6, 0.6}, {1, 0.999}, {math.NaN(), 0},
	}
	for _, tt := range tests {
		c.SetSmoothing(tt.in)
		if got := c.Smoothing(); got != tt.want {
			t.Errorf("SetSmoothing(%v): Smoothing() = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDownsample(t *testing.T) {
	seq := func(n int, f func(i int) float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	nan := math.NaN()

	tests := []struct {
		name      string
		steps     []float64
		values    []float64
		smoothing float64
		max       int
		want      []chartPoint
	}{
		{
			name:   "short series unchanged",
			steps:  []float64{0, 1, 2},
			values: []float64{3, 2, 1},
			max:    10,
			want:   []chartPoint{{0, 3}, {1, 2}, {2, 1}},
		},
		{
			name:   "non-finite skipped",
			steps:  []float64{0, 1, 2, 3},
			values: []float64{1, nan, math.Inf(1), 2},
			max:    10,
			want:   []chartPoint{{0, 1}, {3, 2}},
		},
		{
			name:   "bucket means",
			steps:  []float64{0, 1, 2, 3, 4, 5},
			values: []float64{1, 3, 5, 7, 9, 11},
			max:    3,
			want:   []chartPoint{{0.5, 2}, {2.5, 6}, {4.5, 10}},
		},
		{
			name:      "smoothing is debiased",
			steps:     []float64{0, 1},
			values:    []float64{2, 2},
			smoothing: 0.9,
			max:       10,
			want:      []chartPoint{{0, 2}, {1, 2}},
		},
		{
			name:   "large series bounded",
			steps:  seq(20000, func(i int) float64 { return float64(i) }),
			values: seq(20000, func(i int) float64 { return 1 }),
			max:    MaxDrawSegments + 1,
			want:   nil, // checked by length below
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := downsample(tt.steps, tt.values, tt.smoothing, tt.max)
			if tt.want == nil {
				if len(got) != tt.max {
					t.Fatalf("len = %d, want %d", len(got), tt.max)
				}
				if got[0].x < 0 || got[len(got)-1].x > 19999 {
					t.Errorf("bucket x range %v..%v outside data", got[0].x, got[len(got)-1].x)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i].x-tt.want[i].x) > 1e-9 || math.Abs(got[i].y-tt.want[i].y) > 1e-9 {
					t.Errorf("point %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		name            string
		lo, hi          float64
		target          int
		minStep         float64
		start, end, stp float64
	}{
		{"steps 0..199", 0, 199, 5, 1, 0, 200, 50},
		{"steps 0..1999", 0, 1999, 5, 1, 0, 2000, 500},
		{"losses 0.62..2.9", 0.62, 2.9, 5, 0, 0.5, 3, 0.5},
		{"small range", 0.101, 0.149, 5, 0, 0.1, 0.15, 0.01},
		{"single value", 1, 1, 5, 0, 0.9, 1.1, 0.05},
		{"single step", 0, 0, 5, 1, -1, 1, 1},
		{"reversed", 10, 0, 3, 0, 0, 10, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, step := niceTicks(tt.lo, tt.hi, tt.target, tt.minStep)
			if !near(start, tt.start) || !near(end, tt.end) || !near(step, tt.stp) {
				t.Errorf("niceTicks(%v, %v, %d) = %v, %v, %v; want %v, %v, %v",
					tt.lo, tt.hi, tt.target, start, end, step, tt.start, tt.end, tt.stp)
			}
		})
	}
}

func TestPaddedRange(t *testing.T) {
	tests := []struct {
		name           string
		lo, hi         float64
		wantLo, wantHi float64
	}{
		{"five percent each side", 1, 3, 0.9, 3.1},
		{"reversed", 3, 1, 0.9, 3.1},
		{"single value", 2, 2, 1.8, 2.2},
		{"zero", 0, 0, -0.5, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := paddedRange(tt.lo, tt.hi, 0.05)
			if !near(lo, tt.wantLo) || !near(hi, tt.wantHi) {
				t.Errorf("paddedRange(%v, %v) = %v, %v; want %v, %v", tt.lo, tt.hi, lo, hi, tt.wantLo, tt.wantHi)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestFormatTick(t *testing.T) {
	tests := []struct {
		v, step, maxAbs float64
		want            string
	}{
		{0, 500, 2000, "0"},
		{1500, 500, 2000, "1500"},
		{20000, 5000, 20000, "20k"},
		{0, 5000, 20000, "0"},
		{4000, 2000, 20000, "4k"},
		{12500, 2500, 20000, "12.5k"},
		{5000, 1000, 8000, "5000"},
		{0.5, 0.5, 3, "0.5"},
		{1, 0.5, 3, "1.0"},
		{0.15, 0.05, 0.2, "0.15"},
		{-2.5e-17, 0.5, 3, "0.0"},
		{3e8, 1e8, 5e8, "3e+08"},
	}
	for _, tt := range tests {
		if got := formatTick(tt.v, tt.step, tt.maxAbs); got != tt.want {
			t.Errorf("formatTick(%v, %v, %v) = %q, want %q", tt.v, tt.step, tt.maxAbs, got, tt.want)
		}
	}
}

func TestLossChart_MinSize(t *testing.T) {
	test.NewTempApp(t)

	min := NewLossChart().MinSize()
	if min.Width < 320 || min.Height < 200 {
		t.Errorf("MinSize = %v, want at least 320x200", min)
	}
}

// TestLossChart_LogScale: on a log axis the ticks read as powers of ten
// spanning the data, and values ≤ 0 are left out.
func TestLossChart_LogScale(t *testing.T) {
	test.NewTempApp(t)
	c := NewLossChart()
	for s := 1; s <= 100; s++ {
		c.Add(s, map[string]float64{"MSE": math.Pow(10, -float64(s)/25)}) // 10^-0.04 … 10^-4
	}
	c.Add(101, map[string]float64{"MSE": 0})
	w := test.NewTempWindow(t, c)
	w.Resize(fyne.NewSize(480, 300))
	c.SetLogScale(true)
	r := chartRenderer(t, c)
	r.Layout(c.Size())
	ticks := strings.Join(tickTexts(r), " ")
	for _, want := range []string{"0.001", "0.01", "0.1"} {
		if !strings.Contains(ticks, want) {
			t.Errorf("log ticks %q lack %s", ticks, want)
		}
	}
	if n := r.segmentCount(0); n != 99 {
		t.Errorf("log series draws %d segments, want 99 (the 0 left out)", n)
	}
	if !c.LogScale() {
		t.Error("LogScale false after SetLogScale(true)")
	}
	c.SetLogScale(false)
	r.Layout(c.Size())
	if strings.Contains(strings.Join(tickTexts(r), " "), "0.001") {
		t.Errorf("linear ticks %v still logarithmic", tickTexts(r))
	}
}
