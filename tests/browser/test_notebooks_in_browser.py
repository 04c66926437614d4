"""Every notebook, opened in JupyterLab in a real (headless) browser: run all cells, wait for
the kernel, move the main explorer's first slider and check that its plot really changes; then
move every other control of that explorer (sliders, checkboxes, menus, toggle buttons), one at
a time, and check that each one changes the plot too."""

import hashlib
import time
from pathlib import Path

import pytest

from qkit.lab.exercises.feedback import NOT_ANSWERED

from .conftest import ROOT, STUDENT_EDITION, TOKEN, offsite_requests

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
BAD_TEXT = ("Error displaying widget", "Loading widget...")


def _wait(page, predicate_js: str, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.evaluate(predicate_js):
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""

ALL_RUN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return cells.length > 0 && cells.every(c => c.model.executionCount !== null);
}"""


def _first_explorer_image(page, root=".jp-OutputArea", timeout_ms: int = 120_000):
    """The src of the image drawn by the widget that holds the first slider, and its handle."""
    handle = page.locator(f"{root} .noUi-handle").first
    handle.wait_for(timeout=timeout_ms)
    src = handle.evaluate("""h => {
      const out = h.closest('.widget-vbox') || h.closest('.jp-OutputArea-output');
      const img = out && out.querySelector('img');
      return img ? img.src : null;
    }""")
    return handle, src


def _every_control_changes_the_plot(page, handle, name: str) -> list[str]:
    """Each control of the explorer that holds ``handle``, moved alone as a student would (a
    slider to its ends, a checkbox clicked, a menu to its next entry, another toggle button):
    the plot's image must change every time. Returns the controls moved."""
    box = handle.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")

    def image():
        return box.locator("img").first.get_attribute("src")

    def changed_from(before, timeout=60.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            _wait(page, KERNEL_IDLE, 120, "the redraw")
            if image() != before:
                return True
            time.sleep(0.3)
        return False

    moved = []
    for i in range(box.locator(".noUi-handle").count()):
        slider = box.locator(".noUi-handle").nth(i)
        ok = False
        for key in ("Home", "End"):
            before = image()
            slider.scroll_into_view_if_needed()
            slider.focus()
            page.keyboard.press(key)
            if changed_from(before, 30.0):
                ok = True
                break
        assert ok, f"{name}: slider {i} of the explorer does not change the plot"
        moved.append(f"slider {i}")
    for i in range(box.locator("input[type=checkbox]").count()):
        before = image()
        box.locator("input[type=checkbox]").nth(i).click()
        assert changed_from(before), f"{name}: checkbox {i} does not change the plot"
        moved.append(f"checkbox {i}")
    for i in range(box.locator("select").count()):
        select = box.locator("select").nth(i)
        n = select.locator("option").count()
        current = select.evaluate("s => s.selectedIndex")
        before = image()
        select.select_option(index=(current + 1) % n)
        assert changed_from(before), f"{name}: menu {i} does not change the plot"
        moved.append(f"menu {i}")
    for i in range(box.locator(".widget-toggle-buttons").count()):
        group = box.locator(".widget-toggle-buttons").nth(i)
        before = image()
        group.locator("button:not(.mod-active)").first.click()
        assert changed_from(before), f"{name}: toggle buttons {i} do not change the plot"
        moved.append(f"toggle {i}")
    return moved


def shutdown_kernels(lab_url: str) -> None:
    """Stop every kernel of the lab server: an idle kernel still holds its models (up to ~1 GB)
    and its threads, and later tests (Voila renders, the 1-CPU runs) would share the machine
    with all of them."""
    import json
    import urllib.request

    api = f"{lab_url}/api/kernels"
    with urllib.request.urlopen(f"{api}?token={TOKEN}", timeout=10) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{api}/{k['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()


@pytest.fixture
def lab(lab_url):
    yield lab_url
    shutdown_kernels(lab_url)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_its_explorer_responds(browser, lab, shots, name):
    lab_url = lab
    page, errors, offsite, ran = _open_and_run_all(browser, lab_url, name)
    try:
        handle, before = _first_explorer_image(page)
    except Exception:
        page.screenshot(path=str(shots / f"{Path(name).stem}-failure.png"), full_page=True)
        raise
    assert before, f"{name}: the first explorer shows no plot"
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowLeft")  # every main explorer starts above its slider's minimum
    _wait(page, KERNEL_IDLE, 60, "the redraw")
    deadline = time.time() + 30
    after = before
    while time.time() < deadline and after == before:
        time.sleep(0.3)
        after = _first_explorer_image(page)[1]
    assert after != before, f"{name}: moving the slider did not change the plot"
    changed = _every_control_changes_the_plot(page, handle, name)
    text = page.inner_text("body")
    for bad in BAD_TEXT:
        assert bad not in text, f"{name}: '{bad}' is on the page"
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0, \
        f"{name}: a cell shows an error"
    page.screenshot(path=str(shots / f"{Path(name).stem}.png"), full_page=False)  # explorer in view
    print(f"{name}: ran in {ran:.1f} s; plot changed "
          f"({hashlib.sha1(before.encode()).hexdigest()[:8]} -> "
          f"{hashlib.sha1(after.encode()).hexdigest()[:8]}); every control changes it: "
          f"{', '.join(changed)}")
    page.close()
    assert not errors, f"{name}: browser console errors: {errors[:5]}"
    assert not offsite, f"{name}: requests leaving 127.0.0.1: {offsite[:5]}"


def _open_and_run_all(browser, lab_url: str, name: str):
    """``name`` opened in JupyterLab with its outputs cleared, then every cell run; the page,
    its console errors, its requests leaving the machine, and the seconds it took."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    offsite = offsite_requests(page)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.time()
    # a fresh workspace per notebook: otherwise JupyterLab reopens the previous test's tab
    workspace = Path(name).stem.replace("_", "-")
    page.goto(f"{lab_url}/lab/workspaces/{workspace}/tree/{name}?reset&token={TOKEN}")
    _wait(page, KERNEL_IDLE, 90, "the kernel to start")
    # the committed notebook carries outputs and execution counts: clear them first, so that
    # "every cell has run" means this run
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    _wait(page, """() => window.jupyterapp.shell.currentWidget.content.widgets.every(
        c => c.model.type !== 'code' || c.model.executionCount === null)""", 30, "cleared cells")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    _wait(page, ALL_RUN, 180, "every code cell to run")
    _wait(page, KERNEL_IDLE, 180, "the kernel to finish")
    return page, errors, offsite, time.time() - t0


@pytest.mark.parametrize("name", STUDENT_EDITION)
def test_student_edition_runs_in_the_browser(browser, lab, shots, name):
    """A student edition as a student opens it: every cell runs without an error, each of the
    three check cells says "not answered yet", the explorers still draw."""
    page, errors, offsite, ran = _open_and_run_all(browser, lab, f"student-{name}")
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0, \
        f"student edition of {name}: a cell shows an error"
    text = page.inner_text("body")
    assert text.count(NOT_ANSWERED.split(":")[0]) == 3, f"student edition of {name}"
    assert "### BEGIN SOLUTION" not in text and "passed:" not in text
    assert _first_explorer_image(page)[1], f"student edition of {name}: no plot"
    page.screenshot(path=str(shots / f"student-{Path(name).stem}.png"), full_page=False)
    print(f"student edition of {name}: ran in {ran:.1f} s, three checks not answered yet")
    page.close()
    assert not errors, f"student edition of {name}: browser console errors: {errors[:5]}"
    assert not offsite, f"student edition of {name}: requests leaving 127.0.0.1: {offsite[:5]}"
