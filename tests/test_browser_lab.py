"""JupyterLab as researchers use it: 04_figures in headless Chromium (Debian's package, driven by Playwright).

The lab runs on 127.0.0.1 with a token, over a scratch copy of notebooks/ (autosave must never touch the
sources) whose runs/ links to the repository's record. Screenshots go to tests/screenshots/ (git-ignored).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOK = "notebooks/04_figures.ipynb"

# JavaScript run in the page: the notebook panel and its cells, through the app JupyterLab exposes
PANEL = "window.jupyterapp.shell.currentWidget"
CODE_CELLS = f"{PANEL}.content.widgets.filter(c => c.model.type === 'code')"
DONE = (f"() => {{ const p = {PANEL}; if (!p || !p.sessionContext || !p.sessionContext.session) return false;"
        f" const k = p.sessionContext.session.kernel; return k && k.status === 'idle' &&"
        f" {CODE_CELLS}.every(c => c.model.executionCount !== null); }}")
NEW_IMAGE = "(old) => { const i = [...document.querySelectorAll('.widget-vbox img')].pop(); return i && i.src !== old; }"
TABLE_HAS = ("(text) => { const t = [...document.querySelectorAll('.widget-html-content')];"
             " return t.length > 1 && t[t.length - 1].innerText.includes(text); }")
TABLE_CHANGED = ("(old) => { const t = [...document.querySelectorAll('.widget-html-content')];"
                 " return t.length > 1 && t[t.length - 1].innerText !== old; }")
ERRORS = (f"() => {CODE_CELLS}.flatMap(c => c.model.outputs.toJSON())"
          ".filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    home = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", home / "notebooks")
    (home / "runs").symlink_to(ROOT / "runs")  # 04 reads ../runs/smoke, as from the repository
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / ".config"), "JUPYTER_RUNTIME_DIR": str(home / ".runtime")}
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}",
         "--ServerApp.allow_root=True",  # CI machines run as root
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
            time.sleep(1)
    try:
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_04_runs_in_jupyterlab_and_the_explorer_redraws(lab):
    from playwright.sync_api import sync_playwright

    url, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
            # the notebook opens with the smlib kernel its metadata names, started without a dialog
            page.wait_for_function(f"() => window.jupyterapp && {PANEL} && {PANEL}.sessionContext"
                                   f" && {PANEL}.sessionContext.session && {PANEL}.sessionContext.session.kernel",
                                   timeout=180_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(DONE, timeout=600_000, polling=1000)
            assert page.evaluate(ERRORS) == [], "a cell shows an error"
            explorer = page.locator(".widget-vbox").last
            explorer.scroll_into_view_if_needed()
            image, table, title = (explorer.locator(s) for s in ("img", ".widget-html-content >> nth=1",
                                                                 ".widget-html-content >> nth=0"))
            page.wait_for_function("() => { const i = [...document.querySelectorAll('.widget-vbox img')].pop();"
                                   " return i && i.naturalWidth > 0; }", timeout=60_000)
            page.screenshot(path=str(SHOTS / "04_after_run_all.png"))
            before = (image.get_attribute("src"), table.inner_text(), title.inner_text())
            assert "d = 64" in before[2] and "verbatim" in before[2]

            readout = explorer.locator(".widget-readout")  # ipywidgets 8: the slider's readout is editable
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("16")
            page.keyboard.press("Enter")
            page.wait_for_function(NEW_IMAGE, arg=before[0], timeout=60_000)  # the title, the figure, then the table
            page.wait_for_function(TABLE_HAS, arg="16", timeout=60_000)
            after = (image.get_attribute("src"), table.inner_text(), title.inner_text())
            page.screenshot(path=str(SHOTS / "04_slider_at_16.png"))
            assert after[0] != before[0], "the figure did not redraw"
            assert after[1] != before[1] and "16" in after[1], "the table did not change"

            explorer.get_by_label("variant").select_option("disjoint")
            page.wait_for_function(NEW_IMAGE, arg=after[0], timeout=60_000)
            page.wait_for_function(TABLE_CHANGED, arg=after[1], timeout=60_000)
            switched = (image.get_attribute("src"), table.inner_text(), title.inner_text())
            page.screenshot(path=str(SHOTS / "04_variant_disjoint.png"))
            assert "disjoint" in switched[2] and "d = 16" in switched[2]
            assert switched[0] != after[0] and switched[1] != after[1], "switching the variant changed nothing"

            explorer.get_by_label("CKA").select_option(label="linear CKA (biased HSIC)")  # instead of the debiased one
            page.wait_for_function(NEW_IMAGE, arg=switched[0], timeout=60_000)
            page.screenshot(path=str(SHOTS / "04_cka_biased.png"))
            assert image.get_attribute("src") != switched[0], "switching the CKA estimator did not redraw"
            assert page.evaluate(ERRORS) == [], "a cell shows an error"
        finally:
            browser.close()
