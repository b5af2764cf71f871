#!/usr/bin/python3
"""Reference MS-SSIM values for metrics_test.go (TestMSSSIMReference).

An independent NumPy implementation of compare_gan's multiscale_ssim
(google/compare_gan, compare_gan/metrics/image_similarity.py), written from
its definition, not from the Go code: a full 2-D Gaussian window built as a
softmax of -(i^2+j^2)/(2 sigma^2) (size min(11, h, w), sigma 1.5), 'VALID'
2-D filtering by explicit window sums, C1 = 0.01^2, C2 = 0.03^2 (data range
1), relu on cs and on the last ssim, weights (0.0448, 0.2856, 0.3001,
0.2363, 0.1333), and between scales np.pad(..., mode='symmetric') by the
remainder followed by 2x2 mean pooling (reshape). Float64 throughout.

The test images come from integer formulas that metrics_test.go repeats
exactly (value/255 as float32). Run with Debian's NumPy:

    /usr/bin/python3 training/metrics/testdata/msssim_ref.py
"""
import numpy as np

WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def blob(w, h, c, dy, dx):
    img = np.zeros((c, h, w), dtype=np.int64)
    r2 = (min(w, h) // 3) ** 2
    for ch in range(c):
        cy, cx = h * 2 // 5 + ch + dy, w // 2 + dx
        for i in range(h):
            for j in range(w):
                img[ch, i, j] = max(0, 255 - 255 * ((i - cy) ** 2 + (j - cx) ** 2) // r2)
    return img


def noise(w, h, c, seed):
    img = np.zeros((c, h, w), dtype=np.int64)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                img[ch, i, j] = (i * i * 31 + j * 17 + i * j * 7 + ch * 53 + seed * 101) % 256
    return img


def mix(w, h, c, seed):
    return (blob(w, h, c, 0, 0) + noise(w, h, c, seed)) // 2


def to_unit(img):
    # float32 division, as the Go test does, then float64 for the metric.
    return (img.astype(np.float32) / np.float32(255)).astype(np.float64)


def gauss2d(size, sigma):
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = coords ** 2
    g = -0.5 * (g[None, :] + g[:, None]) / sigma ** 2
    g = np.exp(g - g.max())
    return g / g.sum()


def filt_valid(img, k):
    s = k.shape[0]
    h, w = img.shape
    out = np.zeros((h - s + 1, w - s + 1))
    for i in range(s):
        for j in range(s):
            out += k[i, j] * img[i:i + h - s + 1, j:j + w - s + 1]
    return out


def ssim_cs(x, y):
    size = min(11, x.shape[0], x.shape[1])
    k = gauss2d(size, 1.5)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = filt_valid(x, k), filt_valid(y, k)
    lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    cov = filt_valid(x * y, k) - mx * my
    var = filt_valid(x * x + y * y, k) - mx ** 2 - my ** 2
    cs = (2 * cov + c2) / (var + c2)
    return np.mean(lum * cs), np.mean(cs)


def down(x):
    h, w = x.shape
    x = np.pad(x, ((0, h % 2), (0, w % 2)), mode='symmetric')
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def msssim_channel(x, y):
    vals = []
    for s in range(5):
        if s > 0:
            x, y = down(x), down(y)
        ssim, cs = ssim_cs(x, y)
        vals.append(max(cs, 0.0) if s < 4 else max(ssim, 0.0))
    return float(np.prod(np.array(vals) ** WEIGHTS))


def msssim(a, b):
    return float(np.mean([msssim_channel(a[ch], b[ch]) for ch in range(a.shape[0])]))


CASES = [
    ("blob vs mix 28x28", blob(28, 28, 1, 0, 0), mix(28, 28, 1, 1)),
    ("blob vs blob shifted 28x28", blob(28, 28, 1, 0, 0), blob(28, 28, 1, 1, 2)),
    ("mix vs blob 32x32x3", mix(32, 32, 3, 3), blob(32, 32, 3, 0, 0)),
    ("mix vs mix 13x9x2", mix(13, 9, 2, 4), mix(13, 9, 2, 5)),
    # Negative cs at the finest scale: clamped, so the score is 0.
    ("noise vs noise 28x28", noise(28, 28, 1, 1), noise(28, 28, 1, 2)),
    # Negative cs at coarse scales (3x4 and 2x2 in channel 0): both channels 0.
    ("noise vs mix 13x9x2", noise(13, 9, 2, 4), mix(13, 9, 2, 5)),
]

if __name__ == "__main__":
    for name, a, b in CASES:
        print(f"{name}: {msssim(to_unit(a), to_unit(b)):.17g}")
