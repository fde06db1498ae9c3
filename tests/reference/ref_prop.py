#!/usr/bin/python3
"""Independent NumPy implementation of vtrack's label propagation (model/prop.h), for the
reference check in tests/model/test_prop_ref.c.

Writes, for each case, the inputs and the expected output as little-endian binaries into
OUTDIR:  case<i>.json (geometry and per-frame settings), case<i>_*.f32 / .u8 arrays.

The definition implemented here, per target cell q = (y, x):
  candidates: every cell of a global frame; the cells of a (2r+1)^2 window around q clipped to
  the frame; for an ROI frame the window is centred on q + round(soft-argmax offset) where the
  offset is the softmax(s / T)-weighted mean of the displacements d*(dy, dx), |dy|,|dx| <= R,
  over the in-frame cells of the dilated coarse grid.
  keep the top-k by score (all when k = 0); w = softmax(s / T) over the kept ones;
  p_o = sum(w * label_o) / sum(w) over candidates from frames that know o;
  if sum_o p_o > 1 the p_o are divided by their sum and bg = 0, else bg = 1 - sum_o p_o.
Cases are drawn until every top-k boundary and every ROI rounding has a margin, so float32
(C) and float64 (here) pick the same candidates.
"""
import json
import os
import sys

import numpy as np


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def propagate(feat, frames, h, w, topk, temp, roi_radius, nobj):
    n = h * w
    out = np.zeros((nobj, n))
    bg = np.zeros(n)
    margin_ok = True
    offsets = []
    for fr in frames:
        if fr["radius"] >= 0 and fr["dil"] > 0:
            off = np.zeros((n, 2), dtype=np.int64)
            d, R = fr["dil"], roi_radius
            for q in range(n):
                y, x = divmod(q, w)
                ss, dys, dxs = [], [], []
                for dy in range(-R, R + 1):
                    for dx in range(-R, R + 1):
                        yy, xx = y + d * dy, x + d * dx
                        if 0 <= yy < h and 0 <= xx < w:
                            ss.append(feat[q] @ fr["feat"][yy * w + xx])
                            dys.append(dy)
                            dxs.append(dx)
                ss = np.array(ss)
                e = np.exp((ss - ss.max()) / temp)
                oy = d * (e @ np.array(dys)) / e.sum()
                ox = d * (e @ np.array(dxs)) / e.sum()
                for v in (oy, ox):
                    if abs(abs(v - np.floor(v)) - 0.5) < 1e-3:
                        margin_ok = False
                off[q] = (int(np.rint(oy)), int(np.rint(ox)))
            offsets.append(off)
        else:
            offsets.append(None)
    for q in range(n):
        y, x = divmod(q, w)
        cand = []  # (score, frame, pos)
        for m, fr in enumerate(frames):
            if fr["radius"] < 0:
                s = fr["feat"] @ feat[q]
                cand += [(s[p], m, p) for p in range(n)]
                continue
            cy, cx = y, x
            if offsets[m] is not None:
                cy += offsets[m][q][0]
                cx += offsets[m][q][1]
            r = fr["radius"]
            for yy in range(max(0, cy - r), min(h - 1, cy + r) + 1):
                for xx in range(max(0, cx - r), min(w - 1, cx + r) + 1):
                    p = yy * w + xx
                    cand.append((feat[q] @ fr["feat"][p], m, p))
        cand.sort(key=lambda c: -c[0])
        if topk > 0:
            if len(cand) > topk and cand[topk - 1][0] - cand[topk][0] < 1e-4:
                margin_ok = False
            cand = cand[:topk]
        s = np.array([c[0] for c in cand])
        e = np.exp((s - s.max()) / temp)
        psum = 0.0
        for o in range(nobj):
            num = den = 0.0
            for (sc, m, p), ei in zip(cand, e):
                if frames[m]["known"][o]:
                    num += ei * frames[m]["labels"][o, p]
                    den += ei
            out[o, q] = num / den if den > 0 else 0.0
            psum += out[o, q]
        if psum > 1.0:
            out[:, q] /= psum
            bg[q] = 0.0
        else:
            bg[q] = 1.0 - psum
    return out, bg, margin_ok


CASES = [
    # h, w, c, nobj, topk, temp, roi_radius, frames: (radius, dil, known)
    dict(h=9, w=11, c=16, nobj=2, topk=5, temp=0.1, roi=2,
         frames=[(-1, 0, [1, 1]), (2, 0, [1, 1]), (3, 2, [1, 1]), (1, 0, [1, 0])]),
    dict(h=7, w=6, c=12, nobj=3, topk=0, temp=0.05, roi=1,
         frames=[(-1, 0, [1, 1, 0]), (1, 0, [1, 1, 1]), (2, 3, [1, 1, 1])]),
    dict(h=1, w=1, c=8, nobj=1, topk=3, temp=0.2, roi=1,
         frames=[(2, 0, [1]), (-1, 0, [1])]),
]


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for ci, cs in enumerate(CASES):
        for seed in range(1000):
            rng = np.random.default_rng(1234 + 97 * ci + seed)
            h, w, c, nobj = cs["h"], cs["w"], cs["c"], cs["nobj"]
            n = h * w
            feat = unit(rng.standard_normal((n, c)))
            frames = []
            for radius, dil, known in cs["frames"]:
                # Memory features correlated with the target so the top-k is meaningful.
                f = unit(feat + 0.8 * rng.standard_normal((n, c)))
                lab = rng.random((nobj, n))
                lab = lab / (lab.sum(0, keepdims=True) + rng.random(n))  # objects sum < 1
                frames.append(dict(feat=f, labels=lab, known=known, radius=radius, dil=dil))
            out, bg, ok = propagate(feat, frames, h, w, cs["topk"], cs["temp"], cs["roi"], nobj)
            if ok:
                break
        meta = dict(h=h, w=w, c=c, nobj=nobj, topk=cs["topk"], temp=cs["temp"], roi=cs["roi"],
                    frames=[dict(radius=fr["radius"], dil=fr["dil"], known=fr["known"])
                            for fr in frames])
        base = os.path.join(outdir, "case%d" % ci)
        with open(base + ".json", "w") as fp:
            json.dump(meta, fp)
        # the engine takes channel-major features: [C][N]
        feat.T.astype("<f4").tofile(base + "_feat.f32")
        for m, fr in enumerate(frames):
            fr["feat"].T.astype("<f4").tofile(base + "_m%d_feat.f32" % m)
            fr["labels"].astype("<f4").tofile(base + "_m%d_labels.f32" % m)
        out.astype("<f4").tofile(base + "_out.f32")
        bg.astype("<f4").tofile(base + "_bg.f32")
    print(len(CASES))


if __name__ == "__main__":
    main()
