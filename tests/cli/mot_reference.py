#!/usr/bin/python3
"""Cross-check `vtrack eval --mot` against bench/mot_peer.py, an independent NumPy implementation.

usage: mot_reference.py VTRACK MOT_PEER

1. Synthetic sequences (a crowd crossing on one walkway at random speeds, late entries, conf-0
   lines, boxes partly outside the frame; predictions jittered, lost, emptied, exchanged
   between two people over a stretch, ghost boxes on people and false positives under foreign
   ids), scored by both with --pred.
2. With $VT_DATA/crossing and OpenCV: the peer's identity baseline and KCF tracker on both
   sequences, their result files scored by `vtrack eval --mot --pred`; and
   `vtrack eval --mot --baseline identity` against the peer's identity baseline.

Every comparison is of the two --csv files, row by row: the counts (ids, boxes, pairs, swaps,
IDTP/IDFP/IDFN, TP/FP/FN, IDSW) must be equal, the percentages (AO, SR50, swap %, IDF1, IDP,
IDR, MOTA; printed there with 6 decimals) equal within 2e-6, and the last lines of the two
tables (1 decimal) identical.

Exits 77 (skipped) when NumPy is missing, or after part 1 when the data or OpenCV is missing.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (needs python3-numpy)")
    sys.exit(77)

FLOATS = {"AO", "SR50", "swap_pct", "IDF1", "IDP", "IDR", "MOTA"}
TIMES = {"frames", "seconds", "fps"}
TOL = 2e-6


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout.strip().split("\n")[-1]


def read_csv(path):
    with open(path) as f:
        lines = [ln.rstrip("\n").split(",") for ln in f if ln.strip()]
    head = lines[0]
    return {row[0]: dict(zip(head, row)) for row in lines[1:]}


def compare(label, ours_csv, ours_last, peer_csv, peer_last):
    ours, peer = read_csv(ours_csv), read_csv(peer_csv)
    bad = 0
    if sorted(ours) != sorted(peer):
        print(f"FAIL {label}: rows {sorted(ours)} vs {sorted(peer)}")
        return 1
    for seq in ours:
        for key, value in ours[seq].items():
            if key == "sequence" or key in TIMES:
                continue
            other = peer[seq][key]
            if key in FLOATS:
                ok = abs(float(value) - float(other)) <= TOL
            else:
                ok = int(value) == int(other)
            if not ok:
                print(f"FAIL {label}: {seq} {key}: vtrack {value}, peer {other}")
                bad += 1
    if ours_last != peer_last:
        print(f"FAIL {label}: last lines differ:\n  vtrack: {ours_last}\n  peer:   {peer_last}")
        bad += 1
    o = ours["overall"]
    print(f"{label}: {len(ours) - 1} sequences, {o['pairs']} pairs, {o['gt_boxes']} boxes: "
          f"{'agree' if not bad else f'{bad} mismatches'} ({ours_last})")
    return bad


# --- synthetic sequences --------------------------------------------------------------------------

def write_synthetic(root, pred_dir, rng):
    names = []
    for s in range(6):
        name = f"syn{s}"
        seq = os.path.join(root, name)
        os.makedirs(os.path.join(seq, "gt"))
        n_frames = int(rng.integers(8, 40))
        n_people = int(rng.integers(1, 9))
        width, height = 640, 360
        gt_lines, pred_lines = [], []
        tracks = {}
        for pid in range(1, n_people + 1):
            start = int(rng.integers(1, max(2, n_frames // 2)))
            end = int(rng.integers(start, n_frames + 1))
            # a crowd on one walkway: alike sizes and rows, so that people crossing overlap
            x, y = rng.uniform(-30, width - 20), rng.uniform(100, 140)
            vx, vy = rng.choice([-1, 1]) * rng.uniform(2, 12), rng.uniform(-1, 1)
            w, h = rng.uniform(30, 50), rng.uniform(80, 120)
            late_conf = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0
            for f in range(start, end + 1):
                k = f - start
                box = (x + vx * k, y + vy * k, w * (1 + 0.01 * k), h * (1 + 0.01 * k))
                conf = 0 if k < late_conf else 1
                tracks[(f, pid)] = box if conf else None
                gt_lines.append(f"{f},{pid},{box[0]:.2f},{box[1]:.2f},{box[2]:.3f},{box[3]:.3f},"
                                f"{conf},-1,-1,-1")
        # a person only ever marked conf 0
        gt_lines.append("1,99,10,10,20,50,0,-1,-1,-1")
        rng.shuffle(gt_lines)
        # predictions: a tracker following each person, with faults
        swap_pairs = {}
        people = list(range(1, n_people + 1))
        if n_people >= 2 and rng.random() < 0.8:  # two people exchanged over a stretch
            a, b = rng.choice(people, 2, replace=False)
            swap_pairs = {int(a): int(b), int(b): int(a)}
            swap_from = int(rng.integers(1, n_frames + 1))
            swap_to = int(rng.integers(swap_from, n_frames + 2))
        for (f, pid), box in sorted(tracks.items()):
            if box is None:  # a conf-0 frame
                continue
            r = rng.random()
            if r < 0.1:
                continue  # lost
            out_id = pid
            if swap_pairs and pid in swap_pairs and swap_from <= f < swap_to:
                out_id = swap_pairs[pid]
            jitter = rng.normal(0, 2 if r < 0.7 else 12, 4)
            x, y, w, h = (box[0] + jitter[0], box[1] + jitter[1], box[2] + jitter[2],
                          box[3] + jitter[3])
            if r > 0.95:
                w = 0.0  # an empty box
            pred_lines.append(f"{f},{out_id},{x:.2f},{y:.2f},{w:.2f},{h:.2f},"
                              f"{rng.random():.3f},-1,-1,-1")
            if rng.random() < 0.15:  # a second box on the same person (a ghost track)
                g = rng.normal(0, 4, 4)
                pred_lines.append(f"{f},{200 + pid},{box[0] + g[0]:.2f},{box[1] + g[1]:.2f},"
                                  f"{box[2] + g[2]:.2f},{box[3] + g[3]:.2f},0.3,-1,-1,-1")
        for _ in range(int(rng.integers(0, 15))):  # false positives under foreign ids
            f = int(rng.integers(1, n_frames + 1))
            fid = int(rng.integers(100, 104))
            if any(line.startswith(f"{f},{fid},") for line in pred_lines):
                continue
            pred_lines.append(f"{f},{fid},{rng.uniform(0, width):.1f},{rng.uniform(0, height):.1f},"
                              f"{rng.uniform(10, 60):.1f},{rng.uniform(30, 120):.1f},0.5,-1,-1,-1")
        with open(os.path.join(seq, "gt", "gt.txt"), "w") as f:
            f.write("\n".join(gt_lines) + "\n")
        with open(os.path.join(seq, "seqinfo.ini"), "w") as f:
            f.write(f"[Sequence]\nname={name}\nseqLength={n_frames}\n")
        with open(os.path.join(pred_dir, name + ".txt"), "w") as f:
            f.write("\n".join(pred_lines) + "\n")
        names.append(name)
    return names


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    vtrack, peer = sys.argv[1], sys.argv[2]
    py = sys.executable
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(20241201)
        for trial in range(6):
            root = os.path.join(tmp, f"syn{trial}")
            pred = os.path.join(tmp, f"synpred{trial}")
            os.makedirs(pred)
            write_synthetic(root, pred, rng)
            v_csv, p_csv = os.path.join(tmp, "v.csv"), os.path.join(tmp, "p.csv")
            v_last = run([vtrack, "eval", "--mot", root, "--pred", pred, "--csv", v_csv])
            p_last = run([py, peer, root, "--pred", pred, "--csv", p_csv])
            failures += compare(f"synthetic {trial}", v_csv, v_last, p_csv, p_last)

        data = os.environ.get("VT_DATA", "")
        crossing = os.path.join(data, "crossing")
        try:
            import cv2  # noqa: F401  (the peer's trackers need it)
            have_cv2 = True
        except ImportError:
            have_cv2 = False
        if not data or not os.path.isdir(crossing) or not have_cv2:
            if failures:
                sys.exit(f"{failures} mismatches")
            print(f"SKIP: {'python3-opencv is missing' if not have_cv2 else crossing + ' not found'}"
                  f": the comparison on the crossing sequences did not run (synthetic ones agree)")
            sys.exit(77)

        peer_csv = {}
        for tracker in ("identity", "kcf"):
            save = os.path.join(tmp, f"peer-{tracker}")
            p_csv = os.path.join(tmp, f"peer-{tracker}.csv")
            v_csv = os.path.join(tmp, f"vt-{tracker}.csv")
            p_last = run([py, peer, crossing, "--tracker", tracker, "--save", save, "--csv",
                          p_csv])
            v_last = run([vtrack, "eval", "--mot", crossing, "--pred", save, "--csv", v_csv])
            failures += compare(f"crossing, peer {tracker} files", v_csv, v_last, p_csv, p_last)
            peer_csv[tracker] = (p_csv, p_last)
        v_csv = os.path.join(tmp, "vt-baseline.csv")
        v_last = run([vtrack, "eval", "--mot", crossing, "--baseline", "identity", "--csv", v_csv])
        failures += compare("crossing, vtrack --baseline identity vs peer identity", v_csv, v_last,
                            *peer_csv["identity"])
    if failures:
        sys.exit(f"{failures} mismatches")
    print("all agree")


if __name__ == "__main__":
    main()
