"""``python -m qkit doctor`` and ``QKIT_ISA``: the family chosen, why, and a clear refusal of a
family this CPU cannot run or qkit has not built."""

import os
import subprocess
import sys

import pytest

from qkit.kernels import dispatch
from qkit.studies import doctor


def _run(code, **env):
    e = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                          timeout=300)


def test_doctor_prints_the_family_and_why(capsys):
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert f"kernels        {dispatch.path()}: {dispatch.reason()}" in out
    assert "plain" in doctor.report()["runnable"]
    assert doctor.report()["family"] in doctor.report()["runnable"]


def test_default_follows_the_cpu_features():
    feats = doctor.report()["features"]
    family, why = dispatch.choose("")
    if feats["avx512vnni"] and feats["avx512bw"] and feats["avx512f"]:
        assert family == "avx512vnni" and "VNNI" in why
    elif feats["avx2"]:
        assert family == "avx2"


@pytest.mark.parametrize("family", dispatch.FAMILIES)
def test_qkit_isa_switches_every_kernel_to_that_family(family):
    if family not in doctor.report()["runnable"]:
        pytest.skip(f"this CPU cannot run {family}")
    code = ("import numpy as np, qkit, qkit.reference as R\n"
            "from qkit.kernels import dispatch\n"
            "rng = np.random.default_rng(0)\n"
            "a = rng.integers(0, 256, (37, 300)).astype(np.uint8)\n"
            "w = rng.integers(-127, 128, (19, 300)).astype(np.int8)\n"
            "assert (qkit.kernels.gemm(a, w) == R.gemm(a, w)).all()\n"
            "print(dispatch.path(), dispatch.USE_VNNI, dispatch.USE_AVX2, dispatch.reason())")
    r = _run(code, QKIT_ISA=family)
    assert r.returncode == 0, r.stderr
    path, vnni, avx2, why = r.stdout.split(" ", 3)
    assert path == family and why.strip() == f"QKIT_ISA={family}"
    assert (vnni, avx2) == (str(family == "avx512vnni"), str(family == "avx2"))


@pytest.mark.parametrize("value, match", [("neon", "no neon kernels yet"),
                                          ("avxvnni", "no avxvnni kernels yet"),
                                          ("sse9", "not a kernel family")])
def test_bad_qkit_isa_is_named(value, match):
    with pytest.raises(ValueError, match=f"QKIT_ISA='{value}'.*{match}"):
        dispatch.choose(value)
    r = _run("import qkit", QKIT_ISA=value)
    assert r.returncode != 0 and "QKIT_ISA" in r.stderr


def test_a_family_the_cpu_cannot_run_is_refused():
    r = _run("from qkit.kernels import dispatch; print(dispatch.path())",
             QKIT_ISA="avx512vnni", QKIT_DISABLE_VNNI="1")
    assert r.returncode != 0 and "cannot run it" in r.stderr
