#!/usr/bin/env python3
"""Trains a Gen Studio project's model with PyTorch, on one process or many.

Written by `genstudio export torch`; it imports nothing of Gen Studio. Run it
with torchrun, which starts one process per GPU (or CPU worker):

    torchrun --standalone --nproc_per_node 2 train.py --steps 20

Each process trains on its share of every batch (DistributedDataParallel, a
DistributedSampler; NCCL on GPUs, gloo on CPUs), so N processes train the
same recipe as one. Rank 0 writes the run folder in Gen Studio's layout:
config.json, metrics.jsonl, status.json, samples/preview-%08d.png and
checkpoints/step-%08d.safetensors with Gen Studio's tensor names and
metadata. Gen Studio opens that folder like one of its own runs, and its
checkpoints go on training in the studio (or here, with --resume).
"""
import argparse
import copy
import datetime
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from model import Model

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINT_FORMAT = "genstudio-checkpoint-1"
GUTTER = 2  # pixels between the cells of a preview grid, as Gen Studio's


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_safetensors(path, tensors, meta):
    """Writes F32 and I64 tensors and string metadata as a safetensors file."""
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.int64:
            dtype, data = "I64", t.numpy().astype("<i8").tobytes()
        else:
            dtype, data = "F32", t.float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    write_atomic(path, struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    """Reads a safetensors file of F32 and I64 tensors: (tensors, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        if e["dtype"] not in ("F32", "I64"):
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}")
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4" if e["dtype"] == "F32" else "<i8")
        out[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return out, meta


def write_png(path, img):
    """Writes an 8-bit RGB image (H×W×3 uint8) as a PNG."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    write_atomic(path, png)


def grid(samples, n, cols, width, height, channels):
    """Lays samples (n × values in [0, 1], planar channels) out as Gen Studio's grids."""
    rows = (n + cols - 1) // cols
    img = np.empty((rows * height + (rows + 1) * GUTTER, cols * width + (cols + 1) * GUTTER, 3), np.uint8)
    img[:] = (40, 40, 48)
    px = np.clip(samples.reshape(n, channels, height, width) * 255 + 0.5, 0, 255).astype(np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = GUTTER + r * (height + GUTTER), GUTTER + c * (width + GUTTER)
        cell = px[k].transpose(1, 2, 0)
        img[y:y + height, x:x + width] = cell if channels >= 3 else np.repeat(cell, 3, axis=2)
    return img


def lr_factor(schedule, warm, step, total):
    """Gen Studio's learning-rate schedule at step (0-based) of total steps."""
    if schedule == "warmup" and warm == 0:
        warm = math.ceil(0.05 * total)
    if step < warm:
        return (step + 1) / warm
    if total <= warm or schedule not in ("cosine", "linear"):
        return 1.0
    p = min(1.0, (step - warm) / (total - warm))
    return 0.5 * (1 + math.cos(math.pi * p)) if schedule == "cosine" else 1 - p


def d_loss(kind, real, fake):
    if kind == "wgan":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def g_loss(kind, fake):
    if kind in ("hinge", "wgan"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def augment_draws(n, shape, gen):
    """DiffAugment's parameters for n images (rows of brightness, saturation,
    contrast, dx, dy and the cutout corner cx, cy), as Gen Studio draws them:
    U(-1/2, 1/2), U(0, 2), U(1/2, 3/2), shifts up to 1/8 of the side, a
    square of half the side inside the image."""
    w, h, _ = shape
    sx, sy, cut = int(w * 0.125 + 0.5), int(h * 0.125 + 0.5), int(min(h, w) * 0.5 + 0.5)
    u = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    ints = [torch.randint(-sx, sx + 1, (n,), generator=gen), torch.randint(-sy, sy + 1, (n,), generator=gen),
            torch.randint(0, w + 1 - cut, (n,), generator=gen), torch.randint(0, h + 1 - cut, (n,), generator=gen)]
    return torch.cat([u[:, :1] - 0.5, 2 * u[:, 1:2], u[:, 2:] + 0.5] + [i[:, None].double() for i in ints], 1)


def diff_augment(x, d, shape):
    """DiffAugment's colour, translation and cutout of flat rows x (values in
    [-1, 1]) with the draws d (augment_draws); linear in x, so gradients
    flow through it."""
    w, h, c = shape
    n = len(x)
    d = d.to(x.device)
    x = x.view(n, c, h, w)
    col = lambda k: d[:, k].to(x.dtype)[:, None, None, None]
    x = x + col(0)
    if c > 1:
        m = x.mean(1, keepdim=True)
        x = (x - m) * col(1) + m
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * col(2) + m
    dx, dy, cx, cy = (d[:, k].long() for k in range(3, 7))
    cut = int(min(h, w) * 0.5 + 0.5)
    r = torch.arange(h, device=x.device)[None, :]
    q = torch.arange(w, device=x.device)[None, :]
    sr, sq = r - dy[:, None], q - dx[:, None]  # the source pixel of each output pixel
    inside = ((sr >= 0) & (sr < h))[:, None, :, None] & ((sq >= 0) & (sq < w))[:, None, None, :]
    cutout = ((r >= cy[:, None]) & (r < cy[:, None] + cut))[:, None, :, None] & \
        ((q >= cx[:, None]) & (q < cx[:, None] + cut))[:, None, None, :]
    out = x[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None],
            sr.clamp(0, h - 1)[:, None, :, None], sq.clamp(0, w - 1)[:, None, None, :]]
    return (out * (inside & ~cutout).to(x.dtype)).reshape(n, -1)


class Recipe:
    """What the recipes share: the model, the per-process batch, Adam's
    moments and the weights' average under Gen Studio's names, the LR
    schedule, clipping, and the mean of the losses over the processes."""

    ema_prefix = "ema"

    def __init__(self, job, device, world, rank):
        self.job, self.cfg, self.device, self.world, self.rank = job, job["config"], device, world, rank
        if self.cfg["batch"] % world:
            sys.exit(f"the batch ({self.cfg['batch']}) must be a multiple of the processes ({world})")
        self.local_batch = self.cfg["batch"] // world
        self.model = Model().to(device)
        self.optims = []  # (state name prefix, optimizer, base learning rate, [(parameter name, parameter)])
        self.ema_params = []  # the averaged parameters, by their state_dict names
        self.ema = None
        self.opt_step = 0

    def adam(self, prefix, named, lr):
        named = list(named)
        opt = torch.optim.Adam([p for _, p in named], lr=lr, betas=(self.cfg["beta1"], self.cfg["beta2"]))
        self.optims.append((prefix, opt, lr, named))
        return opt

    def average(self, named):
        self.ema_params = list(named)
        if self.cfg.get("ema", 0) > 0:
            self.ema = {n: p.detach().clone() for n, p in self.ema_params}

    def state(self):
        out = dict(self.model.state_dict())
        for prefix, opt, _, named in self.optims:
            for n, p in named:
                st = opt.state.get(p, {})
                out[f"{prefix}.{n}.exp_avg"] = st.get("exp_avg", torch.zeros_like(p))
                out[f"{prefix}.{n}.exp_avg_sq"] = st.get("exp_avg_sq", torch.zeros_like(p))
        if self.ema is not None:
            for n, t in self.ema.items():
                out[f"{self.ema_prefix}.{n}"] = t
        return out

    def load_state(self, tensors, opt_step):
        self.model.load_state_dict({n: tensors[n] for n in self.model.state_dict()}, strict=True)
        self.opt_step = opt_step
        for prefix, opt, _, named in self.optims:
            for n, p in named:
                opt.state[p] = {"step": torch.tensor(float(opt_step)),
                                "exp_avg": tensors[f"{prefix}.{n}.exp_avg"].to(self.device).clone(),
                                "exp_avg_sq": tensors[f"{prefix}.{n}.exp_avg_sq"].to(self.device).clone()}
        if self.ema is not None:
            for n in self.ema:
                self.ema[n] = tensors[f"{self.ema_prefix}.{n}"].to(self.device).clone()

    def draw(self, n, gen, labels):
        """The step's noise: z for a GAN, the reparameterisation's ε for a VAE."""
        return torch.randn(n, self.job["noise_dim"], generator=gen)

    def schedule(self, step, total):
        """Sets every learning rate for step of total; returns the first."""
        f = lr_factor(self.cfg.get("lr_schedule") or "constant", self.cfg.get("lr_warmup", 0), step, total)
        for _, opt, lr, _ in self.optims:
            for grp in opt.param_groups:
                grp["lr"] = lr * f
        return self.optims[0][2] * f

    def clip(self, params):
        if self.cfg.get("clip", 0) > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg["clip"])

    def stepped(self, losses):
        """After the updates: the average (Gen Studio's warm-up formula) and
        the losses, averaged over the processes."""
        self.opt_step += 1
        if self.ema is not None:
            b = min(self.cfg["ema"], (1 + self.opt_step) / (10 + self.opt_step))
            with torch.no_grad():
                for n, p in self.ema_params:
                    self.ema[n].mul_(b).add_(p.detach(), alpha=1 - b)
        losses = torch.stack([x.detach() for x in losses])
        if self.world > 1:
            dist.all_reduce(losses)
            losses /= self.world
        return [float(x) for x in losses]

    def averaged(self):
        """A copy of the model with the average's weights (and the live
        batch-norm statistics), or the model itself without an average."""
        if self.ema is None:
            return self.model
        m = copy.deepcopy(self.model)
        m.load_state_dict(self.ema, strict=False)
        return m


class Trainer(Recipe):
    """The GAN recipe, step for step as Gen Studio's: fake = G(z) once,
    a D step on the real batch and fake.detach(), then a G step through the
    updated D; Adam (D with its own learning rate); G's weight average. D
    judges PacGAN packs of `pack` images (consecutive images of the batch,
    stacked), each image augmented first with DiffAugment (drawn afresh for
    the real batch, the fakes of D's step and those of G's); D's loss takes
    the R1 penalty at the real inputs and WGAN-GP's at interpolates
    (through torch.autograd.grad, so with a penalty D is not wrapped in DDP
    and its gradients are averaged by hand), and the G loss takes MSGAN's
    mode-seeking term over the batch's two halves. Under DDP both act on each process's share of the
    batch, as the minibatch standard deviation does: with more than one
    process they are an approximation of the one-process recipe."""

    ema_prefix = "generator_ema"

    def __init__(self, job, device, world, rank):
        super().__init__(job, device, world, rank)
        self.gen, self.disc = self.model.generator, self.model.discriminator
        self.pack = self.cfg.get("pack") or 1
        self.ms = self.cfg.get("ms_weight") or 0
        self.diffaug = bool(self.cfg.get("diff_augment"))
        self.r1, self.gp = self.cfg.get("r1") or 0, self.cfg.get("gp") or 0
        penalties = self.r1 or self.gp
        if self.local_batch % self.pack or (self.ms and self.local_batch % 2):
            sys.exit(f"each process's batch ({self.local_batch}) must split into PacGAN packs of {self.pack}"
                     + (" and into two halves for mode seeking" if self.ms else ""))
        self.g = DDP(self.gen) if world > 1 else self.gen
        # DDP cannot differentiate a gradient (torch.autograd.grad): with a
        # penalty D's gradients are averaged over the processes by hand.
        self.d = DDP(self.disc) if world > 1 and not penalties else self.disc
        self.reduce_d = world > 1 and penalties
        named = list(self.model.named_parameters())
        gp = [(n, p) for n, p in named if n.startswith("generator.")]
        self.opt_g = self.adam("optim_g", gp, self.cfg["lr"])
        self.opt_d = self.adam("optim_d", [(n, p) for n, p in named if n.startswith("discriminator.")],
                               self.cfg.get("d_lr") or self.cfg["lr"])
        self.average(gp)

    @staticmethod
    def scale(images):
        return images.float() / 127.5 - 1  # Gen Studio's GAN pixel scale

    def packed(self, x):
        """PacGAN: rows of `pack` consecutive images."""
        return x.reshape(len(x) // self.pack, -1) if self.pack > 1 else x

    def draw(self, n, gen, labels):
        """z, and the step's other draws: WGAN-GP's ε per image, then
        DiffAugment's three augmentations."""
        z = super().draw(n, gen, labels)
        if not (self.gp or self.diffaug):
            return z
        out = {"z": z}
        if self.gp:
            out["eps"] = torch.rand(n, generator=gen, dtype=torch.float64)
        if self.diffaug:
            out["augs"] = [augment_draws(n, self.job["shape"], gen) for _ in range(3)]
        return out

    def augmented(self, x, augs, k):
        return diff_augment(x, augs[k], self.job["shape"]) if augs is not None else x

    def sq_norms(self, out, x):
        """‖∂ΣD/∂x‖² per D input (a pack of images), differentiable."""
        g, = torch.autograd.grad(out.sum(), x, create_graph=True)
        return g.reshape(len(g) // self.pack, -1).pow(2).sum(1)

    def no_power_iteration(self, on):
        """Spectral norm steps its power iteration once per graph in Gen
        Studio: D's extra forward at WGAN-GP's interpolates reuses u, v."""
        for m in self.disc.modules():
            for hook in m._forward_pre_hooks.values():
                if type(hook).__name__ == "SpectralNorm":
                    if on:
                        hook.saved_iterations, hook.n_power_iterations = hook.n_power_iterations, 0
                    else:
                        hook.n_power_iterations = hook.saved_iterations

    def step(self, real, z, step, total):
        loss = self.cfg.get("loss") or "ns"
        lr = self.schedule(step, total)
        draws = z if isinstance(z, dict) else {"z": z}
        z, augs = draws["z"].to(self.device), draws.get("augs")
        fake = self.g(z)
        # D on the real batch and the detached fakes, in one forward (the
        # minibatch standard deviation keeps the two halves apart).
        real_in = self.augmented(real, augs, 0)
        fake_in = self.augmented(fake.detach(), augs, 1)
        if self.r1:
            real_in = real_in.detach().requires_grad_(True)
        if hasattr(self.disc, "std_groups"):
            self.disc.std_groups = 2
        out = self.d(torch.cat([self.packed(real_in), self.packed(fake_in)]))
        if hasattr(self.disc, "std_groups"):
            self.disc.std_groups = 1
        nr = len(real_in) // self.pack
        ld = d_loss(loss, out[:nr], out[nr:])
        if self.r1:  # R1: γ/2·E‖∇D(x)‖² on the real images
            ld = ld + self.r1 / 2 * self.sq_norms(out[:nr], real_in).mean()
        if self.gp:  # WGAN-GP: λ·E(‖∇D(x̂)‖ − 1)², x̂ = x_fake + ε(x_real − x_fake)
            eps = draws["eps"].to(self.device, real_in.dtype)[:, None]
            xh = (fake_in + eps * (real_in.detach() - fake_in)).requires_grad_(True)
            self.no_power_iteration(True)
            lh = self.disc(self.packed(xh))
            self.no_power_iteration(False)
            ld = ld + self.gp * ((self.sq_norms(lh, xh) + 1e-12).sqrt() - 1).pow(2).mean()
        self.opt_d.zero_grad(set_to_none=True)
        ld.backward()
        if self.reduce_d:
            for p in self.disc.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world
        self.clip(self.disc.parameters())
        self.opt_d.step()
        # G through the updated D (D's own module: its gradients are not
        # wanted, and every rank holds the same D).
        lg = g_loss(loss, self.disc(self.packed(self.augmented(fake, augs, 2))))
        if self.ms:  # MSGAN: weight / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5)
            h = len(fake) // 2
            r = (fake[:h] - fake[h:]).abs().mean() / (z[:h] - z[h:]).abs().mean()
            lg = lg + self.ms / (r + 1e-5)
        self.opt_g.zero_grad(set_to_none=True)
        lg.backward()
        self.clip(self.gen.parameters())
        self.opt_g.step()
        self.disc.zero_grad(set_to_none=True)
        return self.stepped([ld, lg]), lr

    @torch.no_grad()
    def sample(self, z):
        gen = self.averaged().generator
        gen.eval()
        x = gen(z)
        gen.train()
        return ((x + 1) / 2).clamp(0, 1).cpu().numpy()


def vae_encode(m, x):
    """mu and logvar of x: the MLP VAE's fc1 → fc21, fc22, or the conv VAE's
    encoder → fc_mu, fc_logvar."""
    if hasattr(m, "encoder"):
        h = m.encoder(x)
        return m.fc_mu(h), m.fc_logvar(h)
    h = F.relu(m.fc1(x))
    return m.fc21(h), m.fc22(h)


def vae_decode(m, z):
    """The decoder's logits of z (flat rows)."""
    if hasattr(m, "decoder"):
        return m.decoder(z)
    return m.fc4(F.relu(m.fc3(z)))


class VAENet(torch.nn.Module):
    """A VAE's pass, as Gen Studio's: encode, reparameterise, decode."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x, eps):
        mu, logvar = vae_encode(self.m, x)
        z = mu + eps * torch.exp(0.5 * logvar)
        return vae_decode(self.m, z), mu, logvar


class VAETrainer(Recipe):
    """The VAEs' recipe, step for step as Gen Studio's: the summed loss
    BCE(sigmoid(logits), x) + w·KL with w = β·min(1, step/warm-up), free
    bits per latent dimension, Adam and the weights' average."""

    def __init__(self, job, device, world, rank):
        super().__init__(job, device, world, rank)
        net = VAENet(self.model)
        self.net = DDP(net) if world > 1 else net
        named = list(self.model.named_parameters())
        self.opt = self.adam("optim", named, self.cfg["lr"])
        self.average(named)

    @staticmethod
    def scale(images):
        return images.float() / 255  # Gen Studio's VAE pixel scale

    def step(self, x, eps, step, total):
        cfg = self.cfg
        lr = self.schedule(step, total)
        beta, warm = cfg.get("kl_beta", 1), cfg.get("kl_warmup_steps", 0)
        w = beta * min(1, self.opt_step / warm) if warm > 0 else beta
        logits, mu, logvar = self.net(x, eps.to(self.device))
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        t = mu ** 2 + logvar.exp() - logvar - 1
        kl = 0.5 * t.sum()
        fb = cfg.get("free_bits", 0)
        klcost = kl
        if fb > 0:  # Σ_j max(fb·b, KL_j), KL_j summed over this process's images
            klcost = F.relu(0.5 * t.sum(0) - fb * len(x)).sum() + fb * len(x) * t.shape[1]
        loss = recon + w * klcost
        self.opt.zero_grad(set_to_none=True)
        (loss * self.world).backward()  # DDP averages: this gives the whole batch's summed gradient
        self.clip(self.model.parameters())
        self.opt.step()
        return self.stepped([loss / len(x), recon / len(x), kl / len(x)]), lr

    @torch.no_grad()
    def sample(self, z):
        m = self.averaged()
        return torch.sigmoid(vae_decode(m, z * self.cfg.get("temperature", 1))).cpu().numpy()


def ddpm_betas(schedule, T):
    """Gen Studio's noise schedules in float64: linear 1e-4..0.02, or the
    cosine schedule of Nichol & Dhariwal (s = 0.008, β capped at 0.999)."""
    if schedule == "linear":
        return torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    if schedule != "cosine":
        sys.exit(f"unknown noise schedule {schedule!r}")

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float64)


def timestep_embedding(T, dim):
    """The T × dim table of sinusoidal embeddings [sin(t·f_k), cos(t·f_k)],
    f_k = exp(-ln(10000)·k/(dim/2)), rounded as Gen Studio rounds them."""
    half = dim // 2
    e = (torch.tensor(-math.log(10000.0), dtype=torch.float32) * torch.arange(half, dtype=torch.float32)) / half
    f = torch.exp(e.double()).float()
    arg = (torch.arange(T, dtype=torch.float32)[:, None] * f[None, :]).double()
    return torch.cat([torch.sin(arg), torch.cos(arg)], 1).float()


def eps_net(m, x, emb, shape):
    """The noise predictor: the MLP (temb, inp, mid, out) or the U-Net."""
    if not hasattr(m, "inc"):
        e = F.silu(m.temb(emb))
        h1 = F.silu(m.inp(x) + e)
        h2 = h1 + F.silu(m.mid(h1) + e)
        return m.out(h2)
    w, h, c = shape
    x = x.view(-1, c, h, w)
    e = F.silu(m.temb(emb))
    h1 = m.down1(m.inc(x), e)
    h2 = m.down2(m.pool1(h1), e)
    y = m.mid(m.pool2(h2), e)
    y = m.dec2(torch.cat([m.up2(y), h2], 1), e)
    y = m.dec1(torch.cat([m.up1(y), h1], 1), e)
    return m.out(F.silu(y)).flatten(1)


class EpsNet(torch.nn.Module):
    """The noise predictor as one module, for DistributedDataParallel."""

    def __init__(self, m, shape):
        super().__init__()
        self.m, self.shape = m, shape

    def forward(self, x, emb):
        return eps_net(self.m, x, emb, self.shape)


class DDPMTrainer(Recipe):
    """The diffusion recipe, step for step as Gen Studio's: t uniform in
    0..T-1 and ε ~ N(0, I) per image, x_t = √ᾱ_t·x_0 + √(1-ᾱ_t)·ε in
    float32, MSE(ε_θ(x_t, t), ε); a conditional model sees a one-hot of the
    label (or of "no label", with label dropout) beside the time embedding.
    Adam and the denoiser's weight average; previews with the configured
    sampler (DDPM or DDIM, steps, η, temperature, guidance)."""

    def __init__(self, job, device, world, rank):
        super().__init__(job, device, world, rank)
        cfg = self.cfg
        self.T, self.classes = cfg["t"], cfg.get("classes", 0)
        betas = ddpm_betas(cfg["schedule"], self.T)
        self.betas, self.abar = betas, torch.cumprod(1 - betas, 0)
        self.betas32, self.alphas32 = betas.float(), (1 - betas).float()
        self.sqrt_abar32 = self.abar.sqrt().float().to(device)
        self.sqrt_1m_abar32 = (1 - self.abar).sqrt().float().to(device)
        self.temb = timestep_embedding(self.T, cfg["temb"]).to(device)
        net = EpsNet(self.model, job["shape"])
        self.net = DDP(net) if world > 1 else net
        named = list(self.model.named_parameters())
        self.opt = self.adam("optim", named, cfg["lr"])
        self.average(named)

    @staticmethod
    def scale(images):
        return images.float() / 127.5 - 1  # Gen Studio's diffusion pixel scale

    def embedding(self, ts, labels):
        """The predictor's embedding input for timesteps ts and labels (−1: none)."""
        e = self.temb[ts]
        if self.classes > 0:
            lab = torch.where((labels >= 0) & (labels < self.classes), labels, torch.full_like(labels, self.classes))
            e = torch.cat([e, F.one_hot(lab, self.classes + 1).to(e.dtype)], 1)
        return e

    def draw(self, n, gen, labels):
        """The step's draws: timesteps, noise, and the labels kept."""
        ts = torch.randint(self.T, (n,), generator=gen)
        eps = torch.randn(n, self.job["noise_dim"], generator=gen)
        keep = torch.rand(n, generator=gen) >= self.cfg.get("label_dropout", 0)
        lab = torch.where(keep, labels, torch.full_like(labels, -1)) if self.classes > 0 else torch.full_like(labels, -1)
        return ts, eps, lab

    def step(self, x0, noise, step, total):
        ts, eps, lab = (v.to(self.device) for v in noise)
        lr = self.schedule(step, total)
        xt = self.sqrt_abar32[ts][:, None] * x0 + self.sqrt_1m_abar32[ts][:, None] * eps
        loss = F.mse_loss(self.net(xt, self.embedding(ts, lab)), eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.clip(self.model.parameters())
        self.opt.step()
        return self.stepped([loss]), lr

    def plan(self):
        """The sampler's reverse steps, first to last, as Gen Studio plans them."""
        cfg, T = self.cfg, self.T
        k = cfg.get("sample_steps") or T
        ts = [(i + 1) * T // k - 1 for i in range(k)]
        tau = cfg.get("temperature") or 1
        f32 = lambda v: float(np.float32(v))
        out = []
        for i in reversed(range(k)):
            t = ts[i]
            prev = ts[i - 1] if i > 0 else -1
            ap = float(self.abar[prev]) if i > 0 else 1.0
            at = float(self.abar[t])
            if cfg["sampler"] == "ddpm":
                beta, alpha = float(self.betas32[t]), float(self.alphas32[t])
                if prev != t - 1:  # respaced
                    beta, alpha = f32(1 - at / ap), f32(at / ap)
                c1 = f32(np.float32(beta) / np.float32(self.sqrt_1m_abar32[t].item()))
                sigma = f32(math.sqrt(beta)) if i > 0 else 0.0
                out.append((t, True, c1, f32(math.sqrt(alpha)), f32(sigma * tau)))
            else:
                sigma = cfg.get("eta", 0) * math.sqrt((1 - ap) / (1 - at)) * math.sqrt(max(0, 1 - at / ap))
                cx = math.sqrt(ap / at)
                ce = math.sqrt(max(0, 1 - ap - sigma * sigma)) - math.sqrt(ap) * math.sqrt(1 - at) / math.sqrt(at)
                out.append((t, False, f32(cx), f32(ce), f32(f32(sigma) * tau)))
        return out

    def predict(self, m, x, t, labels):
        """ε at timestep t, with classifier-free guidance for a conditional model."""
        ts = torch.full((len(x),), t, dtype=torch.int64, device=x.device)
        none = torch.full_like(ts, -1)
        s = self.cfg.get("guidance", 1)
        if self.classes == 0 or s == 0:
            return eps_net(m, x, self.embedding(ts, none), self.job["shape"])
        cond = eps_net(m, x, self.embedding(ts, labels), self.job["shape"])
        if s == 1:
            return cond
        unc = eps_net(m, x, self.embedding(ts, none), self.job["shape"])
        return unc + s * (cond - unc)

    @torch.no_grad()
    def sample(self, z, noises=None):
        """Images in [0, 1] from x_T = z (times the temperature); noises, when
        given, are the per-step noises in order, else a seeded stream's."""
        m = self.averaged()
        tau = self.cfg.get("temperature") or 1
        x = z.to(self.device) * tau if tau != 1 else z.to(self.device).clone()
        labels = torch.arange(len(x), device=x.device) % max(1, self.classes)
        gen = torch.Generator().manual_seed(0x6a09e667)
        for t, ancestral, a, b, sigma in self.plan():
            eps = self.predict(m, x, t, labels)
            x = (x - a * eps) / b if ancestral else a * x + b * eps
            if sigma > 0:
                noise = noises.pop(0) if noises is not None else torch.randn(x.shape, generator=gen)
                x = x + sigma * noise.to(x.device)
        return ((x.clamp(-1, 1) + 1) / 2).cpu().numpy()


TRAINERS = {"gan": Trainer, "vae": VAETrainer, "ddpm": DDPMTrainer}


def main():
    job = json.load(open(os.path.join(HERE, "job.json")))
    if job["format"] != "genstudio-torch-job-1" or job["family"] not in TRAINERS:
        sys.exit(f"this train.py trains Gen Studio's GANs, VAEs and diffusion models, not {job['family']}")
    run = job["run"]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=run["Steps"], help="train until this step")
    ap.add_argument("--out", default="", help="the run folder (default runs/<time>)")
    ap.add_argument("--resume", default="", help="a Gen Studio checkpoint to go on from")
    ap.add_argument("--seed", type=int, default=run["Seed"])
    ap.add_argument("--preview-every", type=int, default=run["PreviewEvery"] or 100)
    ap.add_argument("--checkpoint-every", type=int, default=run["CheckpointEvery"])
    ap.add_argument("--keep", type=int, default=run["Keep"])
    ap.add_argument("--backend", default="", help="nccl or gloo (default: nccl with CUDA, else gloo)")
    args = ap.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if world > 1:
        dist.init_process_group(args.backend or ("nccl" if cuda else "gloo"))
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    tr = TRAINERS[job["family"]](job, device, world, rank)
    start, info = 0, None
    if args.resume:
        tensors, meta = read_safetensors(args.resume)
        if meta.get("format") != CHECKPOINT_FORMAT:
            sys.exit(f"{args.resume} is not a Gen Studio checkpoint")
        info = json.loads(meta["genstudio"])
        tr.load_state(tensors, info.get("opt_step", info["step"]))
        start = info["step"]

    out = args.out or os.path.join(HERE, "runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    ckdir, samples = os.path.join(out, "checkpoints"), os.path.join(out, "samples")
    w, h, c = job["shape"]
    if rank == 0:
        os.makedirs(ckdir, exist_ok=True)
        os.makedirs(samples, exist_ok=True)
        write_atomic(os.path.join(out, "config.json"), json.dumps(
            {"family": job["family"], "arch": job["arch"], "config": job["config"], "dataset": job["dataset"],
             "steps": args.steps, "seed": args.seed, "processes": world, "backend": args.backend or
             ("nccl" if cuda else "gloo") if world > 1 else "none"}, indent=2).encode())

    images = torch.from_numpy(np.load(os.path.join(HERE, "data", "images.npy")))
    data = tr.scale(images)
    labels = torch.from_numpy(np.load(os.path.join(HERE, "data", "labels.npy")))
    flip = run["Flip"]
    gen = torch.Generator().manual_seed(args.seed * 1000003 + rank)
    preview_z = torch.randn(64, job["noise_dim"], generator=torch.Generator().manual_seed(args.seed)).to(device)
    metrics = open(os.path.join(out, "metrics.jsonl"), "a") if rank == 0 else None
    t0 = time.time()

    def status(state, step):
        if rank == 0:
            write_atomic(os.path.join(out, "status.json"), json.dumps(
                {"state": state, "step": step, "steps": args.steps, "pid": os.getpid(), "loss_names": job["loss_names"],
                 "updated": datetime.datetime.now(datetime.timezone.utc).isoformat()}).encode())

    def preview(step):
        if rank == 0:
            x = tr.sample(preview_z)
            write_png(os.path.join(samples, f"preview-{step:08d}.png"), grid(x, 64, 8, w, h, c))

    def checkpoint(step):
        if rank != 0:
            return
        meta = {"family": job["family"], "config": job["config"], "step": step, "opt_step": tr.opt_step,
                "seed": args.seed, "dataset": job["dataset"],
                "run": {"steps": args.steps, "preview_every": args.preview_every,
                        "checkpoint_steps": args.checkpoint_every, "keep": args.keep, "flip": flip},
                "saved": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        write_safetensors(os.path.join(ckdir, f"step-{step:08d}.safetensors"), tr.state(),
                          {"format": CHECKPOINT_FORMAT, "genstudio": json.dumps(meta)})
        if args.keep > 0:
            old = sorted(f for f in os.listdir(ckdir) if f.startswith("step-") and f.endswith(".safetensors"))
            for f in old[:-args.keep]:
                os.remove(os.path.join(ckdir, f))

    status("running", start)
    if start == 0:
        preview(0)
    epoch, order, pos = 0, None, 0
    n = len(data)
    for step in range(start, args.steps):
        # This rank's share of the step's batch: a permutation per epoch,
        # the same on every rank (as DistributedSampler), cut into batches.
        if order is None or pos + tr.cfg["batch"] > n:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed + epoch))
            epoch, pos = epoch + 1, 0
        idx = order[pos + rank * tr.local_batch: pos + (rank + 1) * tr.local_batch]
        pos += tr.cfg["batch"]
        real = data[idx]
        if flip:
            m = torch.rand(len(real), generator=gen) < 0.5
            real[m] = real[m].reshape(-1, c, h, w).flip(-1).reshape(int(m.sum()), -1)
        noise = tr.draw(tr.local_batch, gen, labels[idx])
        losses, lr = tr.step(real.to(device), noise, step, args.steps)
        if not all(math.isfinite(v) for v in losses):
            status("diverged", step)
            sys.exit(f"training diverged at step {step + 1}: losses {losses}")
        done = step + 1
        if rank == 0:
            metrics.write(json.dumps({"step": done, "time": time.time() - t0, "losses": losses, "lr": lr,
                                      "steps_per_s": (done - start) / max(1e-9, time.time() - t0)}) + "\n")
            metrics.flush()
        if done % args.preview_every == 0 or done == args.steps:
            preview(done)
        if (args.checkpoint_every and done % args.checkpoint_every == 0) or done == args.steps:
            checkpoint(done)
            status("running" if done < args.steps else "finished", done)
    if rank == 0:
        print(f"done at step {args.steps}: {out}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
