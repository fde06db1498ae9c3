#!/usr/bin/python3
"""Convert a PyTorch checkpoint (.pth / .pt) into a vtrack safetensors weights file.

usage: /usr/bin/python3 tools/convert.py IN.pth OUT.safetensors
           [--arch mast-r18|r18-s8|compact-s8] [--layout auto|mast|crw|torchvision|vtrack]
           [--padding zeros|reflect] [--dtype F32|F16|BF16] [--provenance TEXT]

Checkpoint shapes understood:
  * a plain state dict, or a dict holding it under 'state_dict' or 'model' (MAST saves
    {'epoch', 'state_dict', 'optimizer'}; CRW saves {'model', 'optimizer', ...});
  * `module.` prefixes from nn.DataParallel / DistributedDataParallel are stripped;
  * MAST (zlai0/MAST): `feature_extraction.` is stripped, `post_convolution.*` kept -> mast-r18;
  * CRW (ajabri/videowalk): `encoder.model.` is stripped, the walk head (selfsim_fc) dropped,
    and the encoder's reflection padding recorded (vtrack.padding = reflect) -> r18-s8;
  * torchvision resnet18: layer4, avgpool and fc dropped -> r18-s8 (layer3 runs at stride 1);
  * vtrack's own compact encoder names (conv1, block1, ..., head) -> compact-s8.
BatchNorm's num_batches_tracked counters are dropped (inference does not use them).

The output's __metadata__ names the architecture (vtrack.arch), the input colour space
(vtrack.input: lab or rgb) and its normalisation (vtrack.mean / vtrack.std: (x - mean) / std
with RGB in [0, 1] and Lab L in [0, 100], a and b in about +-128), the padding mode, and the
provenance (source file and layout). The C loader (model/model.c) validates every tensor name
and shape against the architecture, so a wrong guess fails there with a clear message.

The safetensors writer is a few lines of NumPy (no `safetensors` package needed); tests use
write_safetensors() directly.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

# Input definitions per architecture: colour space, mean, std (see model/arch.c).
ARCH_INPUT = {
    # MAST's loaders: cv2 Lab of float RGB in [0,1], Normalize([50,0,0], [50,127,127]).
    "mast-r18": ("lab", (50.0, 0.0, 0.0), (50.0, 127.0, 127.0)),
    # torchvision / CRW: RGB in [0,1] with ImageNet statistics.
    "r18-s8": ("rgb", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # vtrack's compact encoder: L/50 - 1, a/110, b/110.
    "compact-s8": ("lab", (50.0, 0.0, 0.0), (50.0, 110.0, 110.0)),
}


def write_safetensors(path, tensors, metadata, dtype="F32"):
    """Write {name: array} (float) as safetensors with string metadata, atomically."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            # bfloat16 = the top 16 bits of a float32, rounded to nearest even.
            u = a.view(np.uint32).astype(np.uint64)
            u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
            raw = u.tobytes()
        else:
            raise ValueError("dtype must be F32, F16 or BF16, not %r" % dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def bf16_round(a):
    """The float32 values a BF16 file stores for `a` (for references that compare exactly)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def unwrap(ckpt):
    """The state dict inside a checkpoint."""
    for key in ("state_dict", "model"):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            return unwrap(ckpt[key])
    if not isinstance(ckpt, dict):
        raise SystemExit("convert: checkpoint is a %s, not a state dict" % type(ckpt).__name__)
    return ckpt


def strip_module(sd):
    out = {}
    for k, v in sd.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def detect_layout(sd):
    keys = set(sd)
    if any(k.startswith("feature_extraction.") for k in keys) or "post_convolution.weight" in keys:
        return "mast"
    if any(k.startswith("encoder.model.") for k in keys):
        return "crw"
    if "block1.conv1.weight" in keys and "head.weight" in keys:
        return "vtrack"
    if "layer1.0.conv1.weight" in keys and "bn1.weight" in keys:
        return "torchvision"
    if "layer1.0.left.0.weight" in keys:
        return "mast"
    raise SystemExit("convert: cannot tell the checkpoint's layout (first keys: %s); "
                     "pass --layout" % ", ".join(sorted(keys)[:6]))


def convert(sd, layout):
    """(arch, padding, {name: tensor}) in vtrack's names."""
    out, padding = {}, "zeros"
    if layout == "mast":
        arch = "mast-r18"
        for k, v in sd.items():
            if k.startswith("feature_extraction."):
                out[k[len("feature_extraction."):]] = v
            elif k.startswith("post_convolution."):
                out[k] = v
            elif k.startswith(("conv1.", "layer")):
                out[k] = v  # already stripped
            # anything else (e.g. a colorizer) is not part of the encoder
    elif layout in ("crw", "torchvision"):
        arch = "r18-s8"
        prefix = "encoder.model." if layout == "crw" else ""
        if layout == "crw":
            padding = "reflect"  # CRW's 'scratch' encoder: padding_mode='reflect'
        for k, v in sd.items():
            if not k.startswith(prefix):
                continue
            k = k[len(prefix):]
            if k.startswith(("layer4.", "fc.", "avgpool")):
                continue
            out[k] = v
    elif layout == "vtrack":
        arch = "compact-s8"
        out = dict(sd)
    else:
        raise SystemExit("convert: unknown layout %r" % layout)
    out = {k: v for k, v in out.items() if not k.endswith("num_batches_tracked")}
    return arch, padding, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--arch", choices=sorted(ARCH_INPUT))
    ap.add_argument("--layout", default="auto",
                    choices=["auto", "mast", "crw", "torchvision", "vtrack"])
    ap.add_argument("--padding", choices=["zeros", "reflect"])
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--provenance", default="")
    args = ap.parse_args(argv)

    import torch  # only needed to read the checkpoint

    ckpt = torch.load(args.input, map_location="cpu")
    sd = strip_module(unwrap(ckpt))
    layout = detect_layout(sd) if args.layout == "auto" else args.layout
    arch, padding, tensors = convert(sd, layout)
    if args.arch and args.arch != arch:
        raise SystemExit("convert: layout %s gives %s, not --arch %s" % (layout, arch, args.arch))
    if args.padding:
        padding = args.padding
    space, mean, std = ARCH_INPUT[arch]
    meta = {
        "vtrack.arch": arch,
        "vtrack.input": space,
        "vtrack.mean": ",".join("%.9g" % m for m in mean),
        "vtrack.std": ",".join("%.9g" % s for s in std),
        "vtrack.padding": padding,
        "vtrack.provenance": "converted by tools/convert.py from %s (%s layout)%s" % (
            os.path.basename(args.input), layout,
            ("; " + args.provenance) if args.provenance else ""),
    }
    arrays = {k: v.detach().float().cpu().numpy() for k, v in tensors.items()}
    write_safetensors(args.output, arrays, meta, args.dtype)
    print("convert: %s -> %s: %s (%s layout, %d tensors, %s, padding %s)" % (
        args.input, args.output, arch, layout, len(arrays), args.dtype, padding))
    return 0


if __name__ == "__main__":
    sys.exit(main())
