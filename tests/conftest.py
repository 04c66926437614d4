"""Shared test set-up: seeded data, a warm numba cache, hypothesis without deadlines."""

import hashlib
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from torch import nn

matplotlib.use("Agg")
def _kernel_sources_hash() -> str:
    """A hash of every file under qkit/kernels/: numba's cache sees only each function's own
    file, so a kernel built from IR emitters elsewhere must not meet a stale cache
    (docs/performance.md; the Makefile keys its cache folder the same way)."""
    root = Path(__file__).resolve().parents[1] / "qkit" / "kernels"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# checker results are recorded to a file a student submits; not from the test suite (tests that
# grade set it to a temporary file), nor from the notebooks nbval and the browser tests run
os.environ.setdefault("QKIT_RESULTS", "")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"
                                             / _kernel_sources_hash()))

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT") == "1"

settings.register_profile("qkit", deadline=None, max_examples=60 if not JIT_DISABLED else 15,
                          suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("qkit")


def pytest_configure(config):
    config.addinivalue_line("markers", "nojit: also run with NUMBA_DISABLE_JIT=1 (make test)")
    config.addinivalue_line("markers", "browser: JupyterLab in headless Chromium (make test)")
    config.addinivalue_line("markers", "slow: real models, training, whole notebooks; make test "
                                       "runs them, make test-fast skips them")


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    from qkit.kernels import warmup

    warmup()


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)


class Small(nn.Module):
    """Every op kind the engine knows: conv (+BN, ReLU, ReLU6, depthwise, pointwise), residual
    add, max and global average pooling, a standalone ReLU, flatten and linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c3 = nn.Conv2d(8, 8, 1)
        self.mp, self.pool = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = self.mp(x + self.c3(nn.functional.relu6(self.c2(x))))
        return self.fc(self.relu(self.pool(x)).flatten(1))


class Flat(nn.Module):
    """Flatten of an NHWC feature map into a linear layer (the weight columns get reordered)."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 5 * 5, 6)

    def forward(self, x):
        return self.fc(nn.functional.relu(self.b(self.c(x))).view(x.size(0), -1))


@pytest.fixture
def models():
    """Two small float models with non-trivial BN statistics (`Small`, `Flat`)."""
    torch.manual_seed(0)
    out = [Small().eval(), Flat().eval()]
    with torch.no_grad():
        for bn in (out[0].b1, out[1].b):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return out


@pytest.fixture(scope="session")
def mnist():
    """The kit's MNIST CNN and its fixed 4,000 / 1,000 split, as model inputs."""
    from qkit import data
    from qkit.models import mnist_cnn

    split = data.mnist5k()
    return {"model": mnist_cnn.load(),
            "x": mnist_cnn.to_input(split["x_train"]), "y": torch.from_numpy(split["y_train"]),
            "x_test": mnist_cnn.to_input(split["x_test"]), "y_test": split["y_test"]}
