"""The classroom pins resolve, wheels only, on the Pythons and platforms students have
(requirements/check_pins.py; ``make check-pins`` runs the whole matrix). Needs PyPI: skipped,
saying so, where it cannot be reached."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("python, platform", [
    ("3.11", "linux"), ("3.12", "linux"), ("3.13", "linux"),
    ("3.13", "macos-arm64"), ("3.13", "windows"),
])
def test_pins_resolve(python, platform):
    if not _pypi_reachable():
        pytest.skip("pypi.org cannot be reached from here")
    run = subprocess.run([sys.executable, str(ROOT / "requirements" / "check_pins.py"),
                          "--python", python, "--platform", platform],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert f"Python {python} on {platform}" in run.stdout and "resolves" in run.stdout


def test_requires_python_matches_the_checked_versions():
    import tomllib

    sys.path.insert(0, str(ROOT / "requirements"))
    try:
        import check_pins
    finally:
        sys.path.pop(0)
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec == f">={check_pins.PYTHONS[0]},<3.{int(check_pins.PYTHONS[-1][2:]) + 1}"
