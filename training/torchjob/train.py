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
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def g_loss(kind, fake):
    if kind == "hinge":
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


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
    updated D; Adam (D with its own learning rate); G's weight average."""

    ema_prefix = "generator_ema"

    def __init__(self, job, device, world, rank):
        super().__init__(job, device, world, rank)
        self.gen, self.disc = self.model.generator, self.model.discriminator
        self.g = DDP(self.gen) if world > 1 else self.gen
        self.d = DDP(self.disc) if world > 1 else self.disc
        named = list(self.model.named_parameters())
        gp = [(n, p) for n, p in named if n.startswith("generator.")]
        self.opt_g = self.adam("optim_g", gp, self.cfg["lr"])
        self.opt_d = self.adam("optim_d", [(n, p) for n, p in named if n.startswith("discriminator.")],
                               self.cfg.get("d_lr") or self.cfg["lr"])
        self.average(gp)

    @staticmethod
    def scale(images):
        return images.float() / 127.5 - 1  # Gen Studio's GAN pixel scale

    def step(self, real, z, step, total):
        loss = self.cfg.get("loss") or "ns"
        lr = self.schedule(step, total)
        fake = self.g(z)
        # D on the real batch and the detached fakes, in one forward.
        out = self.d(torch.cat([real, fake.detach()]))
        ld = d_loss(loss, out[:len(real)], out[len(real):])
        self.opt_d.zero_grad(set_to_none=True)
        ld.backward()
        self.clip(self.disc.parameters())
        self.opt_d.step()
        # G through the updated D (D's own module: its gradients are not
        # wanted, and every rank holds the same D).
        lg = g_loss(loss, self.disc(fake))
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
        logits, mu, logvar = self.net(x, eps)
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


def main():
    job = json.load(open(os.path.join(HERE, "job.json")))
    if job["format"] != "genstudio-torch-job-1" or (job["family"], job["arch"]) not in (("gan", "mlp"), ("gan", "conv"), ("vae", "mlp"), ("vae", "conv")):
        sys.exit(f"this train.py trains the GANs and the VAEs, not {job['family']}/{job['arch']}")
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
    tr = (VAETrainer if job["family"] == "vae" else Trainer)(job, device, world, rank)
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
    flip = run["Flip"]
    gen = torch.Generator().manual_seed(args.seed * 1000003 + rank)
    preview_z = torch.randn(64, job["config"]["latent"], generator=torch.Generator().manual_seed(args.seed)).to(device)
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
        z = torch.randn(tr.local_batch, job["config"]["latent"], generator=gen)
        losses, lr = tr.step(real.to(device), z.to(device), step, args.steps)
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
