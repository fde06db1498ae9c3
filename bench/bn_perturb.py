#!/usr/bin/python3
"""bench/bn_perturb.py - a weights file with its batch-norm running statistics moved a little,
to see how much the tracker's results hang on them (docs/RESULTS.md, "Batch-norm statistics
taken again, with vtrack recalibrate").

usage: bench/bn_perturb.py BASE A B SCALE OUT
  writes OUT: BASE with every running mean and variance moved by SCALE * (A - B), where A and B
  are two files of the same architecture (typically `vtrack recalibrate` of one file with two
  seeds, so A - B is the size of the statistics' own sampling noise). Variances are kept at
  1e-6 or more. Every other tensor and the metadata are BASE's, byte for byte.

Needs Debian's /usr/bin/python3 with numpy.
"""
import json
import struct
import sys

import numpy as np


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    return buf, n, header


def tensor(buf, n, entry):
    assert entry["dtype"] == "F32", entry["dtype"]
    b, e = entry["data_offsets"]
    return np.frombuffer(buf[8 + n + b : 8 + n + e], dtype="<f4")


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    base, a, b = (read(p) for p in sys.argv[1:4])
    scale = float(sys.argv[4])
    out = bytearray(base[0])
    moved = 0
    for name, entry in base[2].items():
        if name == "__metadata__" or ".running_" not in name:
            continue
        if name not in a[2] or name not in b[2]:
            sys.exit(f"bn_perturb.py: {name} is missing from A or B")
        x = tensor(base[0], base[1], entry).astype(np.float64)
        x += scale * (tensor(a[0], a[1], a[2][name]) - tensor(b[0], b[1], b[2][name]))
        if ".running_var" in name:
            x = np.maximum(x, 1e-6)
        s, e = entry["data_offsets"]
        out[8 + base[1] + s : 8 + base[1] + e] = x.astype("<f4").tobytes()
        moved += 1
    if moved == 0:
        sys.exit("bn_perturb.py: BASE has no running statistics")
    with open(sys.argv[5], "wb") as f:
        f.write(out)
    print(f"{sys.argv[5]}: {moved} running statistics moved by {scale} * (A - B)")


if __name__ == "__main__":
    main()
