#!/usr/bin/python3
"""Cross-check `vtrack eval` against a NumPy re-implementation of the official DAVIS metrics.

usage: davis_reference.py VTRACK

The reference follows the formulas of davisvideochallenge/davis2017-evaluation (db_eval_iou,
_seg2bmap, f_measure with a skimage disk dilation, db_statistics, the mean over objects), written
independently with NumPy only: the dilation is tested literally (every disk offset around every
boundary pixel), not with the row-distance method of cli/davis.c.

1. Synthetic sequences (random multi-object palette masks with void, grey {0,255} masks, assorted
   sizes, predictions shifted, grown, shrunk, missing or scattered) scored in both void modes:
   every CSV value must agree to 1e-5 percent.
2. With $VT_DATA/davis16-dev: the identity baseline (first annotation copied to every frame),
   scored per sequence by both; the reference J&F is printed and must be 21.8 +- 0.1 (the official
   DAVIS evaluation code's score, docs/RESULTS.md).

Exits 77 (skipped) when NumPy or PIL is missing.
"""
import csv
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (needs python3-numpy and python3-pil)")
    sys.exit(77)

VOID = 255


# --- the official formulas ---------------------------------------------------------------------

def iou(gt, pred, void):
    keep = ~void if void is not None else np.ones_like(gt)
    inter = np.count_nonzero(gt & pred & keep)
    union = np.count_nonzero((gt | pred) & keep)
    return 1.0 if union == 0 else inter / union


def seg2bmap(seg):
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk_offsets(r):
    # skimage.morphology.disk(r): |x|^2 + |y|^2 <= r^2 on the integer grid.
    span = range(-r, r + 1)
    return [(dy, dx) for dy in span for dx in span if dx * dx + dy * dy <= r * r]


def matched(points, other, offsets):
    """How many set pixels of `points` lie in `other` dilated by the disk (zero outside)."""
    h, w = other.shape
    ys, xs = np.nonzero(points)
    hit = np.zeros(len(ys), dtype=bool)
    for dy, dx in offsets:
        yy, xx = ys + dy, xs + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        hit[ok] |= other[yy[ok], xx[ok]]
    return int(np.count_nonzero(hit))


_offsets_cache = {}


def f_measure(gt, pred, void):
    h, w = gt.shape
    r = int(np.ceil(0.008 * np.linalg.norm((h, w))))
    if r not in _offsets_cache:
        _offsets_cache[r] = disk_offsets(r)
    offsets = _offsets_cache[r]
    keep = ~void if void is not None else np.ones_like(gt)
    fb = seg2bmap(pred & keep)
    gb = seg2bmap(gt & keep)
    n_fg, n_gt = int(fb.sum()), int(gb.sum())
    if n_fg == 0 and n_gt > 0:
        p, rc = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        p, rc = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        p, rc = 1.0, 1.0
    else:
        p = matched(fb, gb, offsets) / float(n_fg)
        rc = matched(gb, fb, offsets) / float(n_gt)
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def statistics(v):
    v = np.asarray(v, dtype=np.float64)
    m = np.nanmean(v)
    o = np.nanmean(v > 0.5)
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [v[ids[i]:ids[i + 1] + 1] for i in range(4)]
    return m, o, np.nanmean(bins[0]) - np.nanmean(bins[3])


def read_labels(path):
    im = Image.open(path)
    a = np.array(im)
    if a.ndim == 3:  # grey + alpha: the grey channel
        a = a[..., 0]
    a = a.astype(np.uint8)
    if im.mode != "P":
        vals = np.unique(a)
        if np.all(np.isin(vals, (0, 255))) and 255 in vals:
            a = (a == 255).astype(np.uint8)
    return a


def evaluate(root, pred_root, seqs, ignore_void):
    """Rows (seq, obj, J stats, F stats, frames) as the official evaluation computes them."""
    rows = []
    for seq in seqs:
        ann = os.path.join(root, "Annotations", "480p", seq)
        ids = sorted(f[:-4] for f in os.listdir(ann) if f.endswith(".png"))
        first = read_labels(os.path.join(ann, ids[0] + ".png"))
        n_obj = int(first[first != VOID].max())
        js = [[] for _ in range(n_obj)]
        fs = [[] for _ in range(n_obj)]
        for fid in ids[1:-1]:
            gt = read_labels(os.path.join(ann, fid + ".png"))
            pr = read_labels(os.path.join(pred_root, seq, fid + ".png"))
            void = (gt == VOID) if ignore_void else None
            for k in range(1, n_obj + 1):
                g, p = gt == k, pr == k
                js[k - 1].append(iou(g, p, void))
                fs[k - 1].append(f_measure(g, p, void))
        for k in range(n_obj):
            rows.append((seq, k + 1, statistics(js[k]), statistics(fs[k]), len(ids) - 2))
    return rows


# --- vtrack ------------------------------------------------------------------------------------

def run_vtrack(vtrack, root, pred, seqs, void_mode, tmp):
    out_csv = os.path.join(tmp, "vtrack.csv")
    cmd = [vtrack, "eval", "--davis", root, "--pred", pred, "--csv", out_csv, "--void", void_mode]
    for s in seqs:
        cmd += ["--seq", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    with open(out_csv) as f:
        table = {(r["sequence"], r["object"]): r for r in csv.DictReader(f)}
    return table, p.stdout.strip().splitlines()[-1]


def compare(rows, table, what):
    bad = 0
    jm, fm = [], []
    for seq, obj, (jmean, jrec, jdec), (fmean, frec, fdec), frames in rows:
        got = table.get((seq, str(obj)))
        if got is None:
            print(f"FAIL {what}: no row for {seq}/{obj}")
            bad += 1
            continue
        want = {"J_mean": jmean, "J_recall": jrec, "J_decay": jdec,
                "F_mean": fmean, "F_recall": frec, "F_decay": fdec}
        for key, val in want.items():
            if abs(float(got[key]) - 100 * val) > 1e-5:
                print(f"FAIL {what}: {seq}/{obj} {key} vtrack {got[key]} reference {100 * val:.6f}")
                bad += 1
        if int(got["frames"]) != frames:
            print(f"FAIL {what}: {seq}/{obj} frames {got['frames']} vs {frames}")
            bad += 1
        jm.append(jmean)
        fm.append(fmean)
    j, f = np.mean(jm), np.mean(fm)
    mean = table.get(("mean", str(len(rows))))
    if mean is None or abs(float(mean["JF_mean"]) - 50 * (j + f)) > 1e-5:
        print(f"FAIL {what}: mean row {mean} vs J&F {50 * (j + f):.6f}")
        bad += 1
    return bad, j, f


# --- synthetic data ----------------------------------------------------------------------------

def palette_image(labels):
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    pal = []
    for i in range(256):
        pal += [(i * 53) % 256, (i * 97) % 256, (i * 151) % 256]
    im.putpalette(pal)
    return im


def random_blobs(rng, h, w, n_obj, void):
    lab = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for k in range(1, n_obj + 1):
        for _ in range(rng.integers(1, 3)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(2, h / 3), rng.uniform(2, w / 3)
            lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k
    if void:
        y0, x0 = rng.integers(0, h - 3), rng.integers(0, w - 3)
        lab[y0:y0 + rng.integers(2, h // 3 + 3), x0:x0 + rng.integers(2, w // 3 + 3)] = VOID
    return lab


def perturb(rng, lab, n_obj):
    h, w = lab.shape
    out = np.where(lab == VOID, 0, lab).astype(np.uint8)
    kind = rng.integers(0, 6)
    if kind == 0:  # shift by a few pixels, around the tolerance
        out = np.roll(out, (int(rng.integers(-4, 5)), int(rng.integers(-12, 13))), axis=(0, 1))
    elif kind == 1:  # grow one object
        k = int(rng.integers(1, n_obj + 1))
        m = out == k
        g = m.copy()
        g[1:, :] |= m[:-1, :]
        g[:, 1:] |= m[:, :-1]
        out[g & (out == 0)] = k
    elif kind == 2:  # drop one object
        out[out == rng.integers(1, n_obj + 1)] = 0
    elif kind == 3:  # salt the prediction with scattered labels
        noise = rng.random((h, w)) < 0.02
        out[noise] = rng.integers(0, n_obj + 1, size=int(noise.sum()))
    elif kind == 4:  # paint over the void region too
        out[lab == VOID] = int(rng.integers(1, n_obj + 1))
    # kind 5: exact
    return out


def write_synthetic(root, pred, rng):
    seqs = []
    specs = [("pal-small", 37, 23, 3, True), ("pal-mid", 160, 90, 2, True),
             ("pal-davis", 854, 480, 2, True), ("grey", 120, 80, 1, False),
             ("pal-one", 64, 64, 1, False)]
    for name, w, h, n_obj, void in specs:
        ann = os.path.join(root, "Annotations", "480p", name)
        os.makedirs(ann)
        os.makedirs(os.path.join(pred, name))
        n = int(rng.integers(4, 9))
        base = random_blobs(rng, h, w, n_obj, False)
        for k in range(1, n_obj + 1):  # every object present in the first frame
            if not (base == k).any():
                base[k * 3 % h, k * 5 % w] = k
        for t in range(n):
            lab = base if t == 0 else random_blobs(rng, h, w, n_obj, void)
            if name == "grey":
                Image.fromarray((lab > 0).astype(np.uint8) * 255, mode="L").save(
                    os.path.join(ann, f"{t:05d}.png"))
            else:
                palette_image(lab).save(os.path.join(ann, f"{t:05d}.png"))
            if t in (0, n - 1):
                continue
            p = perturb(rng, lab, n_obj)
            path = os.path.join(pred, name, f"{t:05d}.png")
            if name == "grey" and t % 2:
                Image.fromarray((p > 0).astype(np.uint8) * 255, mode="L").save(path)
            else:
                palette_image(p).save(path)
        seqs.append(name)
    return seqs


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    vtrack = sys.argv[1]
    failures = 0
    rng = np.random.default_rng(20240611)
    with tempfile.TemporaryDirectory() as tmp:
        root, pred = os.path.join(tmp, "davis"), os.path.join(tmp, "pred")
        seqs = write_synthetic(root, pred, rng)
        for mode in ("ignore", "background"):
            rows = evaluate(root, pred, seqs, mode == "ignore")
            table, _ = run_vtrack(vtrack, root, pred, [], mode, tmp)
            bad, j, f = compare(rows, table, f"synthetic/{mode}")
            failures += bad
            print(f"synthetic, void {mode}: {len(rows)} objects, reference J {100 * j:.3f} "
                  f"F {100 * f:.3f}, {'agree' if not bad else f'{bad} mismatches'}")

        data = os.environ.get("VT_DATA", "")
        dev = os.path.join(data, "davis16-dev")
        if not data or not os.path.isdir(dev):
            print(f"note: {dev} not found; dev-set comparison skipped")
        else:
            ann = os.path.join(dev, "Annotations", "480p")
            ident = os.path.join(tmp, "identity")
            dev_seqs = sorted(os.listdir(ann))
            for seq in dev_seqs:
                files = sorted(f for f in os.listdir(os.path.join(ann, seq)) if f.endswith(".png"))
                first = read_labels(os.path.join(ann, seq, files[0]))
                os.makedirs(os.path.join(ident, seq))
                im = palette_image(first)
                for f in files:
                    im.save(os.path.join(ident, seq, f))
            rows = evaluate(dev, ident, dev_seqs, True)
            table, last = run_vtrack(vtrack, dev, ident, [], "ignore", tmp)
            bad, j, f = compare(rows, table, "dev identity")
            failures += bad
            jf = 50 * (j + f)
            print(f"dev set identity: reference J&F {jf:.3f} J {100 * j:.3f} F {100 * f:.3f}; "
                  f"vtrack: {last}")
            if abs(round(jf, 1) - 21.8) > 0.1 + 1e-9:
                print(f"FAIL: reference identity J&F {jf:.2f}, the official code gives 21.8")
                failures += 1
    if failures:
        sys.exit(f"{failures} mismatches")
    print("all agree")


if __name__ == "__main__":
    main()
