package widgets

import (
	"image"
	"image/color"
	"image/draw"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
)

// digitGrid builds a deterministic rows x cols grid of cell x cell "digit-like"
// glyphs (rings, bars and blocks) separated by gutter-pixel gaps, the same
// shape of image a generator preview produces.
func digitGrid(rows, cols, cell, gutter int) *image.RGBA {
	w := cols*cell + (cols+1)*gutter
	h := rows*cell + (rows+1)*gutter
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{R: 0x30, G: 0x30, B: 0x30, A: 0xff}), image.Point{}, draw.Src) // gutters
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			x0 := gutter + c*(cell+gutter)
			y0 := gutter + r*(cell+gutter)
			kind := (r*cols + c) % 4
			for y := 0; y < cell; y++ {
				for x := 0; x < cell; x++ {
					dx, dy := x-cell/2, y-cell/2
					on := false
					switch kind {
					case 0: // ring, like a zero
						d := dx*dx + dy*dy
						on = d <= (cell/3)*(cell/3) && d >= (cell/5)*(cell/5)
					case 1: // vertical bar, like a one
						on = dx >= -2 && dx <= 1 && y >= 4 && y < cell-4
					case 2: // two horizontal bars, like an equals sign
						on = x >= 5 && x < cell-5 && ((y >= 9 && y < 12) || (y >= 16 && y < 19))
					case 3: // diagonal stroke, like a seven
						stroke := y >= 5 && y < cell-5 && x-(cell-y) >= -2 && x-(cell-y) <= 1
						top := y >= 5 && y < 8 && x >= 6 && x < cell-5
						on = stroke || top
					}
					v := uint8(0)
					if on {
						v = 0xff
					}
					img.SetRGBA(x0+x, y0+y, color.RGBA{R: v, G: v, B: v, A: 0xff})
				}
			}
		}
	}
	return img
}

func TestSampleGrid_Digits(t *testing.T) {
	test.NewTempApp(t)

	g := NewSampleGrid()
	g.SetImage(digitGrid(8, 8, 28, 2))
	w := test.NewTempWindow(t, g)
	w.Resize(fyne.NewSize(520, 500)) // 512x492 inside the padding: 242 px image at exactly 2x

	test.AssertRendersToImage(t, "samplegrid_digits.png", w.Canvas())
}

func TestSampleGrid_Placeholder(t *testing.T) {
	test.NewTempApp(t)

	g := NewSampleGrid()
	if g.Image() != nil {
		t.Fatalf("Image() = %v, want nil for a new grid", g.Image())
	}
	w := test.NewTempWindow(t, g)
	w.Resize(fyne.NewSize(260, 260))
	test.AssertRendersToMarkup(t, "samplegrid_empty.xml", w.Canvas())

	r := test.WidgetRenderer(g).(*sampleGridRenderer)
	if !r.text.Visible() || r.text.Text != DefaultSampleGridPlaceholder {
		t.Errorf("placeholder visible=%v text=%q, want visible %q", r.text.Visible(), r.text.Text, DefaultSampleGridPlaceholder)
	}
	if r.image.Visible() {
		t.Error("image should be hidden while there is no sample")
	}

	g.SetImage(digitGrid(1, 1, 28, 0))
	if r.text.Visible() || !r.image.Visible() {
		t.Errorf("after SetImage: text visible=%v image visible=%v", r.text.Visible(), r.image.Visible())
	}
	if r.image.ScaleMode != canvas.ImageScalePixels || r.image.FillMode != canvas.ImageFillContain {
		t.Errorf("image scale/fill = %v/%v, want pixels/contain", r.image.ScaleMode, r.image.FillMode)
	}

	g.SetImage(nil)
	if !r.text.Visible() || g.Image() != nil {
		t.Error("SetImage(nil) should bring back the placeholder")
	}

	g.SetPlaceholder("Waiting for epoch 1")
	if r.text.Text != "Waiting for epoch 1" || g.Placeholder() != "Waiting for epoch 1" {
		t.Errorf("placeholder = %q, want custom text", r.text.Text)
	}
}

func TestSampleGrid_SetImageConverts(t *testing.T) {
	test.NewTempApp(t)

	offset := image.NewRGBA(image.Rect(5, 7, 9, 10))
	offset.SetRGBA(5, 7, color.RGBA{R: 1, G: 2, B: 3, A: 255})
	offset.SetRGBA(8, 9, color.RGBA{R: 9, G: 8, B: 7, A: 255})

	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	gray.SetGray(2, 1, color.Gray{Y: 200})

	nrgba := image.NewNRGBA(image.Rect(-1, -1, 1, 1))
	nrgba.SetNRGBA(0, 0, color.NRGBA{R: 255, A: 255})

	tests := []struct {
		name   string
		img    image.Image
		size   image.Point
		probe  image.Point // in source coordinates
		expect color.RGBA  // at probe
	}{
		{"rgba with offset bounds", offset, image.Pt(4, 3), image.Pt(8, 9), color.RGBA{R: 9, G: 8, B: 7, A: 255}},
		{"rgba origin pixel", offset, image.Pt(4, 3), image.Pt(5, 7), color.RGBA{R: 1, G: 2, B: 3, A: 255}},
		{"gray", gray, image.Pt(3, 2), image.Pt(2, 1), color.RGBA{R: 200, G: 200, B: 200, A: 255}},
		{"nrgba negative origin", nrgba, image.Pt(2, 2), image.Pt(0, 0), color.RGBA{R: 255, A: 255}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewSampleGrid()
			g.SetImage(tt.img)
			got, ok := g.Image().(*image.RGBA)
			if !ok {
				t.Fatalf("Image() is %T, want *image.RGBA", g.Image())
			}
			if got.Bounds() != (image.Rectangle{Max: tt.size}) {
				t.Fatalf("bounds = %v, want (0,0)-%v", got.Bounds(), tt.size)
			}
			b := tt.img.Bounds()
			if c := got.RGBAAt(tt.probe.X-b.Min.X, tt.probe.Y-b.Min.Y); c != tt.expect {
				t.Errorf("pixel = %v, want %v", c, tt.expect)
			}
		})
	}

	t.Run("copy is independent of caller buffer", func(t *testing.T) {
		src := image.NewRGBA(image.Rect(0, 0, 2, 2))
		g := NewSampleGrid()
		g.SetImage(src)
		src.SetRGBA(0, 0, color.RGBA{R: 255, A: 255})
		if c := g.Image().(*image.RGBA).RGBAAt(0, 0); c.R != 0 {
			t.Errorf("widget image changed with caller buffer: %v", c)
		}
	})

	t.Run("empty image shows placeholder", func(t *testing.T) {
		g := NewSampleGrid()
		g.SetImage(image.NewRGBA(image.Rect(0, 0, 0, 0)))
		if g.Image() != nil {
			t.Errorf("Image() = %v, want nil for an empty image", g.Image())
		}
	})
}

func TestSampleGrid_MinSize(t *testing.T) {
	test.NewTempApp(t)

	g := NewSampleGrid()
	min := g.MinSize()
	if min.Width < 240 || min.Height < 240 {
		t.Errorf("MinSize = %v, want at least 240x240", min)
	}
}

func TestPixelSnappedSize(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 100, 50))
	tests := []struct {
		name  string
		img   image.Image
		area  fyne.Size
		scale float32
		want  fyne.Size
	}{
		{"no image fills area", nil, fyne.NewSize(300, 300), 1, fyne.NewSize(300, 300)},
		{"just above 2x snaps to 2x", img, fyne.NewSize(210, 300), 1, fyne.NewSize(200, 100)},
		{"height limited", img, fyne.NewSize(500, 110), 1, fyne.NewSize(200, 100)},
		{"1.9x stays fractional", img, fyne.NewSize(190, 300), 1, fyne.NewSize(190, 300)},
		{"shrinking stays fractional", img, fyne.NewSize(80, 80), 1, fyne.NewSize(80, 80)},
		{"hidpi counts device pixels", img, fyne.NewSize(105, 300), 2, fyne.NewSize(100, 50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pixelSnappedSize(tt.img, tt.area, tt.scale); got != tt.want {
				t.Errorf("pixelSnappedSize = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSampleGrid_TappedPixel: a tap reports the image pixel under it, and
// a tap on the margin beside the image nothing.
func TestSampleGrid_TappedPixel(t *testing.T) {
	test.NewTempApp(t)
	g := NewSampleGrid()
	g.SetImage(digitGrid(2, 4, 28, 2)) // 122 x 62 pixels
	var got []image.Point
	g.OnTappedPixel = func(p image.Point) { got = append(got, p) }
	w := test.NewTempWindow(t, g)
	w.Resize(fyne.NewSize(400, 400))
	size := g.Size()
	// The image is 122 × 62, magnified k times (snapped) and centred.
	shown := pixelSnappedSize(g.Image(), size, 1)
	k := shown.Width / 122
	x0, y0 := (size.Width-shown.Width)/2, (size.Height-62*k)/2
	test.TapAt(g, fyne.NewPos(x0+k*(33+0.5), y0+k*(40+0.5)))
	test.TapAt(g, fyne.NewPos(size.Width/2, y0/2)) // above the image
	if len(got) != 1 || got[0] != image.Pt(33, 40) {
		t.Fatalf("taps reported %v, want [(33,40)]", got)
	}
}
