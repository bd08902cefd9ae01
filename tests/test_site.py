"""The built site as a reader uses it: headless Chromium, offline, over a local HTTP server.

``check_site`` loads every page reachable from the home page (and every page of the table of
contents) in Debian's Chromium, driven by Playwright, from a server on 127.0.0.1, and reports
console errors, failed requests, any request that leaves 127.0.0.1 (all are blocked, so the site
is checked as it works with the network off), math that MathJax did not render, images that did
not load or have no size, and internal links or anchors that do not resolve. The tests then check
the reader's features on top: buttons, notebooks, search, both color modes, screenshots. They
need a built site (``jupyter-book build book``) and Chromium (``apt-get install -y chromium``).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
import yaml
from conftest import myst_notebook

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute"
SCREENSHOTS = ROOT / "_build" / "screenshots"
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps"]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO = CONFIG["repository"]["url"].rstrip("/")
NOTEBOOKS_BRANCH = CONFIG["sphinx"]["config"]["d2lkit_notebooks_branch"]
SCREENSHOT_PAGES = ("intro", "minibatch_sgd", "api")
REFRESH = re.compile(r'<meta http-equiv="refresh" content="\d+; ?url=([^"]+)"', re.IGNORECASE)


def toc_pages() -> list[str]:
    """Return the table of contents' documents, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = list(toc.get("chapters", []))
    for part in toc.get("parts", []):
        entries.extend(part["chapters"])
    return [toc["root"], *(entry["file"] for entry in entries)]


def notebook_pages() -> list[str]:
    """Return the pages that are executed notebooks (MyST Markdown with a kernel)."""
    return [page for page in toc_pages()
            if "format_name: myst" in (ROOT / "book" / f"{page}.md").read_text()]


# What the browser measures on each page once it has loaded, MathJax has typeset and the fonts
# and images have arrived. Text inside code, scripts and rendered math is not searched for raw TeX.
PAGE_PROBE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;
  const images = Array.from(document.images);
  images.forEach(img => { if (img.loading === "lazy") img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(resolve => {
    img.addEventListener("load", resolve); img.addEventListener("error", resolve);
    setTimeout(resolve, 5000);
  })));
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .math";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    if (node.parentElement.closest(skip)) continue;
    const inlineTex = /\\$[^$\\n]*[\\\\^_{}][^$\\n]*\\$/;  // $...$ with a backslash, ^, _ or brace
    if (text.includes("$$") || inlineTex.test(text)) rawTex.push(text.trim());
  }
  return {
    mathjax: Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise),
    math: document.querySelectorAll(".math").length,
    untypeset: Array.from(document.querySelectorAll(".math"))
      .filter(el => !el.querySelector("mjx-container")).map(el => el.textContent.slice(0, 80)),
    texErrors: Array.from(document.querySelectorAll("mjx-merror"))
      .map(el => el.getAttribute("data-mjx-error") || el.textContent),
    rawTex: rawTex.map(t => t.slice(0, 80)),
    markupErrors: Array.from(document.querySelectorAll(".problematic, .system-message"),
      el => (el.closest("p, dd, li") || el).textContent.trim().slice(0, 80)),
    images: images.map(img => {
      const box = img.getBoundingClientRect();
      return {src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0,
              visible: img.offsetParent !== null, width: box.width, height: box.height};
    }),
    links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
    sidebar: Array.from(document.querySelectorAll(".bd-sidebar-primary a[href]"), a => a.href),
    prev: document.querySelector("a.left-prev")?.href ?? null,
    next: document.querySelector("a.right-next")?.href ?? null,
    ids: Array.from(document.querySelectorAll("[id], a[name]"), el => el.id || el.name),
  };
}"""


@dataclass
class SiteReport:
    """What ``check_site`` found: the problems, and every page it loaded with its links."""

    problems: list[str] = field(default_factory=list)
    pages: dict[str, dict] = field(default_factory=dict)  # page URL -> what PAGE_PROBE found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output free of one line per request."""


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 at a free port; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _status(url: str) -> int:
    """Return the HTTP status of ``url`` on the local server."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def _is_page(url: str) -> bool:
    path = urlparse(url).path
    return (path.endswith((".html", "/"))
            and not any(f"/{d}/" in path for d in ("_static", "_sources", "_images")))


def check_site(context, base: str, start: list[str], follow: bool = True) -> SiteReport:
    """Load the pages ``start`` (paths under ``base``) and, if ``follow``, every page reachable
    from them; report what is wrong."""
    report = SiteReport()
    ids: dict[str, set[str]] = {}
    queue = [base + path for path in start]
    seen = set(queue)
    page = context.new_page()
    events: list[str] = []
    page.on("console", lambda m: events.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: events.append(f"uncaught exception: {e}"))
    page.on("requestfailed", lambda r: events.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: events.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)
    while queue:
        url = queue.pop(0)
        events.clear()
        response = page.goto(url, wait_until="load")
        if response is None or response.status != 200:
            report.problems.append(f"{url}: HTTP {response.status if response else 'no response'}")
            continue
        with urllib.request.urlopen(url, timeout=10) as raw:
            refresh = REFRESH.search(raw.read().decode("utf-8", "replace"))
        if refresh:  # JB's index.html redirects to the root page: check the target
            target = urljoin(url, refresh[1])
            page.wait_for_url(target)
            probe = {"links": [target], "ids": []}
            problems = list(events)
        else:
            probe = page.evaluate(PAGE_PROBE)
            page.wait_for_load_state("networkidle")
            problems = events + _page_problems(probe)
        report.problems += [f"{url}: {p}" for p in dict.fromkeys(problems)]
        report.pages[url] = probe
        ids[url] = set(probe["ids"])
        for link in probe["links"]:
            target = urldefrag(link).url
            if follow and target.startswith(base) and _is_page(target) and target not in seen:
                seen.add(target)
                queue.append(target)
    page.close()
    report.problems += _check_links(report.pages, ids, base)
    return report


def _page_problems(probe: dict) -> list[str]:
    """Return what is wrong with the math and the images of a page, from PAGE_PROBE."""
    problems = []
    if probe["math"] and not probe["mathjax"]:
        problems.append("page has math but MathJax did not load")
    problems += [f"math not typeset: {m!r}" for m in probe["untypeset"]]
    problems += [f"TeX error: {m!r}" for m in probe["texErrors"]]
    problems += [f"raw TeX left in the text: {t!r}" for t in probe["rawTex"]]
    problems += [f"reST markup error (docstring?) in: {t!r}" for t in probe["markupErrors"]]
    for img in probe["images"]:
        if not img["loaded"]:
            problems.append(f"image did not load: {img['src']}")
        elif img["visible"] and not (img["width"] > 0 and img["height"] > 0):
            problems.append(f"image has no size: {img['src']}")
    return problems


def _check_links(pages: dict[str, dict], ids: dict[str, set[str]], base: str) -> list[str]:
    """Return the internal links whose page or anchor does not exist."""
    problems, status = [], {}
    for url, probe in pages.items():
        for link in dict.fromkeys(probe["links"]):
            target, fragment = urldefrag(link)
            if not target.startswith(base):
                continue
            if target not in ids:  # not a page the browser loaded: a download, an image
                status.setdefault(target, _status(target))
                if status[target] != 200:
                    problems.append(f"{url}: broken link to {link} (HTTP {status[target]})")
            elif fragment and unquote(fragment) not in ids[target]:
                problems.append(f"{url}: broken link to {link} (no such anchor)")
    return problems


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    assert HTML.joinpath("index.html").is_file(), "no site: run `jupyter-book build book` first"
    assert Path(CHROMIUM).is_file(), "no Chromium: run `apt-get install -y chromium`"
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def offline_context(browser, blocked: list[str], **options):
    """Return a browser context in which every request not to 127.0.0.1 is recorded and aborted."""
    context = browser.new_context(service_workers="block", **options)

    def route(route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    return context


@pytest.fixture(scope="module")
def site(browser):
    """The base URL of the built site and the report of checking all of it."""
    blocked: list[str] = []
    with serve(HTML) as base:
        context = offline_context(browser, blocked)
        generated = ["index.html", "genindex.html", "py-modindex.html", "search.html"]
        start = [f"{page}.html" for page in toc_pages()] + generated
        report = check_site(context, base, start)
        context.close()
        yield base, report, blocked


def test_every_page_loads_offline_with_math_figures_and_links(site):
    base, report, blocked = site
    missing = [p for p in toc_pages() if f"{base}{p}.html" not in report.pages]
    assert not missing, f"table-of-contents pages not loaded: {missing}"
    assert not blocked, f"requests that left 127.0.0.1: {blocked}"
    if report.problems:
        pytest.fail("\n".join(report.problems), pytrace=False)


def test_prev_next_links_follow_the_table_of_contents(site):
    base, report, _ = site
    urls = [f"{base}{name}.html" for name in toc_pages()]
    for i, url in enumerate(urls):
        probe = report.pages[url]
        assert probe["prev"] == (urls[i - 1] if i > 0 else None), url
        assert probe["next"] == (urls[i + 1] if i + 1 < len(urls) else None), url


def test_sidebar_links_about_api_and_references(site):
    base, report, _ = site
    for name in toc_pages():
        sidebar = {urldefrag(link).url for link in report.pages[f"{base}{name}.html"]["sidebar"]}
        for target in ("about_build", "api", "references"):
            assert f"{base}{target}.html" in sidebar, f"{name}: no sidebar link to {target}"


def test_chapters_have_repository_download_and_launch_buttons(site):
    base, report, _ = site
    slug = REPO.split("github.com/")[1]
    chapters = notebook_pages()
    assert chapters
    for name in chapters:
        links = set(report.pages[f"{base}{name}.html"]["links"])
        expected = {
            REPO,
            f"{base}_sources/{name}.ipynb",
            f"{base}_sources/{name}.md",
            f"https://colab.research.google.com/github/{slug}/blob/{NOTEBOOKS_BRANCH}/{name}.ipynb",
            f"https://mybinder.org/v2/gh/{slug}/{NOTEBOOKS_BRANCH}?urlpath=lab/tree/{name}.ipynb",
        }
        assert expected <= links, f"{name}: missing {expected - links}"
        assert any(link.startswith(f"{REPO}/issues/new") for link in links), f"{name}: no issue"


def test_downloaded_notebook_starts_with_setup_cell(site):
    base, _, _ = site
    for name in notebook_pages():
        with urllib.request.urlopen(f"{base}_sources/{name}.ipynb", timeout=10) as response:
            notebook = json.load(response)
        first = notebook["cells"][0]
        source = "".join(first["source"])
        assert first["cell_type"] == "code" and "import d2lkit" in source
        # pinned to the commit the notebook was built from (tests/test_notebooks.py checks more)
        pinned = rf'%pip install .*"d2lkit @ git\+{re.escape(REPO)}@[0-9a-f]{{40}}"'
        assert re.search(pinned, source), f"{name}: {source}"
        executed = json.loads((EXECUTED / f"{name}.ipynb").read_text())
        code = [cell for cell in executed["cells"] if cell["cell_type"] == "code"]
        for cell in code:  # glued values live in the exported Markdown, not in glue records
            cell["outputs"] = [o for o in cell["outputs"] if not o.get("data") or not all(
                mime.startswith("application/papermill.record/") for mime in o["data"])]
        assert [cell for cell in notebook["cells"][1:] if cell["cell_type"] == "code"] == code, (
            f"{name}: not the executed notebook")


def test_code_cells_have_working_copy_buttons(site, browser):
    base, _, _ = site
    blocked: list[str] = []
    context = offline_context(browser, blocked)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{base}minibatch_sgd.html", wait_until="load")
    cells = page.locator("div.cell_input div.highlight")
    assert cells.count() > 0
    assert page.locator("div.cell_input button.copybtn").count() == cells.count()
    cell = cells.nth(1)
    cell.hover()
    cell.locator("button.copybtn").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == cell.locator("pre").inner_text().strip()
    context.close()
    assert not blocked


def test_search_finds_adam(site, browser):
    base, _, _ = site
    blocked: list[str] = []
    context = offline_context(browser, blocked)
    page = context.new_page()
    page.goto(f"{base}search.html?q=Adam", wait_until="load")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=15000)
    hrefs = [results.nth(i).locator("a").first.get_attribute("href")
             for i in range(results.count())]
    context.close()
    found = {href.split("#")[0].split("?")[0] for href in hrefs}
    # the API entry of d2lkit.optim.adam, and the chapter that introduces Adam once it is in
    assert {"api.html"} | ({"adaptive.html"} & {f"{p}.html" for p in toc_pages()}) <= found, hrefs
    assert not blocked


def _contrast(foreground: list[float], background: list[float]) -> float:
    """Return the WCAG contrast ratio of two sRGB colors given as 0-255 channels."""
    def luminance(rgb: list[float]) -> float:
        linear = [(c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4)
                  for c in rgb[:3]]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# The text color of the article's paragraphs, the page background behind them, and for each
# visible figure the first opaque background at or behind it (matplotlib's SVGs are transparent).
COLORS_PROBE = """() => {
  const rgba = s => s.match(/[\\d.]+/g).map(Number);
  const opaque = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0.9) return c;
    }
    return rgba(getComputedStyle(document.documentElement).backgroundColor);
  };
  const p = document.querySelector("article p");
  return {
    theme: document.documentElement.dataset.theme,
    text: rgba(getComputedStyle(p).color), background: opaque(p),
    figures: Array.from(document.querySelectorAll("article img"))
      .filter(img => img.offsetParent !== null).map(img => [img.src, opaque(img)]),
  };
}"""


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_readable_in_both_modes_with_screenshots(site, browser, mode):
    base, _, _ = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    context = offline_context(browser, blocked, color_scheme=mode,
                              viewport={"width": 1280, "height": 900})
    page = context.new_page()
    figures = 0
    for name in SCREENSHOT_PAGES:
        page.goto(f"{base}{name}.html", wait_until="load")
        page.evaluate(PAGE_PROBE)
        colors = page.evaluate(COLORS_PROBE)
        assert colors["theme"] == mode
        assert _contrast(colors["text"], colors["background"]) >= 7, (name, colors)
        for src, background in colors["figures"]:
            # Figures draw black axes and labels: they need a light backdrop in both modes.
            assert _contrast([0, 0, 0], background) >= 7, (name, mode, src, background)
        figures += len(colors["figures"])
        if page.locator(".cell_output img").count():  # show a figure in the screenshot
            page.locator(".cell_output img").first.evaluate("e => e.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{mode}.png"))
    context.close()
    assert figures > 0
    assert not blocked


def test_checker_catches_broken_link_missing_image_remote_asset_and_raw_math(browser, tmp_path):
    """The same check, on a copy of a real chapter with four defects planted in it."""
    copy = tmp_path / "html"
    shutil.copytree(HTML, copy)
    page = copy / "minibatch_sgd.html"
    html = page.read_text()
    image = re.search(r'<img [^>]*src="(_images/[^"]+)"', html)[1]
    (copy / image).unlink()
    html = html.replace("</article>", '<p>See <a href="no-such-page.html">this</a>.</p>'
                        r"<p>The step size $\eta$.</p></article>", 1)
    html = html.replace("</head>", '<script src="https://cdn.example.org/x.js"></script></head>')
    page.write_text(html)
    blocked: list[str] = []
    with serve(copy) as base:
        context = offline_context(browser, blocked)
        # Load only the planted page; its links to the rest of the site are still requested.
        report = check_site(context, base, ["minibatch_sgd.html"], follow=False)
        context.close()
    problems = "\n".join(report.problems)
    assert f"image did not load: {base}{image}" in problems
    assert f"HTTP 404: {base}{image}" in problems
    assert f"broken link to {base}no-such-page.html (HTTP 404)" in problems
    assert r"raw TeX left in the text: 'The step size $\\eta$.'" in problems
    assert "request failed: https://cdn.example.org/x.js" in problems
    assert blocked == ["https://cdn.example.org/x.js"]
    planted = (image, "cdn.example.org", "no-such-page", "The step size", "Failed to load resource")
    assert all(any(p in problem for p in planted) for problem in report.problems), problems


# Every image in a page's article, with the numbered caption and the label of the figure around it.
FIGURES_PROBE = """() => Array.from(document.querySelectorAll("article img"), img => {
  const figure = img.closest("figure");
  const text = selector => figure?.querySelector(selector)?.textContent.trim() ?? "";
  return {src: img.getAttribute("src") ?? "", alt: img.getAttribute("alt") ?? "",
          label: figure?.id ?? "", number: text("figcaption .caption-number"),
          caption: text("figcaption .caption-text")};
})"""
FILE_LIKE = re.compile(r"(\.(svg|png|jpe?g|gif|webp)$)|(^|/)_images/|^[0-9a-f]{12,}", re.IGNORECASE)


def _alt_is_not_a_description(alt: str, src: str) -> bool:
    """Return whether ``alt`` is empty, a file name, a path or a hash instead of words."""
    name = src.rsplit("/", 1)[-1]
    return (len(alt.split()) < 3 or bool(FILE_LIKE.search(alt.strip()))
            or (bool(name) and name.split(".")[0] in alt))


def figure_problems(context, base: str, pages: list[str]) -> list[str]:
    """Return, for the pages ``pages`` under ``base``, every image that is not a numbered,
    labelled, captioned figure with an alt text that describes it."""
    problems = []
    page = context.new_page()
    for path in pages:
        page.goto(base + path, wait_until="load")
        for fig in page.evaluate(FIGURES_PROBE):
            where = f"{path}: image {fig['src']}"
            if not (fig["number"] and fig["caption"] and fig["label"]):
                problems.append(f"{where}: no numbered, labelled caption")
            if _alt_is_not_a_description(fig["alt"], fig["src"]):
                problems.append(f"{where}: alt text {fig['alt']!r} does not describe it")
    page.close()
    return problems


def test_every_figure_has_a_numbered_caption_and_alt_text(site, browser):
    base, _, _ = site
    blocked: list[str] = []
    context = offline_context(browser, blocked)
    problems = figure_problems(context, base, [f"{page}.html" for page in toc_pages()])
    context.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_figure_check_catches_a_missing_caption_and_a_file_name_alt(browser, tmp_path):
    """The figure check, on a copy of a real chapter with two figures spoiled."""
    copy = tmp_path / "html"
    shutil.copytree(HTML, copy)
    page = copy / "minibatch_sgd.html"
    html = page.read_text()
    figures = list(re.finditer(r"<figure[^>]*>.*?</figure>", html, re.DOTALL))
    assert len(figures) >= 2, "minibatch_sgd has no two captioned figures to spoil"
    first, second = figures[0], figures[1]
    uncaptioned = re.sub(r"<figcaption>.*?</figcaption>", "", first[0], flags=re.DOTALL)
    src = re.search(r'src="([^"]+)"', second[0])[1]
    file_alt = re.sub(r'alt="[^"]*"', f'alt="{src}"', second[0], count=1)
    html = html[:first.start()] + uncaptioned + html[first.end():second.start()] + file_alt \
        + html[second.end():]
    page.write_text(html)
    blocked: list[str] = []
    with serve(copy) as base:
        context = offline_context(browser, blocked)
        problems = figure_problems(context, base, ["minibatch_sgd.html"])
        context.close()
    first_src = re.search(r'src="([^"]+)"', first[0])[1]
    assert problems == [f"minibatch_sgd.html: image {first_src}: no numbered, labelled caption",
                        f"minibatch_sgd.html: image {src}: alt text {src!r} does not describe it"]
    assert not _alt_is_not_a_description("Four loss curves against epoch.", "_images/a1b2.svg")
    assert _alt_is_not_a_description("a1b2c3d4e5f6a7b8c9", "_images/x.svg")
    assert _alt_is_not_a_description("", "_images/x.svg")


CACHED_PAGE = myst_notebook("Cached", "print(6 * 7)")


def _tiny_book(tmp_path: Path, page: str, text: str, execute: str = "off") -> list[str]:
    """Write a one-page book with the project's Sphinx setup; return its build command."""
    sphinx = dict(CONFIG["sphinx"])
    sphinx["local_extensions"] = {name: str(ROOT / path)
                                  for name, path in sphinx["local_extensions"].items()}
    config = {"title": page, "execute": {**CONFIG["execute"], "execute_notebooks": execute},
              "parse": CONFIG["parse"], "bibtex_bibfiles": CONFIG["bibtex_bibfiles"],
              "sphinx": sphinx}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "_toc.yml").write_text(f"format: jb-book\nroot: {page}\n")
    (tmp_path / "book" / f"{page}.md").write_text(text)
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book")
    return [str(Path(sys.executable).with_name("jupyter-book")), "build", "book"]


def test_page_from_the_execution_cache_keeps_its_outputs(tmp_path):
    build = _tiny_book(tmp_path, "cached", CACHED_PAGE, execute="cache")
    notebook = tmp_path / "_build" / "jupyter_execute" / "cached.ipynb"
    for run, expected in enumerate(["Executed notebook", "Using cached notebook"]):
        # --all: read the page again, so that the second build takes it from the cache
        result = subprocess.run(build + ["--all"] * run, cwd=tmp_path, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0 and expected in result.stdout, result.stdout[-3000:]
        cells = json.loads(notebook.read_text())["cells"]
        cell = next(cell for cell in cells if cell["cell_type"] == "code")
        assert cell["execution_count"] == 1 and "".join(cell["outputs"][0]["text"]) == "42\n"


REFERENCES_PAGE = """# References test

(sec-here)=
## Here

$$ x = 1 $$ (eq-here)

Resolve: {ref}`sec-here`, {eq}`eq-here`, {cite:p}`Robbins.Monro.1951`, {class}`d2lkit.Timer`,
{func}`d2lkit.plot`, {func}`d2lkit.optim.adam`; outside d2lkit, not checked: {class}`torch.Tensor`.

Broken: {ref}`sec-nowhere`, {numref}`fig-nowhere`, {eq}`eq-nowhere`, {cite:p}`Nobody.2099`,
{func}`d2lkit.optim.no_such_optimizer`, [a link](#nowhere), {glue:text}`no_such_value:.3f`.

```{eval-rst}
.. autoclass:: d2lkit.device.Timer
.. autofunction:: d2lkit.plot.plot
.. autofunction:: d2lkit.optim.adam
```

```{bibliography}
```
"""


def test_broken_reference_fails_the_build(tmp_path):
    """The project's Sphinx setup fails a build on each broken reference, and only on those."""
    build = _tiny_book(tmp_path, "refs", REFERENCES_PAGE)
    result = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    broken = set(re.findall(r"^  \S+/refs\.md:\d+: WARNING: (.*)$", output, re.MULTILINE))
    assert broken == {
        "undefined label: 'sec-nowhere'",
        "undefined label: 'fig-nowhere'",
        "equation not found: eq-nowhere",
        'could not find bibtex key "Nobody.2099"',
        "py:func reference target not found: d2lkit.optim.no_such_optimizer",
        "'myst' cross-reference target not found: 'nowhere' [myst.xref_missing]",
        "No key 'no_such_value' found in glue data for this document. (use `path::key`, to "
        "glue from another document) [mystnb.glue]",
    }, output[-3000:]


def test_pages_workflow_builds_checks_and_deploys_the_site():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "write", "pages": "write", "id-token": "write"}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    steps = build["steps"]
    runs = [step.get("run", "") for step in steps]
    uses = [step.get("uses", "").split("@")[0] for step in steps]

    def position(text: str) -> int:
        return next(i for i, run in enumerate(runs) if text in run)

    assert uses[0] == "actions/checkout"
    assert "pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in runs[
        position("requirements.txt")]
    assert "apt-get install -y -qq chromium" in runs[position("chromium")]
    # the README's publishing command (full profile, nbval, browser test), then the upload;
    # the execution cache is keyed on the profile too; the notebooks branch gets the same notebooks
    assert build["env"]["D2LKIT_PROFILE"] == "full"
    assert (position("pip install") < position("python -m benchmarks.publish")
            < uses.index("actions/upload-pages-artifact"))
    assert "D2LKIT_PROFILE" in steps[uses.index("actions/cache")]["with"]["key"]
    assert steps[uses.index("actions/upload-pages-artifact")]["with"]["path"] == "_build/html"
    publish = runs[position("_build/html/_sources/*.ipynb")]
    assert f"git init -q -b {NOTEBOOKS_BRANCH}" in publish and "git push" in publish
    assert deploy["needs"] == "build"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]


def test_solution_dropdown_opens_and_shows_code_and_output(site, browser):
    """A chapter's solution is folded until the reader opens it, then shows its code and output."""
    base, _, _ = site
    blocked: list[str] = []
    context = offline_context(browser, blocked)
    page = context.new_page()
    page.goto(f"{base}gd.html", wait_until="load")
    solutions = page.locator("div.solution.dropdown")
    assert solutions.count() > 0, "gd.html has no folded solution"
    solution = solutions.first
    code, output = solution.locator("div.cell_input pre"), solution.locator("div.cell_output")
    assert code.count() > 0 and output.count() > 0, "the solution has no executed code cell"
    button = solution.locator("button.toggle-button")
    assert button.get_attribute("aria-expanded") == "false"
    assert not code.first.is_visible() and not output.first.is_visible()
    button.click()
    code.first.wait_for(state="visible", timeout=5000)
    assert button.get_attribute("aria-expanded") == "true"
    assert output.first.is_visible() and output.first.inner_text().strip()
    assert "assert" in code.first.inner_text()
    assert solution.bounding_box()["height"] > 100  # unfolded, not a one-line title
    context.close()
    assert not blocked
