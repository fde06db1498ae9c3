#!/usr/bin/python3
"""PyTorch peer of one `vtrack train` step (bench/train.md): compact-s8 on a batch of B frame
pairs of S x S crops, the MAST objective (unit-norm features, windowed softmax attention at
temperature 0.05, smooth L1 on 20x), backward, gradient clipping and an AdamW step; the same
work as train/train.c's step, minus the data sampling (which the C figure includes).

Usage: train_torch.py [--batch 8] [--crop 256] [--threads 1] [--steps 10] [--radius 6]
Prints: train-bench-torch ... median_ms=X frames_per_s=Y
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from ref_train import CompactS8, window_mask  # noqa: E402  (the reference's own network)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--radius", type=int, default=6)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = CompactS8()
    net.train()
    decay = [p for p in net.parameters() if p.dim() == 4]
    other = [p for p in net.parameters() if p.dim() != 4]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": other, "weight_decay": 0.0}], lr=1e-3)
    B, S = a.batch, a.crop
    fh = S // 8
    n = fh * fh
    mask = torch.from_numpy(window_mask(fh, fh, a.radius))
    x = torch.randn(2 * B, 3, S, S)
    vals = torch.randn(B, 3, n)
    tgt = torch.randn(B, 3, n)
    times = []
    for it in range(a.steps + 3):
        t0 = time.perf_counter()
        f = F.normalize(net(x), dim=1).reshape(2 * B, 64, n)
        s = torch.einsum("bcq,bcp->bqp", f[B:], f[:B]) / 0.05
        att = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=2)
        y = torch.einsum("bvp,bqp->bvq", vals, att)
        loss = F.smooth_l1_loss(20 * y, 20 * tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if it >= 3:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"train-bench-torch arch=compact-s8 objective=mast batch={B} crop={S} "
          f"threads={a.threads} torch={torch.__version__} steps={a.steps} "
          f"median_ms={1e3 * med:.1f} frames_per_s={2 * B / med:.2f}")


if __name__ == "__main__":
    main()
