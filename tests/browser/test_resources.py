"""The series fits a Binder-sized box: each notebook runs on 1 CPU within 2 GB and 60 s.

Runs every notebook with nbconvert pinned to one core (``taskset -c 0``) under GNU time,
and reports wall time and the peak resident memory of the process tree."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("taskset") is None or not os.path.exists("/usr/bin/time"),
                    reason="needs taskset and GNU time (/usr/bin/time)")
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_on_one_cpu_in_2gb(nb, tmp_path):
    cmd = ["taskset", "-c", "0", "/usr/bin/time", "-f", "%e %M", sys.executable, "-m",
           "jupyter", "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.timeout=120", "--output", str(tmp_path / nb.name), str(nb)]
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seconds, kb = re.findall(r"^([\d.]+) (\d+)$", out.stderr, re.M)[-1]
    print(f"{nb.name}: {float(seconds):.1f} s, peak {int(kb) / 1024:.0f} MB on 1 CPU")
    assert float(seconds) < 60 and int(kb) < 2 * 1024 * 1024
