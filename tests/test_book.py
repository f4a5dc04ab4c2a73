"""The course as a book: built in fast mode, every page opened in a real browser.

`book/build.py --fast` builds the site into a temporary folder, as `make book` does but at fast-mode sizes
(the six chapters run: about 2-3 minutes on a busy 2-core CPU). Headless Chromium (Debian's, through
Playwright, as in tests/test_browser.py) then opens every page from a local web server, with every request
to another host refused (a reader's page must not need one to show the course), and checks on each chapter's
page what a reader sees:

- it loads, under its address <notebook stem>.html at the top of the site (the chapters' "Read it" badges);
- its figures: as many decoded <img> in the cell outputs as the executed notebook has image outputs, and at
  least one for every chapter;
- no error output and no traceback;
- progress bars as text (book/text_progress.py): finished bars ("100%|"), never one stuck part-way;
- every navigation link (the table of contents, previous/next, this page's contents, links in the text) that
  stays on the site leads to a built page, and to an anchor that exists there;
- after the chapters, each study's report (results/<study>/report.html) with every figure it links to.

Skips, saying why, without Jupyter Book (the book extra), or for the browser part, without Chromium or
Playwright; .ci/run installs all three.
"""
import functools
import http.server
import io
import json
import re
import runpy
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml  # PyYAML comes with jupyterlab

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("0*.ipynb"))
# the header, the table of contents, previous/next, this page's contents, and the links in the text itself
NAVIGATION = ", ".join(f"{part} a[href]" for part in (".bd-header", ".bd-sidebar-primary", ".prev-next-area",
                                                      ".bd-sidebar-secondary", ".bd-article"))
PART_WAY = re.compile(r"(?<![\d.])\d{1,2}%\|")  # a text bar short of 100 %: " 0%|", "33%|"
BUILD = runpy.run_path(str(ROOT / "book" / "build.py"))  # its names, without running main()


# ---------------------------------------------------------------- cheap checks, no build

def test_the_book_lists_every_chapter_in_order_then_the_studies():
    toc = yaml.safe_load((ROOT / "book/_toc.yml").read_text())
    assert toc["format"] == "jb-book" and (ROOT / "book" / f"{toc['root']}.md").exists()
    files = [entry["file"] for entry in toc["chapters"]]
    assert files[:len(CHAPTERS)] == CHAPTERS
    assert files[len(CHAPTERS):] == [f"results/{study}/report" for study in BUILD["STUDIES"]]
    assert all((ROOT / "results" / study / "report" / "report.md").is_file() for study in BUILD["STUDIES"])


def test_the_studies_reports_are_copied_in_fresh(tmp_path):
    """copy_results puts each report and its figures under book/results/<study>/, and drops a figure the
    report no longer has (a stale copy would show old numbers)."""
    results, book = tmp_path / "results", tmp_path / "book"
    (results / "one" / "report" / "figures").mkdir(parents=True)
    (results / "one" / "report" / "report.md").write_text("# One\n\n![a](figures/a.png)\n")
    (results / "one" / "report" / "figures" / "a.png").write_bytes(b"png a")
    (book / "results" / "one" / "figures").mkdir(parents=True)
    (book / "results" / "one" / "figures" / "old.png").write_bytes(b"stale")
    assert BUILD["copy_results"](book, results, ("one", "absent")) == ["one"]
    copied = sorted(str(p.relative_to(book)) for p in book.rglob("*") if p.is_file())
    assert copied == ["results/one/figures/a.png", "results/one/report.md"]
    assert (book / "results/one/report.md").read_text() == "# One\n\n![a](figures/a.png)\n"


def test_text_bars_draw_only_their_finished_state():
    """book/text_progress.py, as the book's kernels run it: one line per bar, written when it closes."""
    import tqdm.auto

    saved = tqdm.auto.tqdm, tqdm.auto.trange
    try:
        runpy.run_path(str(ROOT / "book/text_progress.py"))
        out = io.StringIO()
        for _ in tqdm.auto.tqdm(range(3), desc="seeds", file=out, ascii=True):
            assert out.getvalue() == ""  # nothing while it runs
        with tqdm.auto.tqdm(total=4, desc="run", leave=False, file=out) as bar:  # a bar that leaves nothing
            bar.update(4)
        for _ in tqdm.auto.trange(2, desc="rounds", file=out, ascii=True):
            tqdm.auto.tqdm.write("a message", file=out)
    finally:
        tqdm.auto.tqdm, tqdm.auto.trange = saved
    lines = out.getvalue().split("\n")
    assert "\r" not in out.getvalue() and lines[-1] == "", repr(out.getvalue())
    assert re.fullmatch(r"seeds: 100%\|#+\| 3/3 \[.*\]", lines[0]), lines
    assert lines[1:3] == ["a message", "a message"]
    assert re.fullmatch(r"rounds: 100%\|#+\| 2/2 \[.*\]", lines[3]) and len(lines) == 5, lines


# ---------------------------------------------------------------- the book, built

@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The site built in fast mode: (its html folder, the executed notebooks' folder)."""
    pytest.importorskip("jupyter_book", reason="Jupyter Book is absent (pip install -e '.[book]'; make does)")
    out = tmp_path_factory.mktemp("book")
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "book/build.py"), "--fast", "--out", str(out)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"the book did not build:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    print(f"book built in fast mode in {time.monotonic() - start:.0f} s")
    return out / "_build" / "html", out / "_build" / "jupyter_execute"


def test_every_chapter_is_a_page_at_its_address(book):
    html, executed = book
    assert sorted(p.stem for p in html.glob("0*.html")) == CHAPTERS  # flat: <stem>.html at the top
    assert sorted(p.stem for p in executed.glob("0*.ipynb")) == CHAPTERS  # every chapter was run


def image_outputs(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    return sum(any(mime.startswith("image/") for mime in out.get("data", {}))
               for cell in cells for out in cell.get("outputs", []))


@pytest.fixture(scope="module")
def site(book):
    """The built site on a local web server (a free port); yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(book[0]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def anchors(page: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page.read_text()))


def test_every_page_in_a_browser(book, site):
    from test_browser import CHROMIUM, CHROMIUM_ARGS  # Debian's Chromium; skips there, saying why, if absent

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is absent (pip install -e '.[test]')")
    html, executed = book
    pages = sorted(p.name for p in html.glob("*.html")) + [f"results/{s}/report.html" for s in BUILD["STUDIES"]]
    seen = {}
    start = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(30_000)
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site) else route.abort())
        page = context.new_page()
        try:
            for name in pages:
                response = page.goto(site + name, wait_until="load")
                assert response.ok, f"{name}: HTTP {response.status}"
                refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', (html / name).read_text(), re.I)
                if refresh:  # index.html sends the reader on to the first page
                    assert (html / refresh.group(1)).is_file(), f"{name} redirects to a missing {refresh.group(1)}"
                    page.wait_for_url(site + refresh.group(1))
                    continue
                links = page.eval_on_selector_all(NAVIGATION, "links => links.map(a => a.href)")
                broken = []
                for link in links:
                    if not link.startswith(site):
                        continue  # the repository button: another host
                    parts = urlsplit(link)
                    target = html / unquote(parts.path.removeprefix(urlsplit(site).path) or "index.html")
                    if not target.is_file() or (parts.fragment and unquote(parts.fragment) not in anchors(target)):
                        broken.append(link.removeprefix(site))
                assert links and broken == [], f"{name}: navigation links that lead nowhere: {broken}"
                if name.startswith("results/"):  # a study's report: every figure it links to, shown
                    shown = page.eval_on_selector_all(".bd-article img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
                    expected = (ROOT / name.replace(".html", ".md").replace("/report.md", "/report/report.md")).read_text().count("![")
                    assert expected > 0 and len(shown) == expected and all(shown), f"{name}: {shown} of {expected}"
                    seen[name] = len(shown)
                if Path(name).stem not in CHAPTERS:
                    continue
                stem = Path(name).stem
                shown = page.eval_on_selector_all(".cell_output img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
                expected = image_outputs(executed / f"{stem}.ipynb")
                assert expected > 0 and len(shown) == expected, f"{name}: {len(shown)} figures shown of {expected}"
                assert all(shown), f"{name}: a figure did not load ({shown})"
                assert page.locator(".output.traceback, .output.error").count() == 0, f"{name}: an error output"
                text = "\n".join(page.locator(".cell_output").all_inner_texts())
                assert "Traceback" not in text and not re.search(r"^\w*(Error|Exception):", text, re.M), name
                assert not PART_WAY.findall(text), f"{name}: a progress bar stuck part-way: {PART_WAY.findall(text)}"
                if "tqdm" in (ROOT / "notebooks" / f"{stem}.ipynb").read_text():
                    assert "100%|" in text, f"{name}: its progress bars are not shown as text"
                seen[stem] = len(shown)
        finally:
            browser.close()
    assert sorted(seen) == CHAPTERS + [f"results/{s}/report.html" for s in sorted(BUILD["STUDIES"])]
    print(f"{len(pages)} pages opened in {time.monotonic() - start:.0f} s; figures per chapter: {seen}")
