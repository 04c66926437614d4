"""A JupyterLab server on 127.0.0.1 serving a temporary copy of the notebooks, and a
headless Chromium (Debian's package) driven by Playwright. Skipped, with the reason, where
either is missing; `make test` installs both on CI."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "qkit-browser-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


STUDENT_EDITION = ("00_welcome.ipynb", "03_integer_arithmetic.ipynb")


@pytest.fixture(scope="session")
def notebooks_copy(tmp_path_factory) -> Path:
    """The notebooks as committed, and a student edition of two of them (``student-NN...``)."""
    from qkit.lab import editions

    work = tmp_path_factory.mktemp("notebooks")
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy(nb, work / nb.name)
    for name in STUDENT_EDITION:
        nb = editions.student_edition(json.loads((ROOT / "notebooks" / name).read_text()))
        (work / f"student-{name}").write_text(json.dumps(nb))
    return work


def offsite_requests(page) -> list[str]:
    """Every request ``page`` makes that would leave this machine (anything but 127.0.0.1,
    localhost, data: and blob: URLs), collected as they happen: the kit runs offline."""
    found = []

    def seen(request):
        url = urllib.parse.urlsplit(request.url)
        if url.scheme not in ("data", "blob") and url.hostname not in ("127.0.0.1", "localhost"):
            found.append(request.url)

    page.on("request", seen)
    return found


def _env(tmp: Path) -> dict:
    # JupyterLab's news and update checks are off by qkit's own overrides.json, which
    # `python -m qkit warmup` installs (qkit.lab.jupyter): nothing is set here for the test
    notebook = tmp / "lab-settings" / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True, exist_ok=True)  # render every cell, so widgets far down exist
    (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
                JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PYTHONPATH=str(ROOT))


@pytest.fixture(scope="session")
def lab_url(notebooks_copy, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1",
           "--port", str(port), f"--IdentityProvider.token={TOKEN}",
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={notebooks_copy}"]
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=_env(tmp), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={TOKEN}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    out = ROOT / "build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def voila_app(notebooks_copy, tmp_path):
    """Start Voila on one notebook (a fresh server each time: no state from earlier renders)."""
    pytest.importorskip("voila", reason="voila is not installed")
    procs = []

    def start(name: str) -> str:
        port = _free_port()
        cmd = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", "--ServerApp.allow_root=True", str(notebooks_copy / name)]
        log = open(tmp_path / "voila.log", "w")
        procs.append(subprocess.Popen(cmd, env=_env(tmp_path), stdout=log,
                                      stderr=subprocess.STDOUT))
        deadline = time.time() + 60  # wait for the port: GET / would already render
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        return f"http://127.0.0.1:{port}/"

    def stop():
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        procs.clear()

    start.stop = stop
    yield start
    stop()
