package project_test

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/genstudio/genstudio/project"
)

func TestConform(t *testing.T) {
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	d = d.Subset(10)
	same, err := d.Conform(28, 1)
	if err != nil || same != d {
		t.Fatalf("a no-op conform made a copy: %v", err)
	}
	for _, tc := range []struct{ size, channels int }{{32, 1}, {32, 3}, {28, 3}, {16, 1}} {
		c, err := d.Conform(tc.size, tc.channels)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() != 10 || c.Width != tc.size || c.C() != tc.channels || len(c.Labels) != 10 {
			t.Fatalf("%+v: got %d images %dx%dx%d", tc, c.Len(), c.Width, c.Height, c.C())
		}
		// The digit keeps its brightness: the mean pixel stays close.
		mean := func(px []uint8) float64 {
			s := 0
			for _, p := range px {
				s += int(p)
			}
			return float64(s) / float64(len(px))
		}
		if m0, m1 := mean(d.Image(0)), mean(c.Image(0)); m1 < 0.6*m0 || m1 > 1.4*m0 {
			t.Fatalf("%+v: mean pixel %.1f -> %.1f", tc, m0, m1)
		}
		if tc.channels == 3 {
			plane := tc.size * tc.size
			img := c.Image(3)
			for k := 0; k < plane; k++ {
				if img[k] != img[plane+k] || img[k] != img[2*plane+k] {
					t.Fatal("gray replicated to RGB differs between planes")
				}
			}
			if _, ok := c.Thumbnail(0).(*image.RGBA); !ok {
				t.Fatal("RGB thumbnail is not RGBA")
			}
		}
	}
	if _, err := d.Conform(32, 2); err == nil {
		t.Fatal("2 channels accepted")
	}
}

func TestLoadFolderRGB(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 40; x++ {
			img.Set(x, y, color.RGBA{200, 30, 10, 255})
		}
	}
	f, _ := os.Create(filepath.Join(dir, "red.png"))
	png.Encode(f, img)
	f.Close()
	d, err := project.LoadFolderWith(context.Background(), dir, project.Preprocess{Size: 32, Channels: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 1 || d.C() != 3 || d.Width != 32 {
		t.Fatalf("%d images %dx%dx%d", d.Len(), d.Width, d.Height, d.C())
	}
	px := d.Image(0)
	plane := 32 * 32
	if r, g, b := px[500], px[plane+500], px[2*plane+500]; r < 190 || g > 40 || b > 20 {
		t.Fatalf("pixel (%d,%d,%d), want about (200,30,10)", r, g, b)
	}
}

func TestLoadFolderPadKeepsWholeImage(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 40, 10))
	for y := 0; y < 10; y++ {
		for x := 0; x < 40; x++ {
			img.Set(x, y, color.RGBA{250, 250, 250, 255})
		}
	}
	f, _ := os.Create(filepath.Join(dir, "wide.png"))
	png.Encode(f, img)
	f.Close()
	for _, tc := range []struct {
		resize       string
		top, centre0 uint8 // pixel (16, 0) and (0, 16)
	}{
		{project.ResizeCrop, 250, 250}, // a 10×10 crop of white fills the square
		{project.ResizePad, 0, 250},    // the whole 40×10 strip on black: black above, white across
	} {
		d, err := project.LoadFolderWith(context.Background(), dir, project.Preprocess{Size: 32, Channels: 1, Resize: tc.resize}, nil)
		if err != nil {
			t.Fatal(err)
		}
		px := d.Image(0)
		if top, mid := px[16], px[16*32+1]; absDiff(top, tc.top) > 8 || absDiff(mid, tc.centre0) > 8 {
			t.Fatalf("%s: top %d, middle-left %d; want %d and %d", tc.resize, top, mid, tc.top, tc.centre0)
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
