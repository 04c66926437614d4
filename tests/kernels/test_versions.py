"""The numbered GEMM versions (`qkit.kernels.versions`): each computes the reference's
integers, says what changed since the one before, and runs by number."""

import subprocess
import sys

import numpy as np
import pytest

from qkit import reference
from qkit.kernels import versions

NUMBERS = range(1, len(versions.MODULES) + 1)


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (4, 4, 4), (9, 13, 17), (3, 64, 33)])
def test_every_version_is_exact(number, shape):
    if not versions.available(number):
        pytest.skip(f"version {number} needs an instruction set this CPU lacks")
    a, w = versions.operands(number, *shape, seed=number)
    run = versions.checked(number, a, w)  # raises if it differs
    assert np.array_equal(np.asarray(run()), reference.gemm(a, w))


@pytest.mark.parametrize("number", NUMBERS)
def test_every_version_says_what_changed(number):
    doc = versions.module(number).__doc__
    assert doc.startswith(f"Version {number}:"), doc[:40]
    if number > 1:
        assert "What changed" in doc
    assert versions.module(number).TITLE


def test_a_wrong_version_is_refused(monkeypatch):
    mod = versions.module(3)
    monkeypatch.setattr(mod, "prepare", lambda a, w: lambda: reference.gemm(a, w) + 1)
    with pytest.raises(AssertionError, match="refusing to time it"):
        versions.checked(3, *versions.operands(3, 2, 3, 4))
    with pytest.raises(ValueError, match="number must be a version"):
        versions.module(0)


def test_runnable_by_number():
    out = subprocess.run([sys.executable, "-m", "qkit.kernels.versions", "3", "4", "--shape",
                          "8", "16", "8"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("exact" in line and "GOP/s" in line for line in lines)
