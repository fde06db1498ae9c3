#!/usr/bin/python3
"""PyTorch reference check of vtrack's encoders (driven by tests/model/test_encoders_ref.c).

Each architecture is written here again as ordinary torch.nn modules, from the published
definitions and independently of model/arch.c:
  * MAST (zlai0/MAST, models/submodule.py ResNet18 + ResidualBlock, models/mast.py
    post_convolution), saved the way MAST's training script saves it
    ({'epoch', 'state_dict'} with DataParallel's `module.` prefix);
  * torchvision's ResNet-18 (full, with layer4 and fc, torchvision's parameter names), run as
    CRW's test encoder: layer3's convolutions set to stride 1, layer4 removed;
  * CRW's checkpoint layout (ajabri/videowalk: {'model': ...}, `encoder.model.` prefix, a walk
    head, every padded conv with padding_mode='reflect');
  * vtrack's compact encoder (model/arch.c's description);
  * the weight-free `lab` features, in NumPy (CIE Lab of sRGB D65, 8x8 cell means with partial
    cells, 3x3 neighbourhood, edge replication).
Weights and batch-norm statistics are random (running mean/var far from 0/1), the checkpoints
go through tools/convert.py, and the C side (the driver) runs the converted safetensors on the
same random input at two sizes, one of them not a multiple of 8. Pass: max |C - torch| <=
1e-4 * max |torch|.
"""
import argparse
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the C wrapper checks first; this is for direct runs
    print("SKIP: needs torch and numpy under /usr/bin/python3 (%s)" % e)
    sys.exit(77)

TOL = 1e-4


# ------------------------------------------------------------------------------------------
# MAST's encoder
# ------------------------------------------------------------------------------------------
class MastResidualBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.left = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.left(x) + self.shortcut(x))


class MastResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                   nn.ReLU())
        cin, layers = 64, []
        for width, stride in ((64, 1), (128, 2), (256, 1), (256, 1)):
            layers.append(nn.Sequential(MastResidualBlock(cin, width, stride),
                                        MastResidualBlock(width, width, 1)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def forward(self, x):
        x = self.conv1(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Mast(nn.Module):
    def __init__(self):
        super().__init__()
        self.feature_extraction = MastResNet18()
        self.post_convolution = nn.Conv2d(256, 64, 3, 1, 1)

    def forward(self, x):
        return self.post_convolution(self.feature_extraction(x))


# ------------------------------------------------------------------------------------------
# torchvision ResNet-18 (torchvision.models.resnet names) and CRW's use of it
# ------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, layers = 64, []
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, width, stride), BasicBlock(width, width)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def crw_modify(self, padding=""):
        """CRW's ResNet.modify(): layer3 (and 4) convs at stride 1, optional padding mode."""
        for layer in (self.layer3, self.layer4):
            for m in layer.modules():
                if isinstance(m, nn.Conv2d):
                    m.stride = (1, 1)
        if padding:
            for m in self.modules():
                if isinstance(m, nn.Conv2d) and sum(m.padding) > 0:
                    m.padding_mode = padding

    def features_s8(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


class CrwEncoder(nn.Module):  # CRW wraps the network as encoder.model (utils.From3D)
    def __init__(self):
        super().__init__()
        self.model = ResNet18()


class Crw(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = CrwEncoder()
        self.selfsim_fc = nn.Sequential(nn.Linear(256, 128))


# ------------------------------------------------------------------------------------------
# vtrack's compact encoder
# ------------------------------------------------------------------------------------------
class Compact(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64)
        self.block1 = BasicBlock(64, 64)
        self.conv3, self.bn3 = nn.Conv2d(64, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64)
        self.block2 = BasicBlock(64, 64)
        self.block3 = BasicBlock(64, 64)
        self.head = nn.Conv2d(64, 64, 1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.block1(F.relu(self.bn2(self.conv2(x))))
        x = self.block3(self.block2(F.relu(self.bn3(self.conv3(x)))))
        return self.head(x)


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------
def lab_of_rgb(rgb):
    """CIE L*a*b* (D65) of uint8 sRGB HxWx3, float64, as OpenCV's float conversion."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.412453, 0.357580, 0.180423],
                  [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T
    xyz[..., 0] /= 0.950456
    xyz[..., 2] /= 1.088754
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b])  # 3 x H x W


def normalise(rgb, space, mean, std):
    x = lab_of_rgb(rgb) if space == "lab" else rgb.astype(np.float64).transpose(2, 0, 1) / 255.0
    x = (x - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    return torch.from_numpy(x.astype(np.float32))[None]


def lab_features(rgb):
    """vtrack's `lab` encoder (model/labfeat.c) in NumPy."""
    lab = lab_of_rgb(rgb) * np.array([1 / 100, 1 / 128, 1 / 128])[:, None, None]
    h, w = rgb.shape[:2]
    fh, fw = -(-h // 8), -(-w // 8)
    pool = np.zeros((3, fh, fw))
    for y in range(fh):
        for x in range(fw):
            pool[:, y, x] = lab[:, 8 * y:8 * y + 8, 8 * x:8 * x + 8].mean(axis=(1, 2))
    pad = np.pad(pool, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = [pad[c, 1 + dy:1 + dy + fh, 1 + dx:1 + dx + fw]
           for dy in (-1, 0, 1) for dx in (-1, 0, 1) for c in range(3)]
    return np.stack(out)[None]


# ------------------------------------------------------------------------------------------
def randomise(module, gen):
    """He-scaled random convolutions and BN with non-trivial statistics."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
                m.running_var.copy_(0.3 + 1.5 * torch.rand(n, generator=gen))
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.05)
                m.bias.zero_()


def round_weights(module, dtype):
    """Make the module's float parameters exactly what an F16/BF16 file stores."""
    if dtype == "F32":
        return
    conv = importlib.import_module("convert")
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype != torch.float32:
                continue
            if dtype == "F16":
                t.copy_(t.half().float())
            else:
                t.copy_(torch.from_numpy(conv.bf16_round(t.numpy())))


def run_c(driver, weights, kind, arr, work):
    src = os.path.join(work, "in.bin")
    with open(src, "wb") as f:
        f.write(b"VTIN" + struct.pack("<5i", kind, *arr.shape))
        f.write(np.ascontiguousarray(arr).tobytes())
    return encode_file(driver, weights, src, work)


def encode_file(driver, weights, src, work):
    """Run the C side's `encode` on the input file src; its output as an array."""
    dst = os.path.join(work, "out.bin")
    r = subprocess.run([driver, "encode", weights, src, dst], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("C encoder failed: " + r.stderr.strip())
    with open(dst, "rb") as f:
        assert f.read(4) == b"VTOU"
        shape = struct.unpack("<4i", f.read(16))
        return np.frombuffer(f.read(), dtype="<f4").reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--convert", required=True)
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(args.convert)))
    convert = importlib.import_module("convert")
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(2024)
    rng = np.random.default_rng(7)
    work = tempfile.mkdtemp(prefix="vt_ref_enc.")

    # (name, arch, module, checkpoint object, convert args, forward on a normalised tensor)
    mast = Mast().eval()
    randomise(mast, gen)
    tv = ResNet18().eval()
    randomise(tv, gen)
    tv.crw_modify()  # strides only: torchvision weights run as CRW's s8 test encoder
    crw = Crw().eval()
    randomise(crw, gen)
    crw.encoder.model.crw_modify(padding="reflect")
    comp = Compact().eval()
    randomise(comp, gen)
    comp16 = Compact().eval()
    randomise(comp16, gen)
    round_weights(comp16, "F16")
    compbf = Compact().eval()
    randomise(compbf, gen)
    round_weights(compbf, "BF16")

    cases = [
        ("mast-r18 (MAST checkpoint)", "mast-r18", mast,
         {"epoch": 3, "state_dict": {"module." + k: v for k, v in mast.state_dict().items()}},
         [], mast),
        ("r18-s8 (torchvision resnet18)", "r18-s8", tv, tv.state_dict(), [], tv.features_s8),
        ("r18-s8 (CRW checkpoint, reflect)", "r18-s8", crw,
         {"model": crw.state_dict(), "epoch": 1}, [], crw.encoder.model.features_s8),
        ("compact-s8", "compact-s8", comp, {"state_dict": comp.state_dict()}, [], comp),
        ("compact-s8 (F16 file)", "compact-s8", comp16, comp16.state_dict(),
         ["--dtype", "F16"], comp16),
        ("compact-s8 (BF16 file)", "compact-s8", compbf, compbf.state_dict(),
         ["--dtype", "BF16"], compbf),
    ]
    sizes = [(1, 97, 131), (2, 128, 160)]  # (batch, h, w); 97x131 is not a multiple of 8
    results = []
    print("%-34s %-16s %10s %10s %9s" % ("case", "input", "max|ref|", "max err", "err/max"))

    def report(name, what, ref, got):
        ok = ref.shape == got.shape
        mx = float(np.abs(ref).max()) if ok else float("nan")
        err = float(np.abs(ref - got).max()) if ok else float("inf")
        ok = ok and np.isfinite(err) and err <= TOL * mx
        print("%-34s %-16s %10.4g %10.3g %9.2e %s" % (
            name, what, mx, err, err / mx if mx else 0.0, "PASS" if ok else
            "FAIL (shapes %s vs %s)" % (ref.shape, got.shape) if ref.shape != got.shape
            else "FAIL"))
        results.append(ok)

    for name, arch, module, ckpt, conv_args, fwd in cases:
        pth = os.path.join(work, "ckpt.pth")
        out = os.path.join(work, arch + ".safetensors")
        torch.save(ckpt, pth)
        convert.main([pth, out] + conv_args)
        space, mean, std = convert.ARCH_INPUT[arch]
        with torch.no_grad():
            for n, h, w in sizes:
                x = torch.from_numpy(rng.standard_normal((n, 3, h, w)).astype(np.float32))
                ref = fwd(x).numpy()
                got = run_c(args.driver, out, 0, x.numpy(), work)
                report(name, "float %dx%dx%d" % (n, h, w), ref, got)
            rgb = rng.integers(0, 256, size=(97, 131, 3), dtype=np.uint8)
            ref = fwd(normalise(rgb, space, mean, std)).numpy()
            got = run_c_rgb(args.driver, out, rgb, work)
            report(name, "rgb 97x131", ref, got)

    # `lab`: no weights; a metadata-only file.
    lab_file = os.path.join(work, "lab.safetensors")
    convert.write_safetensors(lab_file, {}, {"vtrack.arch": "lab"})
    for h, w in ((97, 131), (128, 160)):
        rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        # Smooth regions too, so cells differ by more than noise.
        rgb[: h // 2, : w // 3] = (200, 30, 60)
        report("lab", "rgb %dx%d" % (h, w), lab_features(rgb), run_c_rgb(args.driver, lab_file,
                                                                          rgb, work))

    shutil.rmtree(work, ignore_errors=True)
    npass = sum(results)
    print("%d passed, %d failed" % (npass, len(results) - npass))
    return 0 if all(results) else 1


def run_c_rgb(driver, weights, rgb, work):
    """Run the C encoder on an HxWx3 uint8 image (header (1, 3, h, w), HWC bytes)."""
    src = os.path.join(work, "in.bin")
    h, w = rgb.shape[:2]
    with open(src, "wb") as f:
        f.write(b"VTIN" + struct.pack("<5i", 1, 1, 3, h, w))
        f.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    return encode_file(driver, weights, src, work)


if __name__ == "__main__":
    sys.exit(main())
