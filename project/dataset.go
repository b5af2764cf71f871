// Package project holds the data side of a Gen Studio project: loading
// image data sets (the built-in MNIST digits, IDX files, CIFAR-10 batches,
// zip archives and folders of ordinary image files) into an in-memory
// Dataset, caching them, and reading and writing the project folder
// (project.json, runs/, exports/, cache/).
//
// The package has no user-interface dependencies; it is shared by the
// desktop window and by headless commands.
package project

import "image"

// Dataset is an in-memory set of images: uint8 pixels, each image stored as
// Channels planes of Height×Width (PyTorch's C×H×W order); Channels is 1
// (grayscale; 0 also means 1) or 3 (RGB).
//
// A Dataset returned by LoadMNIST or Subset may share its Pixels and Labels
// storage with other Datasets; treat them as read-only.
type Dataset struct {
	Name          string    // e.g. "MNIST (train)" or the folder's base name
	Source        string    // "mnist" or the folder path
	Width, Height int       // 28, 28
	Channels      int       // 1 or 3 (0 means 1)
	Pixels        []uint8   // N*Width*Height, 0=black..255=white (MNIST convention: digit strokes are bright)
	Labels        []int     // len N, -1 when unknown; for folders: index into Classes from the sub-folder name
	Classes       []string  // class names (MNIST: "0".."9"; folder: sub-folder names sorted; empty if none)
	Skipped       []Skipped // files that could not be used, with the reason
}

// Skipped records a file that could not be used and why.
type Skipped struct {
	Path   string // path of the file (or folder) that was skipped
	Reason string // human-readable reason, e.g. "not an image"
}

// C returns the number of channels (1 when Channels is unset).
func (d *Dataset) C() int {
	if d.Channels == 3 {
		return 3
	}
	return 1
}

// ImageSize is the number of values in one image: Width×Height×C().
func (d *Dataset) ImageSize() int { return d.Width * d.Height * d.C() }

// Len returns the number of images in the data set. A nil Dataset or one
// with a zero image size has length 0.
func (d *Dataset) Len() int {
	if d == nil {
		return 0
	}
	n := d.ImageSize()
	if n <= 0 {
		return 0
	}
	return len(d.Pixels) / n
}

// Image returns the i-th image's pixels as a sub-slice of Pixels (not a
// copy), ImageSize() bytes in C×H×W order. It returns nil when i is out of
// range.
func (d *Dataset) Image(i int) []uint8 {
	if i < 0 || i >= d.Len() {
		return nil
	}
	n := d.ImageSize()
	off := i * n
	return d.Pixels[off : off+n : off+n]
}

// Thumbnail returns a copy of the i-th image, an *image.Gray for grayscale
// sets and an *image.RGBA for RGB ones, with bounds (0,0)-(Width,Height). It
// returns nil when i is out of range.
func (d *Dataset) Thumbnail(i int) image.Image {
	px := d.Image(i)
	if px == nil {
		return nil
	}
	if d.C() == 1 {
		g := image.NewGray(image.Rect(0, 0, d.Width, d.Height))
		copy(g.Pix, px)
		return g
	}
	plane := d.Width * d.Height
	img := image.NewRGBA(image.Rect(0, 0, d.Width, d.Height))
	for k := 0; k < plane; k++ {
		img.Pix[4*k], img.Pix[4*k+1], img.Pix[4*k+2], img.Pix[4*k+3] = px[k], px[plane+k], px[2*plane+k], 255
	}
	return img
}

// Subset returns a Dataset holding the first n images (all of them when n
// exceeds Len, none when n <= 0). Pixels and Labels share storage with d;
// Classes and Skipped are copied.
func (d *Dataset) Subset(n int) *Dataset {
	if d == nil {
		return nil
	}
	n = max(0, min(n, d.Len()))
	s := &Dataset{
		Name:     d.Name,
		Source:   d.Source,
		Width:    d.Width,
		Height:   d.Height,
		Channels: d.Channels,
		Classes:  append([]string(nil), d.Classes...),
		Skipped:  append([]Skipped(nil), d.Skipped...),
	}
	np := n * d.ImageSize()
	s.Pixels = d.Pixels[:np:np]
	if len(d.Labels) >= n {
		s.Labels = d.Labels[:n:n]
	}
	return s
}
