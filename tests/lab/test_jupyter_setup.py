"""qkit's offline set-up of JupyterLab and Voila (`qkit.lab.jupyter`), installed into a prefix."""

import json

from qkit.lab import jupyter


def test_install_writes_the_template_and_merges_settings(tmp_path):
    settings = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "Dark"},
                                    "@jupyterlab/apputils-extension:notification":
                                        {"doNotDisturbMode": True}}))
    written = jupyter.install(tmp_path)
    template = tmp_path / "share" / "jupyter" / "voila" / "templates" / "qkit"
    assert template in written and (template / "index.html.j2").exists()
    assert json.loads((template / "conf.json").read_text())["base_template"] == "lab"
    voila = json.loads((tmp_path / "etc" / "jupyter" / "voila.json").read_text())
    assert voila["VoilaConfiguration"]["template"] == "qkit"
    assert "@jupyter/nbgrader" in voila["VoilaConfiguration"]["extension_denylist"]
    lab = json.loads(settings.read_text())
    assert lab["@jupyterlab/apputils-extension:themes"] == {"theme": "Dark"}  # kept
    assert lab["@jupyterlab/apputils-extension:notification"] == {
        "doNotDisturbMode": True, "checkForUpdates": False, "fetchNews": "false"}
    jupyter.install(tmp_path)  # twice is the same as once
    assert json.loads(settings.read_text()) == lab


def test_the_template_links_nothing_off_the_machine():
    text = (jupyter.TEMPLATE / "index.html.j2").read_text()
    assert "extends 'lab/index.html.j2'" in text and "http" not in text.replace("://", "")


def test_a_broken_settings_file_is_replaced_not_fatal(tmp_path):
    path = tmp_path / "etc" / "jupyter" / "voila.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    jupyter.install(tmp_path)
    assert json.loads(path.read_text())["VoilaConfiguration"]["template"] == "qkit"
