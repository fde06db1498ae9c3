#!/usr/bin/python3
"""PyTorch reference for vt_bn_stats (train/train_bnstats.c, `vtrack recalibrate`), driven by
tests/train/test_train_ref.c.

Usage: ref_bnstats.py DIR
DIR holds, written by the C side:
  w0.safetensors   compact-s8 before (random weights, random running statistics)
  io.safetensors   frames.0, frames.1: the cached frames of two videos (n, h, w, 3) RGB;
                   input: the crops vt_bn_stats fed the encoder, batches one after the other
                   (batches * batch, 3, S, S); run.<name>: the running statistics it left;
                   __metadata__: batch, batches, mean, std (the input normalisation).

Two checks, written independently of the C code:
  1. Every crop is a window of some frame, at its size (no resize), converted as the tracker
     converts a frame: CIE L*a*b*, then (x - mean) / std, every channel, nothing dropped or
     rescaled. Max abs difference <= 0.02 in Lab units (float32 arithmetic and the white
     point's 4th digit; a dropped or rescaled channel, a resized or shifted window is off by
     several units on these textures).
  2. CompactS8 (ref_train.py) in float64 and training mode, every BatchNorm2d with
     momentum=None and its running statistics reset, run on the batches in order: its running
     mean and variance are the mean over batches of the batch mean and unbiased variance; the
     C statistics must agree within 1e-3 relative (max abs error over max abs value per tensor,
     as ref_train.py: float32 sums over up to 3 * 40 * 40 values).
Prints one line per check; exit status 0 when everything holds, 1 otherwise.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_train import CompactS8, read_safetensors, rel_err  # noqa: E402


def lab(rgb):
    """(h, w, 3) uint8-valued RGB -> (3, h, w) CIE L*a*b* (sRGB, D65) in float64, from the
    definitions: gamma expansion, the sRGB -> XYZ matrix, the white point, the cube root with
    its linear toe. (Not OpenCV's float cvtColor: its tables are up to 0.36 off these formulas
    in dark colours, measured on 20000 random colours.)"""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.412453, 0.357580, 0.180423],
                  [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T / np.array([0.950456, 1.0, 1.088754])
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(np.maximum(xyz, eps)), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    out = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                    200 * (f[..., 1] - f[..., 2])], axis=-1)
    return out.transpose(2, 0, 1)


def main():
    d = sys.argv[1]
    w0, meta0 = read_safetensors(os.path.join(d, "w0.safetensors"))
    io, meta = read_safetensors(os.path.join(d, "io.safetensors"))
    assert meta0.get("vtrack.arch") == "compact-s8"
    B, K = int(meta["batch"]), int(meta["batches"])
    mean = np.array([float(v) for v in meta["mean"].split(",")])
    std = np.array([float(v) for v in meta["std"].split(",")])
    x = io["input"].astype(np.float64)
    S = x.shape[2]
    ok = True

    # 1. each crop, back in Lab units, against every window of every frame
    conv = []
    for v in (0, 1):
        for f in io["frames.%d" % v]:
            conv.append(lab(f))
    worst = 0.0
    TOL = 0.02
    for i, crop in enumerate(x * std[None, :, None, None] + mean[None, :, None, None]):
        best = np.inf
        for full in conv:
            H, W = full.shape[1], full.shape[2]
            for y in range(H - S + 1):
                for xx in range(W - S + 1):
                    e = np.abs(full[:, y : y + S, xx : xx + S] - crop).max()
                    if e < best:
                        best = e
        worst = max(worst, best)
        if best > TOL:
            ok = False
            print(f"FAIL crop {i}: no window of any frame within {TOL} (nearest {best:.3g})")
    print(f"{'ok' if worst <= TOL else 'FAIL':4s} {'crops are converted windows':32s} "
          f"worst {worst:.2e} Lab")

    # 2. the statistics
    net = CompactS8().double()
    sd = {k: torch.from_numpy(v.astype(np.float64)) for k, v in w0.items()}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = None
            mod.reset_running_stats()
    net.train()
    with torch.no_grad():
        for k in range(K):
            net(torch.from_numpy(x[k * B : (k + 1) * B]))
    n = 0
    for name, buf in net.named_buffers():
        if "running" not in name:
            continue
        e = rel_err(io["run." + name], buf.numpy())
        n += 1
        if e > 1e-3:
            ok = False
        print(f"{'ok' if e <= 1e-3 else 'FAIL':4s} {'running ' + name:32s} rel err {e:.2e}")
    if n != 18:
        ok = False
        print(f"FAIL expected 18 running statistics, compared {n}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
