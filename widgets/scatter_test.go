package widgets

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
)

// lcg is a tiny deterministic generator (Knuth's MMIX LCG), so that golden
// images do not depend on math/rand's algorithms.
type lcg uint64

func (g *lcg) float() float64 {
	*g = *g*6364136223846793005 + 1442695040888963407
	return float64(uint64(*g)>>11) / (1 << 53)
}

// normal returns a standard normal value (Box–Muller).
func (g *lcg) normal() float64 {
	u := 1 - g.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*g.float())
}

// ring8 returns the centres of the ring of 8 Gaussians at radius 1.
func ring8() []float32 {
	c := make([]float32, 0, 16)
	for k := range 8 {
		a := 2 * math.Pi * float64(k) / 8
		c = append(c, float32(math.Cos(a)), float32(math.Sin(a)))
	}
	return c
}

// gaussianPoints draws n points around the given centres (x, y pairs), a
// mode chosen uniformly for each, with standard deviation sigma.
func gaussianPoints(g *lcg, n int, centres []float32, sigma float64) []float32 {
	out := make([]float32, 0, 2*n)
	for range n {
		k := int(g.float()*float64(len(centres)/2)) * 2
		out = append(out,
			centres[k]+float32(sigma*g.normal()),
			centres[k+1]+float32(sigma*g.normal()))
	}
	return out
}

// labHeatMap returns an n x n grid of logits over [-r, r]², row 0 at the
// top, that look like a discriminator's: high ("real") around the missed
// modes, low around the generated clusters.
func labHeatMap(n int, r float64, missed, generated []float32) []float32 {
	bump := func(x, y float64, centres []float32, s float64) float64 {
		v := 0.0
		for k := 0; k+1 < len(centres); k += 2 {
			dx, dy := x-float64(centres[k]), y-float64(centres[k+1])
			v += math.Exp(-(dx*dx + dy*dy) / (2 * s * s))
		}
		return v
	}
	out := make([]float32, 0, n*n)
	for i := range n {
		y := r - (float64(i)+0.5)*2*r/float64(n)
		for j := range n {
			x := -r + (float64(j)+0.5)*2*r/float64(n)
			out = append(out, float32(0.3+4*bump(x, y, missed, 0.35)-3.5*bump(x, y, generated, 0.3)))
		}
	}
	return out
}

// sampleScatter returns the Lab view of a GAN half-way through learning the
// ring: real points on all 8 modes, generated points on 5 of them (the
// covered ones), and a discriminator heat map.
func sampleScatter() *ScatterPlot {
	centres := ring8()
	covered := []bool{true, true, false, true, false, true, true, false}
	var hit, miss []float32
	for k, c := range covered {
		if c {
			hit = append(hit, centres[2*k], centres[2*k+1])
		} else {
			miss = append(miss, centres[2*k], centres[2*k+1])
		}
	}
	g := lcg(1)
	p := NewScatterPlot()
	p.SetBounds(-1.55, 1.55, -1.55, 1.55)
	p.SetHeatMap(32, 32, labHeatMap(32, 1.55, miss, hit))
	p.SetSeries(0, "real", gaussianPoints(&g, 600, centres, 0.05))
	p.SetSeries(1, "generated", append(gaussianPoints(&g, 550, hit, 0.08), gaussianPoints(&g, 50, []float32{0, 0}, 0.5)...))
	p.SetMarkers(centres, covered)
	return p
}

func scatterRendererOf(t testing.TB, p *ScatterPlot) *scatterRenderer {
	t.Helper()
	r, ok := test.WidgetRenderer(p).(*scatterRenderer)
	if !ok {
		t.Fatalf("renderer is %T, want *scatterRenderer", test.WidgetRenderer(p))
	}
	return r
}

func TestScatterPlot_Ring8(t *testing.T) {
	test.NewTempApp(t)

	p := sampleScatter()
	w := test.NewTempWindow(t, p)
	w.Resize(fyne.NewSize(360, 360))
	test.AssertRendersToImage(t, "scatterplot_ring8.png", w.Canvas())

	r := scatterRendererOf(t, p)
	if r.empty.Visible() {
		t.Error("placeholder should be hidden when there is data")
	}
	if got, want := texts(r.legendLabels), []string{"real", "generated", "covered", "missed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("legend = %v, want %v", got, want)
	}
	if got, want := texts(r.tickLabels), []string{"-1", "0", "1", "-1", "0", "1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ticks = %v, want %v", got, want)
	}
	if s := r.raster.Size(); math.Abs(float64(s.Width-s.Height)) > 0.01 {
		t.Errorf("plot %v is not square for a square window", s)
	}
}

func TestScatterPlot_Empty(t *testing.T) {
	test.NewTempApp(t)

	p := NewScatterPlot()
	w := test.NewTempWindow(t, p)
	w.Resize(fyne.NewSize(308, 308))
	test.AssertRendersToMarkup(t, "scatterplot_empty.xml", w.Canvas())

	r := scatterRendererOf(t, p)
	if !r.empty.Visible() || r.empty.Text != DefaultScatterPlaceholder {
		t.Errorf("placeholder visible=%v text=%q", r.empty.Visible(), r.empty.Text)
	}
	if got := len(r.legendLabels); got != 0 {
		t.Errorf("empty plot has %d legend entries", got)
	}

	p.SetSeries(0, "real", []float32{0.5, 0.5})
	if r.empty.Visible() {
		t.Error("a point should hide the placeholder")
	}
	p.Clear()
	if !r.empty.Visible() || len(r.legendLabels) != 0 {
		t.Error("Clear should remove the legend and show the placeholder again")
	}
	p.SetMarkers(ring8(), nil)
	if r.empty.Visible() {
		t.Error("markers alone should hide the placeholder")
	}
	if got, want := texts(r.legendLabels), []string{"mode"}; !reflect.DeepEqual(got, want) {
		t.Errorf("legend with unevaluated markers = %v, want %v", got, want)
	}
	p.Clear()
	p.SetHeatMap(2, 2, []float32{1, 2, 3, 4})
	if r.empty.Visible() {
		t.Error("a heat map alone should hide the placeholder")
	}
	p.SetHeatMap(0, 0, nil)
	p.SetPlaceholder("Press Train to start")
	if !r.empty.Visible() || r.empty.Text != "Press Train to start" || p.Placeholder() != r.empty.Text {
		t.Errorf("placeholder visible=%v text=%q", r.empty.Visible(), r.empty.Text)
	}
}

func TestScatterPlot_OddAndEmptySlices(t *testing.T) {
	tests := []struct {
		name    string
		set     func(p *ScatterPlot)
		points  []int // stored points per series
		markers int
		heat    bool
	}{
		{"nil series", func(p *ScatterPlot) { p.SetSeries(0, "a", nil) }, []int{0}, 0, false},
		{"empty series", func(p *ScatterPlot) { p.SetSeries(0, "a", []float32{}) }, []int{0}, 0, false},
		{"one value", func(p *ScatterPlot) { p.SetSeries(0, "a", []float32{1}) }, []int{0}, 0, false},
		{"odd length drops the last value", func(p *ScatterPlot) { p.SetSeries(0, "a", []float32{1, 2, 3}) }, []int{1}, 0, false},
		{"gap before series 2", func(p *ScatterPlot) { p.SetSeries(2, "c", []float32{1, 2}) }, []int{0, 0, 1}, 0, false},
		{"negative index ignored", func(p *ScatterPlot) { p.SetSeries(-1, "a", []float32{1, 2}) }, nil, 0, false},
		{"index too large ignored", func(p *ScatterPlot) { p.SetSeries(MaxScatterSeries, "a", []float32{1, 2}) }, nil, 0, false},
		{"non-finite points stored, not drawn", func(p *ScatterPlot) {
			nan, inf := float32(math.NaN()), float32(math.Inf(1))
			p.SetSeries(0, "a", []float32{nan, 0, 0, inf, 0.5, 0.5})
		}, []int{3}, 0, false},
		{"nil markers", func(p *ScatterPlot) { p.SetMarkers(nil, nil) }, nil, 0, false},
		{"odd markers", func(p *ScatterPlot) { p.SetMarkers([]float32{1, 2, 3}, []bool{true, true, true}) }, nil, 1, false},
		{"markers with short covered", func(p *ScatterPlot) { p.SetMarkers(ring8(), []bool{true}) }, nil, 8, false},
		{"nil heat map", func(p *ScatterPlot) { p.SetHeatMap(4, 4, nil) }, nil, 0, false},
		{"short heat map", func(p *ScatterPlot) { p.SetHeatMap(4, 4, make([]float32, 15)) }, nil, 0, false},
		{"zero width heat map", func(p *ScatterPlot) { p.SetHeatMap(0, 4, make([]float32, 16)) }, nil, 0, false},
		{"negative heat map", func(p *ScatterPlot) { p.SetHeatMap(-4, -4, make([]float32, 16)) }, nil, 0, false},
		{"long heat map", func(p *ScatterPlot) { p.SetHeatMap(1, 1, []float32{float32(math.NaN()), 9}) }, nil, 0, true},
		{"bad bounds ignored", func(p *ScatterPlot) {
			p.SetBounds(1, 1, 0, 1)
			p.SetBounds(math.NaN(), 1, 0, 1)
			p.SetBounds(0, math.Inf(1), 0, 1)
		}, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			test.NewTempApp(t)
			p := NewScatterPlot()
			w := test.NewTempWindow(t, p)
			w.Resize(fyne.NewSize(300, 300))
			tt.set(p)
			w.Canvas().Capture() // paints the raster

			var got []int
			for _, s := range p.series {
				got = append(got, len(s.xy)/2)
			}
			if !reflect.DeepEqual(got, tt.points) {
				t.Errorf("points per series = %v, want %v", got, tt.points)
			}
			if n := len(p.markers) / 2; n != tt.markers || len(p.covered) != n {
				t.Errorf("%d markers with %d covered flags, want %d", n, len(p.covered), tt.markers)
			}
			if (p.heat != nil) != tt.heat {
				t.Errorf("heat map set = %v, want %v", p.heat != nil, tt.heat)
			}
			if xmin, xmax, ymin, ymax := p.Bounds(); !(xmin < xmax && ymin < ymax) || !isFinite(xmin+xmax+ymin+ymax) {
				t.Errorf("bounds %v %v %v %v", xmin, xmax, ymin, ymax)
			}
		})
	}
}

func TestScatterPlot_CopiesArguments(t *testing.T) {
	test.NewTempApp(t)

	xy := []float32{0.1, 0.2}
	marks := []float32{1, 0}
	cov := []bool{true}
	p := NewScatterPlot()
	p.SetSeries(0, "a", xy)
	p.SetMarkers(marks, cov)
	xy[0], marks[0], cov[0] = 9, 9, false
	if p.series[0].xy[0] != 0.1 || p.markers[0] != 1 || !p.covered[0] {
		t.Error("the plot should keep its own copies of the slices")
	}
}

func TestScatterBounds_ToPixel(t *testing.T) {
	tests := []struct {
		name   string
		b      scatterBounds
		w, h   int
		x, y   float64
		px, py float64
	}{
		{"centre of a square", scatterBounds{-1.5, 1.5, -1.5, 1.5}, 300, 300, 0, 0, 150, 150},
		{"centre of an offset window", scatterBounds{1, 5, -3, -1}, 400, 200, 3, -2, 200, 100},
		{"top left", scatterBounds{-4, 4, -4, 4}, 256, 256, -4, 4, 0, 0},
		{"bottom right", scatterBounds{-4, 4, -4, 4}, 256, 256, 4, -4, 256, 256},
		{"y grows upwards", scatterBounds{0, 1, 0, 1}, 100, 100, 0.25, 0.75, 25, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px, py := tt.b.toPixel(tt.x, tt.y, tt.w, tt.h)
			if !near(px, tt.px) || !near(py, tt.py) {
				t.Errorf("toPixel(%v, %v) = %v, %v; want %v, %v", tt.x, tt.y, px, py, tt.px, tt.py)
			}
		})
	}
}

func TestScatterLetterbox(t *testing.T) {
	tests := []struct {
		name      string
		pos       fyne.Position
		size      fyne.Size
		aspect    float64
		wantPos   fyne.Position
		wantSize  fyne.Size
		keepInput bool
	}{
		{"square in wide", fyne.NewPos(10, 20), fyne.NewSize(300, 200), 1, fyne.NewPos(60, 20), fyne.NewSize(200, 200), false},
		{"square in tall", fyne.NewPos(0, 0), fyne.NewSize(100, 300), 1, fyne.NewPos(0, 100), fyne.NewSize(100, 100), false},
		{"wide in square", fyne.NewPos(0, 0), fyne.NewSize(200, 200), 2, fyne.NewPos(0, 50), fyne.NewSize(200, 100), false},
		{"bad aspect", fyne.NewPos(1, 2), fyne.NewSize(30, 40), math.NaN(), fyne.NewPos(1, 2), fyne.NewSize(30, 40), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pos, size := scatterLetterbox(tt.pos, tt.size, tt.aspect)
			if pos != tt.wantPos || size != tt.wantSize {
				t.Errorf("scatterLetterbox = %v %v, want %v %v", pos, size, tt.wantPos, tt.wantSize)
			}
		})
	}
}

// TestScatterPlot_CentrePoint checks the whole mapping in a wide window: a
// point at the centre of the data lands at the centre of the plot image and
// of the letterboxed plot, and the plot keeps the window's 2:1 aspect ratio.
func TestScatterPlot_CentrePoint(t *testing.T) {
	test.NewTempApp(t)

	p := NewScatterPlot()
	p.SetBounds(1, 5, -3, -1) // 4 wide, 2 tall, centre (3, -2)
	p.SetSeries(0, "", []float32{3, -2})
	w := test.NewTempWindow(t, p)
	w.Resize(fyne.NewSize(500, 400))
	r := scatterRendererOf(t, p)

	size := r.raster.Size()
	if ratio := size.Width / size.Height; math.Abs(float64(ratio)-2) > 0.01 {
		t.Errorf("plot is %v, want a 2:1 aspect ratio", size)
	}
	pw, ph := int(size.Width), int(size.Height) // pixels at scale 1
	img := r.paint(pw, ph).(*image.RGBA)
	cx, cy := pw/2, ph/2
	want := lossPalette[0]
	for _, at := range []image.Point{{cx - 1, cy - 1}, {cx, cy - 1}, {cx - 1, cy}, {cx, cy}} {
		got := color.NRGBAModel.Convert(img.At(at.X, at.Y)).(color.NRGBA)
		if got.A < 0x80 || absDiff(got.R, want.R) > 8 || absDiff(got.G, want.G) > 8 || absDiff(got.B, want.B) > 8 {
			t.Errorf("pixel %v = %v, want the colour of series 0", at, got)
		}
	}
	for _, at := range []image.Point{{cx - 4, cy}, {cx + 4, cy}, {cx, cy - 4}, {cx, cy + 4}} {
		if a := img.RGBAAt(at.X, at.Y).A; a > 0x30 { // only the faint grid may be there
			t.Errorf("pixel %v has alpha %d, want the point to be small", at, a)
		}
	}

	// In the captured window the dot is at the centre of the plot rectangle.
	capt := w.Canvas().Capture()
	pos := r.raster.Position().Add(p.Position())
	c := image.Pt(int(pos.X+size.Width/2), int(pos.Y+size.Height/2))
	got := color.NRGBAModel.Convert(capt.At(c.X, c.Y)).(color.NRGBA)
	if int(got.B)-int(got.R) < 60 || got.B < got.G { // the blue dot, blended over the grey background
		t.Errorf("window pixel %v = %v, want the blue of series 0", c, got)
	}
	bg := color.NRGBAModel.Convert(capt.At(c.X+8, c.Y+8)).(color.NRGBA)
	if int(bg.B)-int(bg.R) > 10 {
		t.Errorf("window pixel beside the dot = %v, want the background", bg)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestScatterPlot_HeatMapColours(t *testing.T) {
	test.NewTempApp(t)

	p := NewScatterPlot()
	p.SetBounds(0, 2, 0, 1)
	p.SetHeatMap(3, 1, []float32{-20, 0, 20}) // left: "fake", middle: undecided, right: "real"
	w := test.NewTempWindow(t, p)
	w.Resize(fyne.NewSize(400, 300))
	r := scatterRendererOf(t, p)

	img := r.paint(200, 100).(*image.RGBA)
	left, right := img.RGBAAt(10, 30), img.RGBAAt(190, 30)
	if left.R <= left.B || right.B <= right.R {
		t.Errorf("left %v should be orange and right %v blue", left, right)
	}
	if a := img.RGBAAt(104, 30).A; a > 0x10 { // beside the grid line at x = 1
		t.Errorf("the middle (sigmoid ½) should be clear, alpha %d", a)
	}
	if max := uint8(math.Round(scatterHeatAlpha * 255)); left.A > max || right.A > max {
		t.Errorf("heat map alpha %d, %d above the faint maximum %d", left.A, right.A, max)
	}
	// The heat map keeps the window it was set in.
	p.SetBounds(0, 4, 0, 2)
	img = r.paint(200, 100).(*image.RGBA)
	if a := img.RGBAAt(150, 75).A; a != 0 {
		t.Errorf("outside the heat map's window alpha = %d, want 0", a)
	}
}

func TestScatterTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []float64
	}{
		{-1.55, 1.55, []float64{-1, 0, 1}},
		{-5.6, 5.6, []float64{-5, 0, 5}},
		{-1, 1, []float64{-1, 0, 1}},
		{0, 10, []float64{0, 5, 10}},
		{1, 5, []float64{2, 4}},
	}
	for _, tt := range tests {
		got, _ := scatterTicks(tt.lo, tt.hi)
		if len(got) < 2 || len(got) > scatterMaxTicks {
			t.Errorf("scatterTicks(%v, %v) = %v, want 2 to %d ticks", tt.lo, tt.hi, got, scatterMaxTicks)
		}
		if len(got) != len(tt.want) {
			t.Errorf("scatterTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
			continue
		}
		for i := range got {
			if !near(got[i], tt.want[i]) {
				t.Errorf("scatterTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
				break
			}
		}
	}
}

func TestScatterPlot_AutoBounds(t *testing.T) {
	test.NewTempApp(t)

	p := NewScatterPlot()
	if xmin, xmax, ymin, ymax := p.Bounds(); xmin != -1 || xmax != 1 || ymin != -1 || ymax != 1 {
		t.Errorf("empty bounds %v %v %v %v, want [-1, 1]²", xmin, xmax, ymin, ymax)
	}
	p.SetSeries(0, "a", []float32{0, 0, 4, 2})
	if xmin, xmax, ymin, ymax := p.Bounds(); xmin > 0 || xmax < 4 || ymin > 0 || ymax < 2 {
		t.Errorf("fitted bounds %v %v %v %v do not hold the points", xmin, xmax, ymin, ymax)
	}
	p.SetBounds(3, -3, 2, -2)
	if xmin, xmax, ymin, ymax := p.Bounds(); xmin != -3 || xmax != 3 || ymin != -2 || ymax != 2 {
		t.Errorf("bounds %v %v %v %v, want the swapped limits", xmin, xmax, ymin, ymax)
	}
}

func TestScatterPlot_MinSize(t *testing.T) {
	test.NewTempApp(t)

	min := NewScatterPlot().MinSize()
	if min.Width < 300 || min.Height < 300 {
		t.Errorf("MinSize = %v, want at least 300x300", min)
	}
}

// BenchmarkScatterPlot_Paint paints the Lab's live view (2 x 2,500 points,
// 8 markers, a 48 x 48 heat map) at 600 x 600 pixels.
func BenchmarkScatterPlot_Paint(b *testing.B) {
	test.NewTempApp(b)
	g := lcg(2)
	p := NewScatterPlot()
	p.SetBounds(-1.55, 1.55, -1.55, 1.55)
	p.SetHeatMap(48, 48, labHeatMap(48, 1.55, ring8()[:6], ring8()[6:]))
	p.SetSeries(0, "real", gaussianPoints(&g, 2500, ring8(), 0.05))
	p.SetSeries(1, "generated", gaussianPoints(&g, 2500, ring8(), 0.1))
	p.SetMarkers(ring8(), []bool{true, false, true})
	w := test.NewTempWindow(b, p)
	w.Resize(fyne.NewSize(640, 640))
	r := scatterRendererOf(b, p)
	b.ResetTimer()
	for b.Loop() {
		r.paint(600, 600)
	}
}

// TestPreviewScatter renders the Lab's scatter plot to PNG files for a
// visual check, when WIDGETS_PREVIEW_DIR names a folder to write them to
// (scatter.png in the test theme, then the dark and light themes, a 5x5
// grid, an empty plot and one at canvas scale 2):
//
//	WIDGETS_PREVIEW_DIR=/tmp/widgets_preview go test -run TestPreviewScatter ./widgets/
func TestPreviewScatter(t *testing.T) {
	dir := os.Getenv(previewDirEnv)
	if dir == "" {
		t.Skip("set " + previewDirEnv + " to write preview PNGs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	grid25 := func() fyne.CanvasObject {
		var centres []float32
		for i := -4; i <= 4; i += 2 {
			for j := -4; j <= 4; j += 2 {
				centres = append(centres, float32(i), float32(j))
			}
		}
		covered := make([]bool, 25)
		var hit []float32
		for k := range covered {
			covered[k] = k%3 != 0
			if covered[k] {
				hit = append(hit, centres[2*k], centres[2*k+1])
			}
		}
		g := lcg(3)
		p := NewScatterPlot()
		p.SetBounds(-5.6, 5.6, -5.6, 5.6)
		p.SetHeatMap(48, 48, labHeatMap(48, 5.6, centres, hit))
		p.SetSeries(0, "real", gaussianPoints(&g, 2500, centres, 0.05))
		p.SetSeries(1, "generated", gaussianPoints(&g, 2500, hit, 0.15))
		p.SetMarkers(centres, covered)
		return p
	}
	scenes := []struct {
		file    string
		th      fyne.Theme
		size    fyne.Size
		scale   float32
		content func() fyne.CanvasObject
	}{
		{"scatter.png", test.Theme(), fyne.NewSize(360, 360), 1, func() fyne.CanvasObject { return sampleScatter() }},
		{"scatter_dark.png", theme.DarkTheme(), fyne.NewSize(480, 400), 1, func() fyne.CanvasObject { return sampleScatter() }},
		{"scatter_light.png", theme.LightTheme(), fyne.NewSize(480, 400), 1, func() fyne.CanvasObject { return sampleScatter() }},
		{"scatter_grid25_dark.png", theme.DarkTheme(), fyne.NewSize(420, 420), 1, grid25},
		{"scatter_grid25_light_x2.png", theme.LightTheme(), fyne.NewSize(420, 420), 2, grid25},
		{"scatter_empty_dark.png", theme.DarkTheme(), fyne.NewSize(308, 308), 1, func() fyne.CanvasObject { return NewScatterPlot() }},
	}
	for _, sc := range scenes {
		t.Run(sc.file, func(t *testing.T) {
			a := test.NewTempApp(t)
			a.Settings().SetTheme(sc.th)
			w := test.NewTempWindow(t, sc.content())
			if c, ok := w.Canvas().(interface{ SetScale(float32) }); ok && sc.scale != 1 {
				c.SetScale(sc.scale)
			}
			w.Resize(sc.size)
			img := w.Canvas().Capture()
			f, err := os.Create(filepath.Join(dir, sc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
		})
	}
}
