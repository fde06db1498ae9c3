#!/usr/bin/python3
"""OpenCV peer of `vtrack eval --mot`: box-registered multi-object tracking with OpenCV's trackers.

usage: mot_peer.py ROOT [--seq NAME ...] [--tracker csrt|kcf|identity | --pred DIR]
                   [--save DIR] [--csv FILE]

The protocol of `vtrack eval --mot`: every person of a MOTChallenge sequence (ROOT/SEQ/gt/gt.txt,
only lines with conf == 1 count; frames in ROOT/SEQ/SEQ.mp4 or ROOT/SEQ/img1/*.jpg) is
registered by its ground-truth box on the first frame where it is counted. One OpenCV tracker
per person (cv2.TrackerCSRT_create / cv2.TrackerKCF_create, OpenCV 4.6) is initialised there on
that box (rounded to whole pixels and clipped to the frame, as OpenCV needs) and updated on every
later frame; a failed update gives no box for that frame. `identity` keeps the registration box.
--pred DIR scores result files DIR/SEQ.txt instead of tracking (it needs no OpenCV).

The metrics are computed here with NumPy and plain Python, independently of cli/mot.c: the IoU
as a vectorised matrix, the optimal matchings (IDF1's trajectory matching, CLEAR's per-frame
matching) as min-cost flows by successive shortest paths (Bellman-Ford), not the Hungarian
method. Definitions (TrackEval's for IDF1 and CLEAR, IoU threshold 0.5 inclusive):
  pairs  (person, frame) with a counted ground-truth box after the person's registration frame
  AO     mean IoU over the pairs of the box predicted with the person's id (0 without one)
  SR50   share of pairs with IoU >= 0.5
  swaps  pairs whose predicted box has IoU >= 0.5 with another person's counted box of that
         frame and < 0.5 with its own
  IDF1   2 IDTP / (2 IDTP + IDFP + IDFN), IDTP the largest number of frames matched (IoU >= 0.5)
         by a one-to-one pairing of ground-truth and predicted trajectories; every frame counts
  IDSW   a person matched to another prediction id than its last one; the per-frame matching
         maximises IoU + 1000 x (matched on the previous frame with ground truth and predictions)
  MOTA   1 - (FN + FP + IDSW) / ground-truth boxes
Predictions with w or h <= 0 are no box. The output is the table of `vtrack eval --mot` (same
columns, same last line "AO x SR50 y swaps z% IDF1 w IDSW n"), and --csv writes the same CSV.

Exit status: 0 done, 1 a file is missing or malformed, 2 bad arguments, 77 OpenCV is missing.
"""
import argparse
import math
import os
import re
import sys
import time

try:
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"mot_peer: {e}: needs python3-numpy (Debian's /usr/bin/python3)", file=sys.stderr)
    sys.exit(77)

MATCH = 0.5
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class BadInput(Exception):
    pass


# --- files ----------------------------------------------------------------------------------------

def parse_mot(path, is_gt):
    """{(frame, id): (x, y, w, h, score)} of a ground-truth (conf == 1 lines) or result file."""
    names = ["frame", "id", "x", "y", "w", "h", "conf" if is_gt else "score"]
    out = {}
    lines_of = {}
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", errors="replace")
    for lineno, line in enumerate(raw.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip(" \t"):
            continue
        fields = [s.strip(" \t") for s in line.split(",")]
        vals = []
        for k, s in enumerate(fields):
            name = names[k] if k < len(names) else "extra"
            if not s:
                raise BadInput(f"{path}:{lineno}: field {k + 1} ({name}) is empty")
            if not NUMBER.match(s):
                raise BadInput(f"{path}:{lineno}: field {k + 1} ({name}): '{s}' is not a number")
            v = float(s)
            if not math.isfinite(v):
                raise BadInput(f"{path}:{lineno}: field {k + 1} ({name}): {s} is not finite")
            vals.append(v)
        want = 7 if is_gt else 6
        if len(vals) < want:
            raise BadInput(f"{path}:{lineno}: {len(vals)} fields, want at least {want}")
        frame, ident = vals[0], vals[1]
        if frame != int(frame) or frame < 1 or frame > 2**31 - 1:
            raise BadInput(f"{path}:{lineno}: field 1 (frame): not a frame number")
        if ident != int(ident) or ident < (1 if is_gt else -2**31) or ident > 2**31 - 1:
            raise BadInput(f"{path}:{lineno}: field 2 (id): not an identity")
        if is_gt and (vals[4] < 0 or vals[5] < 0):
            raise BadInput(f"{path}:{lineno}: negative w or h")
        if is_gt and vals[6] != 1:
            continue
        key = (int(frame), int(ident))
        if key in out:
            raise BadInput(f"{path}:{lineno}: frame {key[0]}, id {key[1]} is given twice "
                           f"(also on line {lines_of[key]})")
        score = 1.0 if is_gt or len(vals) < 7 else vals[6]
        out[key] = (vals[2], vals[3], vals[4], vals[5], score)
        lines_of[key] = lineno
    return out


def seq_length(seq_dir):
    path = os.path.join(seq_dir, "seqinfo.ini")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        for line in f:
            key, eq, value = line.partition("=")
            if eq and key.strip() == "seqLength":
                return int(value.strip())
    return None


def find_sequences(root, names):
    if os.path.isfile(os.path.join(root, "gt", "gt.txt")):
        name = os.path.basename(os.path.abspath(root))
        for n in names:
            if n != name:
                raise SystemExit(f"mot_peer: --seq {n}: {root} is the one sequence {name}")
        return [(name, root)]
    if names:
        return [(n, os.path.join(root, n)) for n in names]
    seqs = sorted(n for n in os.listdir(root) if not n.startswith(".")
                  and os.path.isfile(os.path.join(root, n, "gt", "gt.txt")))
    if not seqs:
        raise BadInput(f"{root}: no sequence (a folder with gt/gt.txt)")
    return [(n, os.path.join(root, n)) for n in seqs]


# --- tracking -------------------------------------------------------------------------------------

def frames_of(cv2, name, seq_dir):
    video = os.path.join(seq_dir, name + ".mp4")
    if os.path.isfile(video):
        cap = cv2.VideoCapture(video)
        if not cap.isOpened():
            raise BadInput(f"{video}: OpenCV cannot open it")
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield img
        cap.release()
        return
    img_dir = os.path.join(seq_dir, "img1")
    if not os.path.isdir(img_dir):
        raise BadInput(f"{name}: no video: neither {video} nor {img_dir}/")
    for n in sorted(f for f in os.listdir(img_dir) if f.lower().endswith((".jpg", ".jpeg"))):
        img = cv2.imread(os.path.join(img_dir, n))
        if img is None:
            raise BadInput(f"{img_dir}/{n}: unreadable")
        yield img


def tracker_factory(cv2, kind):
    # OpenCV 4.6 (Debian 12) has both in the main namespace; older builds only in cv2.legacy.
    name = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}[kind]
    for ns in (cv2, getattr(cv2, "legacy", None)):
        if ns is not None and hasattr(ns, name):
            return getattr(ns, name)
    raise SystemExit(f"mot_peer: this OpenCV ({cv2.__version__}) has no {name}")


def init_box(box, width, height):
    """The registration box in whole pixels, clipped to the frame; None if nothing is left."""
    x, y, w, h = (math.floor(v + 0.5) for v in box[:4])
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def track_sequence(cv2, kind, name, seq_dir, regs):
    """Predictions {(frame, id): (x, y, w, h, score)}, frames read, seconds of the loop."""
    create = None if kind == "identity" else tracker_factory(cv2, kind)
    starting = {}
    for ident, (f0, box) in regs.items():
        starting.setdefault(f0, []).append((ident, box))
    live = {}
    pred = {}
    n = 0
    t0 = time.perf_counter()
    for img in frames_of(cv2, name, seq_dir):
        n += 1
        height, width = img.shape[:2]
        for ident, t in live.items():
            if kind == "identity":
                pred[(n, ident)] = t + (1.0,)
                continue
            ok, b = t.update(img)
            if ok and b[2] > 0 and b[3] > 0:
                pred[(n, ident)] = tuple(float(v) for v in b) + (1.0,)
        for ident, box in sorted(starting.get(n, [])):
            if kind == "identity":
                live[ident] = tuple(box)
                pred[(n, ident)] = tuple(box) + (1.0,)
                continue
            b = init_box(box, width, height)
            if b is None:
                print(f"mot_peer: {name}: person {ident}'s box on frame {n} is outside the "
                      f"frame: not tracked", file=sys.stderr)
                continue
            t = create()
            t.init(img, b)
            live[ident] = t
            pred[(n, ident)] = tuple(float(v) for v in b) + (1.0,)
    return pred, n, time.perf_counter() - t0


def save(path, pred):
    with open(path, "w") as f:
        for (frame, ident) in sorted(pred):
            x, y, w, h, score = pred[(frame, ident)]
            f.write(f"{frame},{ident},{x:.10g},{y:.10g},{w:.10g},{h:.10g},{score:.6g},-1,-1,-1\n")


# --- metrics --------------------------------------------------------------------------------------

def iou_matrix(a, b):
    """IoU of every box of a (n x 4, x y w h) with every box of b (m x 4); 0 for empty boxes."""
    a = np.asarray(a, float).reshape(-1, 4)
    b = np.asarray(b, float).reshape(-1, 4)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    area_a = a[:, 2:3] * a[:, 3:4]
    area_b = b[:, 2] * b[:, 3]
    union = area_a + area_b - inter
    valid = (a[:, 2:3] > 0) & (a[:, 3:4] > 0) & (b[:, 2] > 0) & (b[:, 3] > 0) & (union > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(valid, inter / np.where(union > 0, union, 1), 0.0)
    return out


def max_weight_matching(weight):
    """A one-to-one pairing of rows and columns with the largest total weight (entries > 0
    only), as a min-cost flow found by successive shortest paths (Bellman-Ford). Returns the
    list of (row, col) pairs."""
    rows, cols = weight.shape
    src, sink = rows + cols, rows + cols + 1
    # residual graph: edges [to, capacity, cost, index of reverse]
    graph = [[] for _ in range(rows + cols + 2)]

    def add(u, v, cost):
        graph[u].append([v, 1, cost, len(graph[v])])
        graph[v].append([u, 0, -cost, len(graph[u]) - 1])

    for i in range(rows):
        add(src, i, 0.0)
    for j in range(cols):
        add(rows + j, sink, 0.0)
    for i in range(rows):
        for j in range(cols):
            if weight[i, j] > 0:
                add(i, rows + j, -float(weight[i, j]))
    n = rows + cols + 2
    while True:
        dist = [math.inf] * n
        back = [None] * n
        dist[src] = 0.0
        for _ in range(n - 1):
            changed = False
            for u in range(n):
                if dist[u] == math.inf:
                    continue
                for k, (v, cap, cost, _) in enumerate(graph[u]):
                    if cap > 0 and dist[u] + cost < dist[v] - 1e-12:
                        dist[v] = dist[u] + cost
                        back[v] = (u, k)
                        changed = True
            if not changed:
                break
        if dist[sink] == math.inf or dist[sink] >= -1e-12:
            break  # no path that adds weight
        v = sink
        while v != src:
            u, k = back[v]
            e = graph[u][k]
            e[1] -= 1
            graph[v][e[3]][1] += 1
            v = u
    pairs = []
    for i in range(rows):
        for v, cap, cost, _ in graph[i]:
            if rows <= v < rows + cols and cap == 0 and cost < 0:
                pairs.append((i, v - rows))
    return pairs


def score_sequence(gt, pred):
    """The counts of one sequence (a dict), gt and pred as parse_mot gives them."""
    pred = {k: v for k, v in pred.items() if v[2] > 0 and v[3] > 0}
    gt_ids = sorted({i for _, i in gt})
    pred_ids = sorted({i for _, i in pred})
    gidx = {i: k for k, i in enumerate(gt_ids)}
    pidx = {i: k for k, i in enumerate(pred_ids)}
    f0 = {}
    for (f, i) in gt:
        f0[i] = min(f, f0.get(i, f))
    c = dict(ids=len(gt_ids), gt_boxes=len(gt), pred_boxes=len(pred), pairs=0, iou_sum=0.0,
             success=0, swaps=0, tp=0, fp=0, fn=0, idsw=0)
    gt_frames, pred_frames = {}, {}
    for (f, i) in gt:
        gt_frames.setdefault(f, []).append(i)
    for (f, i) in pred:
        pred_frames.setdefault(f, []).append(i)
    together = np.zeros((len(gt_ids), len(pred_ids)))
    last = {}   # person -> prediction id of its last match
    prev = {}   # person -> prediction id matched on the previous (scored) step
    for f in sorted(set(gt_frames) | set(pred_frames)):
        g = sorted(gt_frames.get(f, []))
        p = sorted(pred_frames.get(f, []))
        ious = iou_matrix([gt[(f, i)][:4] for i in g], [pred[(f, j)][:4] for j in p])
        # registration metrics
        for a, i in enumerate(g):
            if f <= f0[i]:
                continue
            c["pairs"] += 1
            if i not in p:
                continue
            b = p.index(i)
            own = ious[a, b]
            c["iou_sum"] += own
            if own >= MATCH:
                c["success"] += 1
            elif any(ious[k, b] >= MATCH for k in range(len(g)) if k != a):
                c["swaps"] += 1
        # trajectories found together (IDF1)
        for a, i in enumerate(g):
            for b, j in enumerate(p):
                if ious[a, b] >= MATCH:
                    together[gidx[i], pidx[j]] += 1
        # CLEAR MOT
        if not g:
            c["fp"] += len(p)
            continue
        if not p:
            c["fn"] += len(g)
            continue
        score = np.where(ious >= MATCH, ious, 0.0)
        for a, i in enumerate(g):
            for b, j in enumerate(p):
                if score[a, b] > 0 and prev.get(i) == j:
                    score[a, b] += 1000.0
        matched = max_weight_matching(score)
        prev = {}
        for a, b in matched:
            i, j = g[a], p[b]
            if i in last and last[i] != j:
                c["idsw"] += 1
            last[i] = j
            prev[i] = j
        c["tp"] += len(matched)
        c["fn"] += len(g) - len(matched)
        c["fp"] += len(p) - len(matched)
    idtp = int(round(sum(together[a, b] for a, b in max_weight_matching(together))))
    c.update(idtp=idtp, idfn=len(gt) - idtp, idfp=len(pred) - idtp)
    return c


def metrics(c):
    def pct(a, b):
        return 100.0 * a / b if b > 0 else 0.0
    return dict(
        AO=pct(c["iou_sum"], c["pairs"]), SR50=pct(c["success"], c["pairs"]),
        swap_pct=pct(c["swaps"], c["pairs"]),
        IDF1=pct(c["idtp"], c["idtp"] + 0.5 * (c["idfp"] + c["idfn"])),
        IDP=pct(c["idtp"], c["idtp"] + c["idfp"]), IDR=pct(c["idtp"], c["idtp"] + c["idfn"]),
        MOTA=100.0 * (c["tp"] - c["fp"] - c["idsw"]) / max(1, c["gt_boxes"]))


# --- output ---------------------------------------------------------------------------------------

CSV_HEAD = ("sequence,ids,gt_boxes,pred_boxes,pairs,AO,SR50,swaps,swap_pct,IDF1,IDP,IDR,IDTP,IDFP,"
            "IDFN,TP,FP,FN,IDSW,MOTA,frames,seconds,fps")


def table(rows, csv_path):
    width = max([8] + [len(r[0]) for r in rows])
    print(f"{'sequence':<{width}} {'ids':>4} {'pairs':>6} {'AO':>6} {'SR50':>6} {'swaps':>6} "
          f"{'swap%':>6} {'IDF1':>6} {'IDSW':>5} {'MOTA':>7} {'fps':>7}")
    lines = [CSV_HEAD]
    for name, c, frames, seconds in rows:
        m = metrics(c)
        fps = f"{frames / seconds:7.1f}" if seconds else f"{'-':>7}"
        print(f"{name:<{width}} {c['ids']:4d} {c['pairs']:6d} {m['AO']:6.1f} {m['SR50']:6.1f} "
              f"{c['swaps']:6d} {m['swap_pct']:6.1f} {m['IDF1']:6.1f} {c['idsw']:5d} "
              f"{m['MOTA']:7.1f} {fps}")
        tail = (f"{frames},{seconds:.3f},{frames / seconds:.3f}" if seconds
                else (f"{frames},," if frames is not None else ",,"))
        lines.append(
            f"{name},{c['ids']},{c['gt_boxes']},{c['pred_boxes']},{c['pairs']},{m['AO']:.6f},"
            f"{m['SR50']:.6f},{c['swaps']},{m['swap_pct']:.6f},{m['IDF1']:.6f},{m['IDP']:.6f},"
            f"{m['IDR']:.6f},{c['idtp']},{c['idfp']},{c['idfn']},{c['tp']},{c['fp']},{c['fn']},"
            f"{c['idsw']},{m['MOTA']:.6f},{tail}")
    if csv_path:
        with open(csv_path, "w") as f:
            f.write("\n".join(lines) + "\n")
    name, c, _, _ = rows[-1]
    m = metrics(c)
    print(f"AO {m['AO']:.1f} SR50 {m['SR50']:.1f} swaps {m['swap_pct']:.1f}% IDF1 {m['IDF1']:.1f} "
          f"IDSW {c['idsw']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--seq", action="append", default=[])
    ap.add_argument("--tracker", choices=["csrt", "kcf", "identity"], default="csrt")
    ap.add_argument("--pred", help="score DIR/SEQ.txt instead of tracking")
    ap.add_argument("--save", help="write DIR/SEQ.txt (MOTChallenge result format)")
    ap.add_argument("--csv")
    args = ap.parse_args()
    if not os.path.isdir(args.root):
        ap.error(f"{args.root}: not a folder")
    if args.pred and args.save:
        ap.error("--pred scores files: no --save with it")
    cv2 = None
    if not args.pred:
        try:
            import cv2
        except ImportError as e:
            print(f"mot_peer: {e}: tracking needs python3-opencv (apt-get install "
                  f"python3-opencv; Debian's /usr/bin/python3)", file=sys.stderr)
            sys.exit(77)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    seqs = list(dict.fromkeys(args.seq))
    try:
        rows = []
        total = dict(ids=0, gt_boxes=0, pred_boxes=0, pairs=0, iou_sum=0.0, success=0, swaps=0,
                     tp=0, fp=0, fn=0, idsw=0, idtp=0, idfp=0, idfn=0)
        all_frames, all_seconds = 0, 0.0
        for name, seq_dir in find_sequences(args.root, seqs):
            if not os.path.isdir(seq_dir):
                ap.error(f"--seq {name}: no folder {seq_dir}")
            gt = parse_mot(os.path.join(seq_dir, "gt", "gt.txt"), True)
            length = seq_length(seq_dir)
            regs = {}
            for (f, i) in sorted(gt):
                if i not in regs:
                    regs[i] = (f, gt[(f, i)][:4])
            frames, seconds = None, None
            if args.pred:
                path = os.path.join(args.pred, name + ".txt")
                if not os.path.isfile(path):
                    raise BadInput(f"{path}: no such file")
                pred = parse_mot(path, False)
            else:
                pred, frames, seconds = track_sequence(cv2, args.tracker, name, seq_dir, regs)
                if args.tracker == "identity":
                    seconds = None
            if length is not None:
                for what, d in (("gt.txt", gt), (name + ".txt", pred)):
                    if any(f > length for f, _ in d):
                        raise BadInput(f"{name}: {what} has frames beyond seqLength {length}")
            if args.save:
                save(os.path.join(args.save, name + ".txt"), pred)
            c = score_sequence(gt, pred)
            rows.append((name, c, frames, seconds))
            for k in total:
                total[k] += c[k]
            if seconds:
                all_frames += frames
                all_seconds += seconds
        rows.append(("overall", total, all_frames if all_seconds else None,
                     all_seconds if all_seconds else None))
        table(rows, args.csv)
    except (BadInput, OSError) as e:
        print(f"mot_peer: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
