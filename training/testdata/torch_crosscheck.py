"""Loads a Gen Studio checkpoint into the PyTorch reference module and
compares its outputs with Gen Studio's for the same inputs.

Usage: torch_crosscheck.py --bench DIR --family gan|vae|ddpm [--arch mlp|conv]
         --ckpt FILE --input FILE --n N [--t FILE] --expect FILE [--tol 1e-4]
Every module of the model (for the GANs, generator and discriminator) loads
the checkpoint with load_state_dict(strict=True); the generator, decoder or
noise predictor then runs in eval mode on the input.
Inputs and expectations are raw little-endian float32 (t: int32). Prints one
JSON line; exits 1 when the largest difference exceeds --tol.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        dt = {"F32": "<f4", "I64": "<i8"}.get(v["dtype"])
        if dt is None:
            raise SystemExit("tensor %s has dtype %s" % (k, v["dtype"]))
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).copy().reshape(v["shape"]))
    return out, header.get("__metadata__", {})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=True)
    p.add_argument("--family", required=True)
    p.add_argument("--arch", default="mlp")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--t")
    p.add_argument("--expect", required=True)
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    sys.path.insert(0, a.bench)
    torch.set_num_threads(1)
    tensors, meta = read_safetensors(a.ckpt)
    x = torch.from_numpy(np.fromfile(a.input, dtype="<f4").reshape(a.n, -1))
    def part(prefix):
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    weights = {k: v for k, v in tensors.items() if not k.startswith("optim")}
    with torch.no_grad():
        if a.arch == "conv" and a.family == "gan":
            import torch_dcgan_mnist as ref
            model = ref.Generator()
            model.load_state_dict(part("generator."), strict=True)
            ref.Discriminator().load_state_dict(part("discriminator."), strict=True)
            model.eval()
            out = (model(x) + 1) / 2
            sd = {k: v for k, v in weights.items()}
        elif a.arch == "conv" and a.family == "vae":
            import torch_convvae_mnist as ref
            model = ref.ConvVAE()
            sd = weights
            model.load_state_dict(sd, strict=True)
            model.eval()
            out = torch.sigmoid(model.decoder(x)).reshape(a.n, -1)
        elif a.arch == "conv" and a.family == "ddpm":
            import torch_unet_mnist as ref
            model = ref.UNet()
            sd = weights
            model.load_state_dict(sd, strict=True)
            model.eval()
            t = torch.from_numpy(np.fromfile(a.t, dtype="<i4").astype(np.int64))
            out = model(x.reshape(a.n, 1, ref.SIDE, ref.SIDE), t).reshape(a.n, -1)
        elif a.arch != "mlp":
            raise SystemExit("unknown arch " + a.arch)
        elif a.family == "gan":
            import torch_gan_mnist as ref
            model = ref.make_generator()
            sd = {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}
            model.load_state_dict(sd, strict=True)
            out = (model(x) + 1) / 2
        elif a.family == "vae":
            import torch_vae_mnist as ref
            model = ref.VAE()
            sd = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
            model.load_state_dict(sd, strict=True)
            out = model.decode(x)
        elif a.family == "ddpm":
            import torch_ddpm_mnist as ref
            model = ref.EpsMLP()
            sd = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
            model.load_state_dict(sd, strict=True)
            t = torch.from_numpy(np.fromfile(a.t, dtype="<i4").astype(np.int64))
            out = model(x, t)
        else:
            raise SystemExit("unknown family " + a.family)
    expect = torch.from_numpy(np.fromfile(a.expect, dtype="<f4").reshape(out.shape))
    diff = (out - expect).abs().max().item()
    print(json.dumps({"family": a.family, "arch": a.arch, "max_abs_diff": diff, "n": a.n, "tensors": len(sd)}))
    sys.exit(0 if diff <= a.tol else 1)


if __name__ == "__main__":
    main()
