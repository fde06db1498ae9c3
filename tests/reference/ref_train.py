#!/usr/bin/python3
"""PyTorch autograd reference for one training step of vtrack's trainer (train/*.c),
driven by tests/train/test_train_ref.c.

Usage: ref_train.py DIR
DIR holds, written by the C side:
  w0.safetensors   the model before the step (compact-s8 parameters, BN running statistics)
  io.safetensors   the batch (input, ref_val, tgt_val, tgt_cls, ref_cls), the C loss, the C
                   gradient of every trainable tensor ("grad.<name>"), the running statistics
                   after the forward ("run.<name>") and the parameters after the optimiser
                   step ("w1.<name>"); __metadata__ carries the configuration.

The network, the objectives and the optimiser are written here independently from the
architecture description (model/arch.c's comment) and docs/TRAINING.md, with torch.nn modules and
autograd in float64, so the float32 C results are compared with the exact values:
  loss and every gradient: max |c - torch| <= 1e-3 * max |torch| per tensor;
  running statistics: same bound;
  AdamW + clipping + schedule: torch.optim.AdamW applied to the C gradients must give the
  C parameters after the step (max abs difference <= 1e-6 + 1e-5 |w|).
Prints one line per tensor; exit status 0 when everything holds, 1 otherwise.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(buf[base + b : base + e], dtype="<f4").reshape(t["shape"]).copy()
    return out, meta


class Block(nn.Module):
    """BasicBlock at constant width: conv-BN-ReLU, conv-BN, + input, ReLU."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + x)


class CompactS8(nn.Module):
    """compact-s8: conv 3x3/2 3->32, conv 3x3/2 32->64, block, conv 3x3/2 64->64, two blocks,
    1x1 64->64 with bias; BN + ReLU after every conv but the last."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = Block(64)
        self.conv3 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.block2 = Block(64)
        self.block3 = Block(64)
        self.head = nn.Conv2d(64, 64, 1, 1, 0, bias=True)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.block1(x)
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.block3(self.block2(x))
        return self.head(x)


def window_mask(h, w, r):
    """True where target cell q may attend to reference cell p."""
    ys, xs = np.divmod(np.arange(h * w), w)
    if r < 0:
        return np.ones((h * w, h * w), dtype=bool)
    return (np.abs(ys[:, None] - ys[None, :]) <= r) & (np.abs(xs[:, None] - xs[None, :]) <= r)


def rel_err(c, t):
    c = np.asarray(c, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    scale = np.abs(t).max()
    return float(np.abs(c - t).max() / (scale if scale > 0 else 1.0))


def main():
    d = sys.argv[1]
    w0, meta0 = read_safetensors(os.path.join(d, "w0.safetensors"))
    io, meta = read_safetensors(os.path.join(d, "io.safetensors"))
    obj = meta["objective"]
    B, S = int(meta["batch"]), int(meta["crop"])
    radius, T = int(meta["radius"]), float(meta["temperature"])
    huber = float(meta["huber_scale"])
    lr, wd, clip = float(meta["lr_step"]), float(meta["weight_decay"]), float(meta["clip"])
    b1, b2, eps = float(meta["beta1"]), float(meta["beta2"]), float(meta["adam_eps"])
    assert meta0.get("vtrack.arch") == "compact-s8"

    torch.manual_seed(0)
    net = CompactS8().double()
    sd = {k: torch.from_numpy(v.astype(np.float64)) for k, v in w0.items()}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (
        missing,
        unexpected,
    )
    net.train()

    x = torch.from_numpy(io["input"].astype(np.float64))
    f = net(x)
    u = F.normalize(f, dim=1)
    C, fh, fw = u.shape[1], u.shape[2], u.shape[3]
    N = fh * fw
    u = u.reshape(2 * B, C, N)
    mask = torch.from_numpy(window_mask(fh, fw, radius))
    ref_val = torch.from_numpy(io["ref_val"].astype(np.float64))
    losses = []
    for b in range(B):
        ut, ur = u[B + b], u[b]
        s = (ut.t() @ ur) / T
        s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=1)
        y = ref_val[b] @ a.t()  # V x N
        if obj == "mast":
            tgt = torch.from_numpy(io["tgt_val"][b].astype(np.float64))
            losses.append(F.smooth_l1_loss(huber * y, huber * tgt, reduction="sum"))
        else:
            cls = torch.from_numpy(io["tgt_cls"][b].astype(np.int64))
            p = y[cls, torch.arange(N)]
            losses.append(-torch.log(p + 1e-8).sum())
    denom = B * 3 * N if obj == "mast" else B * N
    loss = torch.stack(losses).sum() / denom
    loss.backward()

    ok = True
    worst = 0.0

    def check(name, c, t, tol=1e-3):
        nonlocal ok, worst
        e = rel_err(c, t)
        worst = max(worst, e)
        flag = "ok" if e <= tol else "FAIL"
        if e > tol:
            ok = False
        print(f"{flag:4s} {name:32s} rel err {e:.2e}")

    check("loss", io["loss"], [loss.item()])
    params = dict(net.named_parameters())
    for name, p in params.items():
        check("grad " + name, io["grad." + name], p.grad.numpy())
    for name, buf in net.named_buffers():
        if "running" in name:
            check("running " + name, io["run." + name], buf.numpy())

    # Optimiser: torch's clip + AdamW at the scheduled rate on the C gradients, in float32 as
    # the C code runs; conv weights decay, BN affine parameters and biases do not.
    ps = {k: torch.from_numpy(w0[k].copy()).requires_grad_(True) for k in params}
    for k, p in ps.items():
        p.grad = torch.from_numpy(io["grad." + k].copy())
    decay = [p for k, p in ps.items() if p.dim() == 4]
    nodecay = [p for k, p in ps.items() if p.dim() != 4]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": wd}, {"params": nodecay, "weight_decay": 0.0}],
        lr=lr,
        betas=(b1, b2),
        eps=eps,
    )
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(list(ps.values()), clip)
    opt.step()
    opt_worst = 0.0
    for k, p in ps.items():
        c = io["w1." + k].astype(np.float64)
        t = p.detach().numpy().astype(np.float64)
        e = float(np.max(np.abs(c - t) / (1e-6 + 1e-5 * np.abs(t))))
        opt_worst = max(opt_worst, e)
        if e > 1.0:
            ok = False
            print(f"FAIL adamw {k:32s} max |c - torch| exceeds 1e-6 + 1e-5|w| by {e:.2f}x")
    print(f"{'ok' if opt_worst <= 1 else 'FAIL':4s} {'adamw step (all tensors)':32s} "
          f"worst {opt_worst:.2f} of the bound")
    print(f"{obj}: loss C {float(io['loss'][0]):.7g} torch {loss.item():.7g}; "
          f"worst relative error {worst:.2e} (bound 1e-3)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
