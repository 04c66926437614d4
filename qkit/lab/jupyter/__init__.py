"""JupyterLab and Voila set up for a class without network: installed into the environment's
own prefix (``sys.prefix``) by ``python -m qkit warmup``, which ``make lab`` and the Binder
build run.

- ``share/jupyter/voila/templates/qkit/``: Voila's "lab" template minus its links to a CDN
  (Font Awesome's stylesheets, which Voila 0.5 fetches from cdn.jsdelivr.net on every page);
- ``etc/jupyter/voila.json``: makes that template Voila's default, and keeps out of app mode
  the JupyterLab extensions that only work inside JupyterLab (nbgrader's, Notebook 7's);
- ``share/jupyter/lab/settings/overrides.json``: JupyterLab never asks the internet for news
  or for a newer release.

The browser tests fail on any request that leaves 127.0.0.1 (tests/browser).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("voila_template")
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {
    "checkForUpdates": False, "fetchNews": "false"}}
# JupyterLab extensions that Voila would load but that only make sense in JupyterLab: in app
# mode they fail to find JupyterLab's shared modules and log errors in the browser's console
VOILA_DENY = ["@jupyter/nbgrader", "@jupyter-notebook/lab-extension"]
VOILA_CONFIG = {"VoilaConfiguration": {"template": "qkit", "extension_denylist": VOILA_DENY}}


def install(prefix=None) -> list[Path]:
    """Write the three pieces under ``prefix`` (default: this Python's environment); returns
    the paths written. Existing JupyterLab overrides and Voila settings are kept, qkit's
    merged in."""
    root = Path(prefix or sys.prefix)
    template = root / "share" / "jupyter" / "voila" / "templates" / "qkit"
    if template.exists():
        shutil.rmtree(template)
    shutil.copytree(TEMPLATE, template)
    written = [template]
    for path, ours in ((root / "etc" / "jupyter" / "voila.json", VOILA_CONFIG),
                       (root / "share" / "jupyter" / "lab" / "settings" / "overrides.json",
                        LAB_OVERRIDES)):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            current = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            current = {}
        if not isinstance(current, dict):
            current = {}
        for key, value in ours.items():
            current[key] = {**current.get(key, {}), **value}
        path.write_text(json.dumps(current, indent=2) + "\n")
        written.append(path)
    return written
