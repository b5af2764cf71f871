package project

import (
	"fmt"
	"image"
	"runtime"
	"sync"

	"golang.org/x/image/draw"
)

// Conform returns the data set with every image resized to size×size (with
// a Catmull-Rom filter; square images stay whole) and converted to channels
// (1: luma, 3: gray replicated to RGB). It returns d itself when nothing
// changes. Labels, classes and the skip list are kept.
func (d *Dataset) Conform(size, channels int) (*Dataset, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("channels must be 1 or 3, got %d", channels)
	}
	if size < 1 || size > maxFolderImageSize {
		return nil, fmt.Errorf("image size %d is out of range 1..%d", size, maxFolderImageSize)
	}
	if d.Width == size && d.Height == size && d.C() == channels {
		return d, nil
	}
	out := &Dataset{Name: d.Name, Source: d.Source, Width: size, Height: size, Channels: channels,
		Labels: d.Labels, Classes: d.Classes, Skipped: d.Skipped}
	n, per := d.Len(), size*size*channels
	out.Pixels = make([]uint8, n*per)
	workers := runtime.NumCPU()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			dst := image.NewRGBA(image.Rect(0, 0, size, size))
			for i := w; i < n; i += workers {
				src := d.Thumbnail(i)
				if d.Width == size && d.Height == size {
					draw.Draw(dst, dst.Bounds(), src, image.Point{}, draw.Src)
				} else {
					draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
				}
				copy(out.Pixels[i*per:(i+1)*per], planes(dst, channels))
			}
		}(w)
	}
	wg.Wait()
	return out, nil
}

// planes returns an RGBA image's luma plane or its R, G, B planes.
func planes(img *image.RGBA, channels int) []uint8 {
	plane := img.Rect.Dx() * img.Rect.Dy()
	out := make([]uint8, plane*channels)
	for i := 0; i < plane; i++ {
		r, g, b := img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2]
		if channels == 3 {
			out[i], out[plane+i], out[2*plane+i] = r, g, b
		} else {
			out[i] = uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 1<<15) >> 16)
		}
	}
	return out
}
