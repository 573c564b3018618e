"""The report in a real browser (headless Chromium through Playwright, offline): every section is
rendered and visible, every figure decodes (naturalWidth > 0), no console error, no request leaves
the file; a full-page screenshot is saved in the test's tmp dir.

Skipped only when Playwright or a Chromium binary is missing (CI apt-installs chromium; the Python
package comes with the `test` extra; `playwright install` is not needed: Debian's binary is used).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import nnrecipe
from nnrecipe.report.html import write_report
from testutil import FAST

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = Path("/usr/bin/chromium") if Path("/usr/bin/chromium").exists() else (
    Path(shutil.which("chromium")) if shutil.which("chromium") else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SINGLE = ["overview", "config", "data", "model", "learning-curves", "health", "test-metrics", "confusion-matrix",
          "roc-pr", "calibration", "per-class", "compression"]
COMPARISON = ["runs", "config-diff", "learning-curves", "metrics"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    run = nnrecipe.fit("digits", overrides=FAST, out=root / "run").dir
    other = shutil.copytree(run, root / "other")
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["optimizer"]["lr"] = 0.05
    (other / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return {"single": write_report(run), "comparison": nnrecipe.make_report([run, other], out=root / "cmp.html")}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return context, page, problems, requests


@pytest.mark.parametrize("which,sections", [("single", SINGLE), ("comparison", COMPARISON)])
def test_report_renders_in_chromium(pages, browser, which, sections, tmp_path):
    context, page, problems, requests = _open(browser, pages[which])
    try:
        assert page.eval_on_selector_all("section", "els => els.map(e => e.id)") == sections
        for sid in sections:
            box = page.locator(f"section#{sid}").bounding_box()
            assert page.locator(f"section#{sid}").is_visible() and box["height"] > 20, sid
        images = page.eval_on_selector_all(
            "img", "els => els.map(i => ({w: i.naturalWidth, h: i.naturalHeight, ok: i.complete}))")
        assert images and all(i["ok"] and i["w"] > 0 and i["h"] > 0 for i in images), images
        assert all(u.startswith(("file:", "data:")) for u in requests), requests
        assert problems == []
        shot = tmp_path / f"{which}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes().startswith(b"\x89PNG") and page.evaluate("document.body.scrollHeight") > 900
    finally:
        context.close()
