#!/usr/bin/python3
"""Do a model's features place a person better when the person is encoded larger?

usage: scale_probe.py WEIGHTS SEQ_DIR [--gap N] [--scales LIST] [--small H]

A probe of the features alone, before any tracker: for every person of a MOTChallenge sequence
(SEQ_DIR/gt/gt.txt, lines with conf == 1; frames from SEQ_DIR/SEQ.mp4) and every frame t where it
is also counted `gap` frames earlier, a region around its true box at t - gap (3 widths + 48
pixels by 1.6 heights + 32, clipped to the frame) is cut from both frames, resized by the scale,
and encoded by the model (compact-s8 weights, run in PyTorch from the independent definition in
tests/reference/ref_train.py; Lab input normalised as the weights' metadata says). The template
is the unit features of the cells under the true box at t - gap; its best match in the region at
t (mean dot product over every whole-cell shift, refined to a fraction of a cell by a parabola)
moves the box. Reported per scale, for small persons (true height < H pixels at t - gap) and the
others: the mean IoU of the moved box with the truth at t, the share at IoU >= 0.5, the moved
boxes that land on another person (IoU >= 0.5 with them, < 0.5 with their own), and the IoU of
the unmoved box (what staying still scores).

A scale is a number (encoded pixels per source pixel) or normN (the person's height becomes N
pixels, between 0.5 and 4 times). vtrack's `accurate` profile processes KITTI-17 (1224x370) at
0.706 and TUD-Campus (640x480) at 1.0.

Exit status: 0 done, 1 a file is missing or unreadable, 2 bad arguments, 77 PyTorch or OpenCV
is missing.
"""
import argparse
import collections
import os
import sys

try:
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"scale_probe: {e} (Debian: python3-torch python3-opencv)", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from ref_train import CompactS8, read_safetensors  # noqa: E402  (independent of model/)
from mot_peer import iou_matrix  # noqa: E402  (this folder: the MOT peer's box IoU)


def load_model(path):
    tensors, meta = read_safetensors(path)
    if meta.get("vtrack.arch") != "compact-s8" or meta.get("vtrack.input") != "lab":
        raise ValueError("compact-s8 weights with Lab input only")
    net = CompactS8()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    net.eval()
    mean = np.array([float(v) for v in meta["vtrack.mean"].split(",")], np.float32)
    std = np.array([float(v) for v in meta["vtrack.std"].split(",")], np.float32)
    return net, mean, std


def parabola(v, i):
    if i <= 0 or i >= len(v) - 1:
        return 0.0
    d = v[i - 1] - 2 * v[i] + v[i + 1]
    return 0.0 if d >= 0 else float(np.clip(0.5 * (v[i - 1] - v[i + 1]) / d, -0.5, 0.5))


def main():
    ap = argparse.ArgumentParser(description="features' localisation against encoding scale")
    ap.add_argument("weights")
    ap.add_argument("seq")
    ap.add_argument("--gap", type=int, default=1)
    ap.add_argument("--scales", default="0.7,1.0,1.5,2.0,norm96,norm160")
    ap.add_argument("--small", type=float, default=150.0)
    a = ap.parse_args()
    scales = a.scales.split(",")
    for s in scales:
        try:
            if not (float(s[4:] if s.startswith("norm") else s) > 0):
                raise ValueError
        except ValueError:
            ap.error(f"bad scale {s!r}")
    if a.gap < 1:
        ap.error("--gap must be at least 1")
    name = os.path.basename(os.path.normpath(a.seq))
    try:
        net, mean, std = load_model(a.weights)
        gt = collections.defaultdict(dict)
        with open(os.path.join(a.seq, "gt", "gt.txt")) as f:
            for line in f:
                v = line.strip().split(",")
                if len(v) >= 7 and float(v[6]) == 1:
                    gt[int(v[0]) - 1][int(v[1])] = np.array([float(x) for x in v[2:6]])
    except (OSError, ValueError, KeyError, AssertionError) as e:
        print(f"scale_probe: {e}", file=sys.stderr)
        return 1
    cap = cv2.VideoCapture(os.path.join(a.seq, name + ".mp4"))
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(fr, cv2.COLOR_BGR2RGB))
    if not frames:
        print(f"scale_probe: no frames in {a.seq}/{name}.mp4", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    H, W = frames[0].shape[:2]

    def encode(img):
        lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        x = (lab - mean) / std
        with torch.no_grad():
            f = net(torch.from_numpy(x.transpose(2, 0, 1).copy())[None])
        return F.normalize(f, dim=1)[0]

    res = {s: collections.defaultdict(list) for s in scales}
    for t in range(a.gap, len(frames)):
        for i, b0 in gt.get(t - a.gap, {}).items():
            b1 = gt.get(t, {}).get(i)
            if b1 is None:
                continue
            kind = "small" if b0[3] < a.small else "large"
            cx, cy = b0[0] + b0[2] / 2, b0[1] + b0[3] / 2
            rw, rh = 3 * b0[2] + 48, 1.6 * b0[3] + 32
            x0, y0 = int(max(0, cx - rw / 2)), int(max(0, cy - rh / 2))
            x1, y1 = int(min(W, cx + rw / 2)), int(min(H, cy + rh / 2))
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            for sn in scales:
                s = (float(np.clip(float(sn[4:]) / b0[3], 0.5, 4)) if sn.startswith("norm")
                     else float(sn))
                size = (max(8, round((x1 - x0) * s)), max(8, round((y1 - y0) * s)))
                interp = cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA
                f0 = encode(cv2.resize(frames[t - a.gap][y0:y1, x0:x1], size, interpolation=interp))
                f1 = encode(cv2.resize(frames[t][y0:y1, x0:x1], size, interpolation=interp))
                _, fh, fw = f0.shape
                cell = 8 / s  # source pixels per cell
                bx, by = (b0[0] - x0) / cell, (b0[1] - y0) / cell
                gx0, gy0 = int(np.clip(round(bx), 0, fw - 1)), int(np.clip(round(by), 0, fh - 1))
                gx1 = int(np.clip(round(bx + b0[2] / cell), gx0 + 1, fw))
                gy1 = int(np.clip(round(by + b0[3] / cell), gy0 + 1, fh))
                tmpl = f0[:, gy0:gy1, gx0:gx1]
                sc = F.conv2d(f1[None], tmpl[None])[0, 0].numpy() / (tmpl.shape[1] * tmpl.shape[2])
                yy, xx = np.unravel_index(np.argmax(sc), sc.shape)
                dx = xx - gx0 + parabola(sc[yy, :], xx)
                dy = yy - gy0 + parabola(sc[:, xx], yy)
                p = b0.copy()
                p[0] += dx * cell
                p[1] += dy * cell
                # its own box first, then every other person's on frame t
                ious = iou_matrix(p, [b1] + [b for j, b in gt[t].items() if j != i])[0]
                swap = ious[0] < 0.5 and bool((ious[1:] >= 0.5).any())
                res[sn][kind].append((ious[0], swap, iou_matrix(b0, b1)[0, 0]))
    print(f"{'sequence':12s} {'gap':>3s} {'scale':>8s} {'persons':7s} {'pairs':>5s} {'IoU':>6s} "
          f"{'SR50':>6s} {'swaps':>5s} {'still':>6s}")
    for sn in scales:
        for kind in ("small", "large"):
            r = np.array(res[sn][kind])
            if len(r):
                print(f"{name:12s} {a.gap:3d} {sn:>8s} {kind:7s} {len(r):5d} {r[:, 0].mean():6.3f} "
                      f"{(r[:, 0] >= 0.5).mean():6.3f} {int(r[:, 1].sum()):5d} {r[:, 2].mean():6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
