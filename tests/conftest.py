"""Shared test set-up: seeded data, a warm numba cache, hypothesis without deadlines."""

import os

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..",
                                                      ".numba_cache"))

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT") == "1"

settings.register_profile("qkit", deadline=None, max_examples=60 if not JIT_DISABLED else 15,
                          suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("qkit")


def pytest_configure(config):
    config.addinivalue_line("markers", "nojit: also run with NUMBA_DISABLE_JIT=1 (make test)")
    config.addinivalue_line("markers", "browser: JupyterLab in headless Chromium (make test)")


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    from qkit.kernels import warmup

    warmup()


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)
