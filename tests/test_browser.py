"""Chapter 3's δ slider, moved by a real browser in a real JupyterLab.

nbval runs the notebooks headless, where a widget is built that nobody sees. This test does what a
reader does: JupyterLab on loopback (a free port, a random token, a temporary copy of notebooks/),
Debian's Chromium driven by Playwright (no browser download), Run > Run All Cells, wait for the δ
slider, move its handle with the keyboard, and check what the reader sees:

- the cell's text now says `selected k = <k> of N = <N> batches` with k = max(1, round(δ·N)) for the δ
  the slider shows;
- there is exactly one figure under the slider, before and after (`hardbatch.widgets.Live` redraws it
  in place: no frozen first copy);
- the figure's pixels changed, and it is fully painted: the pixels on screen match the PNG the kernel
  sent, band by band from top to bottom.

Screenshots before and after go to test-artifacts/ (gitignored).

Skips, saying why, when Chromium or Playwright is absent; .ci/run installs both, so CI runs it.
"""
import base64
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "03_sorting_and_selection.ipynb"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; .ci/run installs it
ARTIFACTS = ROOT / "test-artifacts"
PHRASE = re.compile(r"selected k = (\d+) of N = (\d+) batches")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is absent (pip install -e '.[test]')")

# JupyterLab user settings for a predictable page: every cell in the DOM (no virtual scrolling, so the
# slider is there to find), the notebook's kernel started without a "Select Kernel" dialog, no autosave
# into the copy, no news prompt or extension manager reaching for the network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                    "autoStartDefaultKernel": True},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(root: Path, state: Path, log_path: Path, timeout_s: float = 60):
    """A JupyterLab server on 127.0.0.1 serving root, its settings and state under state (a temporary
    folder); yields its base URL and token; always stopped."""
    port, token = free_port(), secrets.token_hex(16)
    for name, settings in LAB_SETTINGS.items():
        (state / "lab-settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (state / "lab-settings" / name).write_text(json.dumps(settings))
    env = {**os.environ, "HARDBATCH_SMOKE": "1",  # fast mode in the kernel; HOME (data, font caches) kept
           "JUPYTERLAB_SETTINGS_DIR": str(state / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "lab-workspaces"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTER_CONFIG_DIR": str(state / "config")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--allow-root"]
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def number(text: str) -> float:
    """The slider's readout as a float (ipywidgets shows it as text, e.g. '0.20')."""
    return float(re.search(r"-?\d+(?:\.\d*)?", text).group())


def expected_k(delta: float, n: int) -> set[int]:
    """max(1, round(δ·N)); at an exact .5 tie (δ read from a rounded readout) either neighbour."""
    x = delta * n
    if abs(x - math.floor(x) - 0.5) < 1e-6:
        return {max(1, math.floor(x)), max(1, math.ceil(x))}
    return {max(1, round(x))}


def painted(img, band_count=8, tolerance=24):
    """Assert the <img> on screen shows the whole PNG it holds: its screenshot, band by band from top to
    bottom, matches the image's own pixels (a half-painted figure fails in its blank bands)."""
    from PIL import Image, ImageChops, ImageStat

    src = img.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,"), f"not an inline PNG: {str(src)[:60]}"
    sent = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L")
    shot = Image.open(io.BytesIO(img.screenshot())).convert("L")
    sent = sent.resize(shot.size)
    height = shot.size[1]
    for b in range(band_count):
        box = (0, b * height // band_count, shot.size[0], (b + 1) * height // band_count)
        diff = ImageStat.Stat(ImageChops.difference(shot.crop(box), sent.crop(box))).mean[0]
        assert diff < tolerance, f"band {b + 1} of {band_count} differs from the PNG by {diff:.0f}/255: not painted"
    return src


def settle(page, kernel_idle, quiet_s: float = 1.5, timeout_s: float = 60):
    """Wait until the kernel has stayed idle for quiet_s and every image on the page has loaded."""
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while True:
        done = kernel_idle.count() == 1 and page.evaluate("() => [...document.images].every(i => i.complete)")
        quiet_since = (quiet_since or time.monotonic()) if done else None
        if quiet_since and time.monotonic() - quiet_since >= quiet_s:
            # loaded is not yet painted: wait for every image to decode, then one more frame
            page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            return
        assert time.monotonic() < deadline, "the notebook never settled (kernel busy or images loading)"
        time.sleep(0.25)


def test_moving_the_delta_slider_changes_the_selection(tmp_path):
    if not (ROOT / "notebooks" / CHAPTER).exists():
        pytest.fail(f"notebooks/{CHAPTER} is missing: the browser test needs chapter 3")
    shutil.copytree(ROOT / "notebooks", tmp_path / "lab" / "notebooks",
                    ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))  # the notebooks, not their results
    (tmp_path / "state").mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "browser-test-jupyterlab.log"

    with jupyter_lab(tmp_path / "lab", tmp_path / "state", log_path) as (base, token), \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1000})
        browser.set_default_timeout(30_000)  # every wait below is bounded
        page = browser.new_page()
        try:
            page.goto(f"{base}/lab/tree/notebooks/{CHAPTER}?token={token}", timeout=60_000)
            kernel_idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle"))
            kernel_idle.wait_for(timeout=90_000)  # the page is built and the kernel has started

            # Run > Run All Cells, through the menu bar as a reader would.
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

            # The cell whose controls (hardbatch.widgets.Live) hold the δ slider, and its outputs.
            slider = page.locator(".hardbatch-live .widget-slider").filter(
                has=page.locator(".widget-label", has_text=re.compile("δ|delta")))
            cell = page.locator(".jp-CodeCell").filter(has=slider)
            cell.wait_for(timeout=90_000)
            handle, readout = slider.locator(".noUi-handle"), slider.locator(".widget-readout")
            output, figures = cell.locator(".jp-OutputArea"), cell.locator(".jp-OutputArea-output img")
            sync_api.expect(output).to_contain_text(PHRASE, timeout=60_000)
            settle(page, kernel_idle, timeout_s=90)  # every cell has run

            slider.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "03_slider_before.png"))
            delta0 = number(readout.inner_text())
            k0, n = map(int, PHRASE.search(output.inner_text()).groups())
            assert k0 in expected_k(delta0, n), (delta0, k0, n)
            assert figures.count() == 1, f"{figures.count()} figures under the δ slider; there must be one"
            figures.scroll_into_view_if_needed()
            before = painted(figures.first)

            # Move the handle with the keyboard, towards the far side, until k must have changed by 3 or more.
            handle.focus()
            key = "ArrowRight" if k0 <= n / 2 else "ArrowLeft"
            for _ in range(100):
                page.keyboard.press(key)
                delta1 = number(readout.inner_text())
                if all(abs(k - k0) >= 3 for k in expected_k(delta1, n)):
                    break
            assert delta1 != delta0, f"the δ slider did not move with {key}"

            deadline = time.monotonic() + 60
            while True:  # the kernel redraws for each step; wait for the last one, text and figure
                match = PHRASE.search(output.inner_text())
                k1, n1 = map(int, match.groups()) if match else (None, None)
                if k1 in expected_k(delta1, n) and n1 == n and figures.first.get_attribute("src") != before:
                    break
                assert time.monotonic() < deadline, f"after δ {delta0} -> {delta1} the output says {match}"
                time.sleep(0.25)
            settle(page, kernel_idle)
            figures.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "03_slider_after.png"))
            assert k1 != k0 and n1 == n
            assert figures.count() == 1, f"after the move, {figures.count()} figures under the δ slider"
            after = painted(figures.first)
            assert after != before, "the figure's pixels did not change with δ"
            print(f"δ {delta0} -> {delta1}: selected k {k0} -> {k1} of N = {n}; one figure, redrawn in place")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "03_slider_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
