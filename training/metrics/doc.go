// Package metrics is the pure math of generative-model evaluation: it takes
// feature vectors, class probabilities or images as plain float32 slices and
// returns numbers, with no UI, model or project code behind it, so the
// evaluator, the command line and the window all compute the same values.
//
// What each number tells a user (↓ lower is better, ↑ higher is better):
//
//   - FID (Fréchet distance, ↓): how far the Gaussian fitted to generated
//     features is from the one fitted to real features; 0 when the means and
//     covariances match. Biased upwards at small N: always report N and the
//     feature extractor.
//   - KID (kernel distance, ↓): an unbiased estimate of the same kind of gap
//     (MMD² with a cubic kernel), near 0 for matching distributions even at
//     small N; small negative values are noise.
//   - Inception Score (↑): exp of how confident the classifier is per sample
//     and how spread the classes are over samples; from 1 (one class, or
//     unsure) up to the number of classes.
//   - Precision (↑): the share of generated samples that look real (fall
//     inside the real data's k-NN manifold): quality.
//   - Recall (↑): the share of real samples the generator can reach (inside
//     the generated k-NN manifold): diversity.
//   - Density (↑, about 1 when matched): like precision but counts how many
//     real neighbourhoods hold each sample; above 1 means samples crowd where
//     real data is densest.
//   - Coverage (↑): the share of real samples with a generated sample inside
//     their neighbourhood: how many real modes are covered.
//   - MS-SSIM between random pairs of samples (↓ means more diverse): values
//     near 1 mean the samples look alike (mode collapse); compare with the
//     real data's own value.
//   - Class histogram, confident share (↑), class coverage (↑, up to the
//     number of classes) and class KL to the real histogram (↓): which
//     classes a classifier sees in the samples and how evenly.
//   - Nearest (↑ distance means more novel): the closest training image of
//     each sample; a distance near 0 means the sample was memorised.
//
// Pairwise distances run as float32 GEMMs (models/nn.Gemm, OpenBLAS split
// over the cores) in blocks of at most 64 MB; statistics accumulate in
// float64.
package metrics
