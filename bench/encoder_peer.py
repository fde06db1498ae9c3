#!/usr/bin/python3
"""PyTorch peer of `vtrack bench encoder`: the same architecture and weights in PyTorch.

usage: /usr/bin/python3 bench/encoder_peer.py --weights FILE.safetensors --image RAW.rgb
           --size WxH --threads N [--iters K] [--warmup K] [--out FEATURES.f32]

Loads the vtrack safetensors file (architecture, normalisation and padding from its metadata)
into the PyTorch modules of tests/reference/ref_encoders.py, and times one frame end to end as
the C encoder does: uint8 RGB -> colour conversion and normalisation -> encoder, in eval mode
under torch.no_grad() with torch.set_num_threads(N). Prints one line:
  peer torch=VERSION threads=N median_ms=M min_ms=M cpu_ms=M runs=K shape=CxHxW
(cpu_ms: median process CPU time per frame, all threads)
and with --out writes the features (float32, CHW) so the caller can check both computed the
same thing.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import ref_encoders as ref  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    meta = hdr.pop("__metadata__", {})
    out = {}
    for name, t in hdr.items():
        b, e = t["data_offsets"]
        raw = data[b:e]
        if t["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4")
        elif t["dtype"] == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit("peer: %s: dtype %s" % (name, t["dtype"]))
        out[name] = torch.from_numpy(a.reshape(t["shape"]).copy())
    return meta, out


def lab_torch(rgb):
    """CIE Lab of a uint8 1x3xHxW tensor (the formulas of model/lab.c) in torch ops."""
    c = rgb.float() / 255.0
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = torch.tensor([[0.412453, 0.357580, 0.180423],
                      [0.212671, 0.715160, 0.072169],
                      [0.019334, 0.119193, 0.950227]])
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    xyz = xyz / torch.tensor([0.950456, 1.0, 1.088754]).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    L = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], 1)


def build(meta, tensors):
    arch = meta["vtrack.arch"]
    reflect = meta.get("vtrack.padding", "zeros") == "reflect"
    if arch == "mast-r18":
        net = ref.Mast().eval()
        net.load_state_dict({("post_convolution." + k[len("post_convolution."):]
                              if k.startswith("post_convolution.")
                              else "feature_extraction." + k): v
                             for k, v in tensors.items()}, strict=False)
        missing = set(net.state_dict()) - {
            k if k.startswith("post_convolution.") else "feature_extraction." + k
            for k in tensors}
        fwd = net
    elif arch == "r18-s8":
        net = ref.ResNet18().eval()
        net.load_state_dict(tensors, strict=False)
        missing = {k for k in set(net.state_dict()) - set(tensors)
                   if not k.startswith(("layer4.", "fc."))}
        net.crw_modify(padding="reflect" if reflect else "")
        fwd = net.features_s8
    elif arch == "compact-s8":
        net = ref.Compact().eval()
        net.load_state_dict(tensors, strict=False)
        missing = set(net.state_dict()) - set(tensors)
        fwd = net
    elif arch == "lab":
        def fwd(lab):  # already scaled by the caller's normalisation
            h, w = lab.shape[-2:]
            pool = F.avg_pool2d(lab, 8, 8, ceil_mode=True)
            pad = F.pad(pool, (1, 1, 1, 1), mode="replicate")
            fh, fw = pool.shape[-2:]
            return torch.cat([pad[:, :, 1 + dy:1 + dy + fh, 1 + dx:1 + dx + fw]
                              for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
        missing = set()
    else:
        raise SystemExit("peer: unknown architecture %r" % arch)
    missing = {k for k in missing if not k.endswith("num_batches_tracked")}
    if missing:
        raise SystemExit("peer: weights lack %s" % sorted(missing)[:4])
    return arch, fwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--image", required=True, help="raw RGB24, W*H*3 bytes")
    ap.add_argument("--size", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    meta, tensors = read_safetensors(args.weights)
    arch, fwd = build(meta, tensors)
    space = meta.get("vtrack.input", "lab")
    if arch == "lab":
        mean, std = (0.0, 0.0, 0.0), (100.0, 128.0, 128.0)
    else:
        mean = tuple(float(v) for v in meta["vtrack.mean"].split(","))
        std = tuple(float(v) for v in meta["vtrack.std"].split(","))
    raw = np.fromfile(args.image, dtype=np.uint8).reshape(h, w, 3)
    rgb = torch.from_numpy(raw.transpose(2, 0, 1).copy())[None]
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)

    def frame():
        x = lab_torch(rgb) if space == "lab" else rgb.float() / 255.0
        return fwd((x - mean_t) / std_t)

    times, cpu = [], []
    with torch.no_grad():
        for _ in range(args.warmup):
            y = frame()
        for _ in range(args.iters):
            c = time.process_time()
            t = time.perf_counter()
            y = frame()
            times.append((time.perf_counter() - t) * 1e3)
            cpu.append((time.process_time() - c) * 1e3)
    times.sort()
    cpu.sort()
    if args.out:
        y[0].numpy().astype("<f4").tofile(args.out)
    print("peer torch=%s threads=%d median_ms=%.3f min_ms=%.3f cpu_ms=%.3f runs=%d shape=%dx%dx%d"
          % (torch.__version__, args.threads, times[len(times) // 2], times[0],
             cpu[len(cpu) // 2], len(times), *y.shape[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
