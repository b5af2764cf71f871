package project

import (
	"bufio"
	"fmt"
	"image"
	"io"
)

// imageLimits bounds the images decodeImage accepts, checked on the header
// before any pixel is decoded.
type imageLimits struct {
	maxSide   int   // largest width or height
	maxPixels int64 // largest width×height
}

// defaultImageLimits are the limits of the folder and zip loaders.
var defaultImageLimits = imageLimits{maxSide: maxImageSide, maxPixels: maxImagePixels}

// decodeImage decodes one image (any registered format, detected by
// content) from r to size×size pixels in channels planes, or returns why it
// cannot be used. The header is read first and images larger than lim are
// refused before their pixels are decoded; budget bounds the pixels being
// decoded at once across goroutines. A panicking decoder is reported as a
// reason, not propagated.
func decodeImage(r io.ReadSeeker, size, channels int, pad bool, lim imageLimits, budget *pixelBudget) (pix []uint8, reason string) {
	defer func() {
		if rec := recover(); rec != nil {
			pix, reason = nil, fmt.Sprintf("image decoder failed: %v", rec)
		}
	}()
	cfg, _, err := image.DecodeConfig(bufio.NewReader(r))
	if err != nil {
		return nil, decodeErrText(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Sprintf("invalid image size: %dx%d", cfg.Width, cfg.Height)
	}
	npix := int64(cfg.Width) * int64(cfg.Height)
	if cfg.Width > lim.maxSide || cfg.Height > lim.maxSide || npix > lim.maxPixels {
		return nil, fmt.Sprintf("image too large: %dx%d", cfg.Width, cfg.Height)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, "cannot read: " + errText(err)
	}
	budget.acquire(npix)
	defer budget.release(npix)
	img, _, err := image.Decode(bufio.NewReader(r))
	if err != nil {
		return nil, decodeErrText(err)
	}
	if img.Bounds().Empty() {
		return nil, "invalid image size: 0x0"
	}
	b := img.Bounds()
	if b.Dx() > lim.maxSide || b.Dy() > lim.maxSide || int64(b.Dx())*int64(b.Dy()) > lim.maxPixels {
		return nil, fmt.Sprintf("image too large: %dx%d", b.Dx(), b.Dy())
	}
	return toSquare(img, size, channels, pad), ""
}
