package models

// FLOPCounter is a model that knows the arithmetic of one training step:
// the "3× rule" count the PyTorch references in shared/bench use (forward
// and backward ≈ 3× the forward GEMMs, 2 FLOPs a multiply-add), so that
// GFLOP/s figures compare like with like. Elementwise work is not counted.
type FLOPCounter interface {
	StepFLOPs() float64
}

var (
	_ FLOPCounter = (*GAN)(nil)
	_ FLOPCounter = (*VAE)(nil)
	_ FLOPCounter = (*DDPM)(nil)
)

// chainMACs is the multiply-adds per sample of a chain of dense layers
// through the given widths.
func chainMACs(widths ...int) int {
	n := 0
	for i := 1; i < len(widths); i++ {
		n += widths[i-1] * widths[i]
	}
	return n
}

// stepFLOPs turns forward multiply-adds per sample into a step's FLOPs.
func stepFLOPs(macs, batch int) float64 { return 3 * 2 * float64(macs) * float64(batch) }

// StepFLOPs is one GAN step: G forward and backward once, D three times
// (real, detached fake, fake for the G loss).
func (g *GAN) StepFLOPs() float64 {
	c := g.cfg
	in := c.Width * c.Height * c.Channels
	gen := chainMACs(append(append([]int{c.Latent}, c.GHidden...), in)...)
	disc := chainMACs(append(append([]int{in}, c.DHidden...), 1)...)
	return stepFLOPs(3*disc+gen, c.Batch)
}

// StepFLOPs is one VAE step: the encoder (to the mean and the log-variance)
// and the decoder.
func (v *VAE) StepFLOPs() float64 {
	c := v.cfg
	in := c.Width * c.Height * c.Channels
	return stepFLOPs(in*c.Hidden+2*c.Hidden*c.Latent+chainMACs(c.Latent, c.Hidden, in), c.Batch)
}

// StepFLOPs is one step of the MLP noise predictor (time embedding, input,
// residual and output layers); 0 for the U-Net, whose convolutions
// nn.ReadConvStats counts as they run.
func (d *DDPM) StepFLOPs() float64 {
	if d.unet != nil {
		return 0
	}
	c := d.cfg
	in := c.Width * c.Height * c.Channels
	return stepFLOPs(c.TEmb*c.Hidden+in*c.Hidden+c.Hidden*c.Hidden+c.Hidden*in, c.Batch)
}
