package models

// PreviewImages is how many images a live preview shows by default.
const PreviewImages = 64

// PreviewSizer is a model whose live preview should show fewer images than
// PreviewImages because sampling it is slow.
type PreviewSizer interface {
	PreviewImages() int
}

var _ PreviewSizer = (*DDPM)(nil)

// PreviewImages is 16 for the U-Net, whose 50-step sampler would take
// about 20 s for 64 images on a laptop CPU, and PreviewImages otherwise.
func (d *DDPM) PreviewImages() int {
	if d.unet != nil {
		return 16
	}
	return PreviewImages
}

// PreviewCount is how many images m's live preview shows.
func PreviewCount(m Model) int {
	if p, ok := m.(PreviewSizer); ok && p.PreviewImages() > 0 {
		return p.PreviewImages()
	}
	return PreviewImages
}
