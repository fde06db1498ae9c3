#!/usr/bin/python3
"""Per person of a box-registered MOT run: where a tracker's boxes go wrong.

usage: mot_persons.py ROOT PRED [--seq NAME ...]

ROOT is a folder of MOTChallenge sequences as `vtrack eval --mot` reads them (only gt.txt lines
with conf == 1 count), PRED a folder of result files PRED/SEQ.txt (`vtrack eval --mot --save
PRED`, or bench/mot_peer.py --save). For each person, over the pairs `vtrack eval --mot` scores
(every counted frame after the registration frame):

  AO       mean IoU with the truth (0 on a frame without a predicted box)
  first    first frame whose IoU falls under 0.5
  swapped  frames whose box has IoU >= 0.5 with another person's box and < 0.5 with its own,
           by that person's id
  w, h     median ratio of the predicted box's width and height to the truth's
  dx, dy   mean absolute offset of the centres, as a share of the truth's width and height

and per sequence the same sizes and offsets over every pair, and the lag: the centre's offset
along the person's motion (signed: negative behind), in frames of that motion, median over the
pairs from the 15th frame after registration on where the truth moved at least a pixel and the
boxes overlap; and what the AO would be with every box given the truth's size about its own
centre, or moved to the truth's centre with its own size (which of the two, place or size, costs
more). Plain Python; no NumPy or OpenCV needed.
"""
import argparse
import collections
import os
import statistics
import sys


def load(path, gt):
    """{id: {frame: [x, y, w, h]}}; ground truth keeps conf == 1 lines only."""
    d = collections.defaultdict(dict)
    with open(path) as f:
        for line in f:
            v = line.strip().split(',')
            if len(v) < 6 or (gt and (len(v) < 7 or float(v[6]) != 1)):
                continue
            b = [float(x) for x in v[2:6]]
            if b[2] > 0 and b[3] > 0:
                d[int(float(v[1]))][int(float(v[0]))] = b
    return d


def iou(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    i = iw * ih
    return i / (a[2] * a[3] + b[2] * b[3] - i)


def centre(b):
    return b[0] + b[2] / 2, b[1] + b[3] / 2


def sequence(root, pred, seq):
    gt = load(os.path.join(root, seq, 'gt', 'gt.txt'), True)
    pr = load(os.path.join(pred, seq + '.txt'), False)
    print(f'{seq}: person  pairs    AO  first      swapped       w     h    dx    dy')
    allw, allh, alldx, alldy, lag = [], [], [], [], []
    npairs, s_all, s_size, s_place = 0, 0.0, 0.0, 0.0
    for i in sorted(gt):
        frames = sorted(gt[i])
        s, n, first = 0.0, 0, None
        sw = collections.Counter()
        rw, rh, dx, dy = [], [], [], []
        for k, f in enumerate(frames[1:], 1):
            t, p = gt[i][f], pr.get(i, {}).get(f)
            n += 1
            o = iou(p, t) if p else 0.0
            s += o
            if o < 0.5:
                first = f if first is None else first
                if p:
                    for j in gt:
                        if j != i and f in gt[j] and iou(p, gt[j][f]) >= 0.5:
                            sw[j] += 1
                            break
            if not p:
                continue
            (px, py), (tx, ty) = centre(p), centre(t)
            s_size += iou([px - t[2] / 2, py - t[3] / 2, t[2], t[3]], t)
            s_place += iou([tx - p[2] / 2, ty - p[3] / 2, p[2], p[3]], t)
            rw.append(p[2] / t[2])
            rh.append(p[3] / t[3])
            dx.append(abs(px - tx) / t[2])
            dy.append(abs(py - ty) / t[3])
            prev = gt[i].get(f - 1)
            if k >= 15 and prev and o > 0:
                v = tx - centre(prev)[0]
                if abs(v) >= 1:
                    lag.append((px - tx) / v)
        npairs += n
        s_all += s
        allw += rw
        allh += rh
        alldx += dx
        alldy += dy
        swapped = ' '.join(f'{j}:{c}' for j, c in sorted(sw.items())) or '-'
        sizes = (f'{statistics.median(rw):5.2f} {statistics.median(rh):5.2f} '
                 f'{statistics.mean(dx):5.2f} {statistics.mean(dy):5.2f}' if rw else '')
        print(f'{"":{len(seq)}}  {i:6d} {n:6d} {100 * s / max(n, 1):5.1f} {first or "-":>6} '
              f'{swapped:>12}   {sizes}')
    if allw:
        print(f'{"":{len(seq)}}  all pairs: w {statistics.median(allw):.2f} '
              f'h {statistics.median(allh):.2f} dx {statistics.mean(alldx):.2f} '
              f'dy {statistics.mean(alldy):.2f}; lag '
              + (f'{statistics.median(lag):.2f} frames of motion over {len(lag)} pairs'
                 if lag else 'not measured (no moving pairs)'))
    if npairs:
        print(f'{"":{len(seq)}}  AO {100 * s_all / npairs:.1f}; with the truth\'s size '
              f'{100 * s_size / npairs:.1f}, at the truth\'s centre {100 * s_place / npairs:.1f}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('root')
    ap.add_argument('pred')
    ap.add_argument('--seq', action='append')
    a = ap.parse_args()
    seqs = a.seq or sorted(s for s in os.listdir(a.root)
                           if os.path.isfile(os.path.join(a.root, s, 'gt', 'gt.txt')))
    if not seqs:
        sys.exit(f'mot_persons.py: no sequence with gt/gt.txt under {a.root}')
    for seq in seqs:
        if not os.path.isfile(os.path.join(a.pred, seq + '.txt')):
            sys.exit(f'mot_persons.py: {a.pred}/{seq}.txt not found')
        sequence(a.root, a.pred, seq)


if __name__ == '__main__':
    main()
