"""A small CNN for MNIST-5k: conv-BN-ReLU blocks and a linear classifier.

``python -m qkit train mnist-cnn`` trains it from the seed (CPU, about a minute,
2 threads) and writes ``data/mnist_cnn.npz``; `load` reads the committed weights
after checking their sha256.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qkit import data

WEIGHTS = {"file": "mnist_cnn.npz",  # written by `python -m qkit train mnist-cnn`
           "sha256": "69eca1a2545310c51fa351b36b3e17c9a090e003bebe780bd0b8d031dd90f0e9"}
SEED, EPOCHS, BATCH, THREADS = 20261127, 18, 64, 2


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())


class MnistCNN(nn.Module):
    """(N,1,28,28) floats in [0, 1] -> (N,10) logits; 91k parameters."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(1, 16), conv_bn_relu(16, 32), nn.MaxPool2d(2),  # 14x14
            conv_bn_relu(32, 64), nn.MaxPool2d(2),  # 7x7
            conv_bn_relu(64, 64))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N,28,28) -> float tensor (N,1,28,28) in [0, 1]."""
    return torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small random rotations, scalings and shifts (a batch at a time, on the CPU)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) - 0.5) * 0.4  # +-11 degrees
    scale = 1 + (torch.rand(n, generator=gen) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.3  # +-2 pixels
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def train(epochs: int = EPOCHS, progress: bool = True, limit: int | None = None) -> MnistCNN:
    """Train from the fixed seed on the 4,000 training images (or the first ``limit``)."""
    from tqdm.auto import tqdm

    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(SEED)
    split = data.mnist5k()
    x, y = to_input(split["x_train"]), torch.from_numpy(split["y_train"])
    if limit is not None:
        x, y = x[:limit], y[:limit]
    model = MnistCNN()
    steps = epochs * (-(-len(x) // BATCH))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="train mnist-cnn", disable=not progress)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            loss = F.cross_entropy(model(augment(x[idx], gen)), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(to_input(images)).argmax(1).numpy() == labels).mean())


def save(model: MnistCNN, path) -> str:
    """Write the float32 state dict to ``path`` (npz, no pickle); returns its sha256."""
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    np.savez(path, **state)
    return data.sha256(path)


def load() -> MnistCNN:
    """The committed weights, checked against their sha256."""
    path = data.verified_file(data.DATA_DIR / WEIGHTS["file"], WEIGHTS["sha256"],
                              "python -m qkit train mnist-cnn   (about a minute on 2 cores)")
    model = MnistCNN()
    with np.load(path, allow_pickle=False) as z:
        model.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
    return model.eval()


def main(out=None) -> int:
    """``python -m qkit train mnist-cnn``: train, report accuracy and write the weights."""
    t0 = time.perf_counter()
    model = train()
    split = data.mnist5k()
    acc = accuracy(model, split["x_test"], split["y_test"])
    path = out or data.DATA_DIR / WEIGHTS["file"]
    digest = save(model, path)
    print(f"trained in {time.perf_counter() - t0:.0f} s; test accuracy {acc:.4f} "
          f"({len(split['y_test'])} images); wrote {path} sha256 {digest}")
    return 0
