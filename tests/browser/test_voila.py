"""App mode: every notebook rendered by Voila (no code shown), its first explorer responds."""

import time
from pathlib import Path

import pytest

from .test_notebooks_in_browser import BAD_TEXT, NOTEBOOKS, _first_explorer_image

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_voila_renders_and_responds(browser, voila_url, shots, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.time()
    page.goto(f"{voila_url}/voila/render/{name}", timeout=180_000, wait_until="commit")
    handle, before = _first_explorer_image(page, root="body")
    assert before, f"{name}: no plot in app mode"
    rendered = time.time() - t0
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowLeft")
    deadline, after = time.time() + 60, before
    while time.time() < deadline and after == before:
        time.sleep(0.3)
        after = _first_explorer_image(page, root="body")[1]
    assert after != before, f"{name}: the slider did not change the plot in app mode"
    text = page.inner_text("body")
    for bad in BAD_TEXT:
        assert bad not in text, f"{name}: '{bad}' in app mode"
    page.screenshot(path=str(shots / f"voila-{Path(name).stem}.png"))
    print(f"voila {name}: rendered in {rendered:.1f} s, plot changed")
    page.close()
    assert not errors, f"{name}: page errors in app mode: {errors[:5]}"
