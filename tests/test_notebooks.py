"""The downloadable notebooks run and read like the pages, and d2lkit installs from a wheel alone.

The export's rules are tested on their own (``book/_ext/myst_markdown.py``). The tests on the build
(skipped when ``_build/html`` is absent, like the site tests) build d2lkit's wheel, install it in a
fresh virtual environment holding only what Colab offers (torch, numpy, matplotlib, ipykernel)
plus the test runner (pytest, nbval), and run nbval there on every exported notebook: one run
checks both that the notebooks run without the book's build tools and that their outputs
reproduce the build's (after the substitutions of ``.ci/nbval_sanitize.cfg``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote

import pytest
import tomllib
import yaml
from conftest import myst_notebook

import d2lkit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import myst_markdown  # noqa: E402

BUILD = Path(os.environ.get("D2LKIT_BUILD", ROOT / "_build"))  # another build, for a trial
HTML = BUILD / "html"
SOURCES = HTML / "_sources"
SANITIZER = ROOT / ".ci" / "nbval_sanitize.cfg"
COLAB_SET = ("torch", "numpy", "matplotlib", "ipykernel")
TEST_RUNNER = ("pytest", "nbval")
BUILD_ONLY = ("myst_nb", "sphinx", "jupyter_book", "jupytext")
CELL_TIMEOUT = 600
PIN = re.compile(r'%pip install --quiet "(?P<req>d2lkit @ git\+(?P<repo>\S+)@[0-9a-f]{40}'
                 r'|d2lkit==[\w.+]+)"')

needs_build = pytest.mark.skipif(not HTML.joinpath("index.html").is_file(),
                                 reason=f"no site in {HTML}: run `jupyter-book build book` first")


# --- the conversion rules, without a build ---------------------------------------------------


class FakeResolver:
    """Numbers and texts as a build would give them, recorded for the assertions."""

    def __init__(self) -> None:
        self.roles: list[tuple[str, str]] = []

    def role(self, name: str, content: str) -> str:
        self.roles.append((name, content))
        return {"eq": "[(2)](https://site/gd.html#equation-eq-x)",
                "cite:t": "[Kingma and Ba (2015)](https://site/references.html#id1)",
                "glue:text": "0.125"}.get(name, f"<{name}:{content}>")

    def equation_number(self, label: str) -> str:
        return {"eq-gd-step": "3"}.get(label, "?")

    def number(self, kind: str, label: str) -> str:
        return {("exercise", "ex-gd-lr"): "1", ("figure", "fig-gd-x"): "4"}.get((kind, label), "?")

    def image_url(self, path: str) -> str:
        return f"https://site/_images/{Path(path).name}"

    def link_url(self, target: str) -> str:
        return f"https://site/{target.replace('.md', '.html')}"

    def elsewhere(self, name: str) -> str:
        return f"*on the site: {name}*"


def convert(source: str) -> tuple[str, FakeResolver]:
    resolver = FakeResolver()
    return myst_markdown.convert(source, resolver), resolver


def test_roles_become_the_resolved_markdown_and_code_keeps_them():
    text, resolver = convert("As {cite:t}`kingma2015adam` show in {eq}`eq-x`, the loss is "
                             "{glue:text}`loss:.3f`; write `{eq}` roles as ``{eq}`label` ``.")
    assert text == ("As [Kingma and Ba (2015)](https://site/references.html#id1) show in "
                    "[(2)](https://site/gd.html#equation-eq-x), the loss is 0.125; write `{eq}` "
                    "roles as ``{eq}`label` ``.")
    assert resolver.roles == [("cite:t", "kingma2015adam"), ("eq", "eq-x"),
                              ("glue:text", "loss:.3f")]
    assert myst_markdown.leftovers(text) == []


def test_links_to_labels_and_pages_point_at_the_site():
    text, _ = convert("[the step](#eq-gd-step), [SGD](minibatch_sgd.md#sec-x), [web](https://a.b)")
    assert text == ("[the step](https://site/#eq-gd-step), "
                    "[SGD](https://site/minibatch_sgd.html#sec-x), [web](https://a.b)")


def test_labels_go_and_labelled_equations_keep_their_number():
    text, _ = convert("(sec-gd-intro)=\n## Intro\n\n$$\nx_{t+1} = x_t - \\eta g_t\n$$ "
                      "(eq-gd-step)\n\nafter")
    assert text == "## Intro\n\n$$\nx_{t+1} = x_t - \\eta g_t \\tag{3}$$\n\nafter"


def test_directives_become_plain_markdown():
    source = ("```{note}\nSee {eq}`eq-x`.\n```\n\n:::{admonition} Why $\\eta$?\n:class: tip\n"
              "Because.\n:::\n\n```{figure} img/plot.png\n:name: fig-gd-x\n:alt: A curve\n\n"
              "The {glue:text}`loss` curve.\n```\n\n```{math}\n:label: eq-gd-step\na=b\n```\n\n"
              "```{code-block} python\nprint(1)\n```\n\n```{nb-exec-table}\n```")
    text, _ = convert(source)
    assert text.split("\n\n") == [
        "> **Note**\n>\n> See [(2)](https://site/gd.html#equation-eq-x).",
        "> **Why $\\eta$?**\n>\n> Because.",
        "![A curve](https://site/_images/plot.png)", "**Figure 4.** The 0.125 curve.",
        "$$\na=b \\tag{3}\n$$", "```python\nprint(1)\n```", "*on the site: nb-exec-table*"]
    assert myst_markdown.leftovers(text) == []


def test_exercises_and_solutions_are_numbered_text():
    text, _ = convert("## Exercises\n\n```{exercise}\n:label: ex-gd-lr\nTry $\\eta=2$.\n```")
    assert text == "## Exercises\n\n**Exercise 1.** Try $\\eta=2$."
    text, _ = convert("```{solution-start} ex-gd-lr\n:class: dropdown\n```\nIt diverges.")
    assert text == "**Solution to Exercise 1.**\nIt diverges."
    assert convert("```{solution-end}\n```")[0] == ""


def test_leftovers_finds_every_kind_of_myst():
    text = ("(sec-x)=\n# T\nSee {ref}`sec-x`.\n\n```{note}\nhi\n```\n\n$$\na\n$$ (eq-a)\n\n"
            "```python\n{ref}`in code`\n```\n")
    kinds = [item.split(":")[0] for item in myst_markdown.leftovers(text)]
    assert sorted(kinds) == ["directive", "label line", "labelled equation", "role"]


# --- the package ------------------------------------------------------------------------------


def test_version_comes_from_the_metadata_and_setup_chapter_prints_it(capsys):
    assert d2lkit.__version__ == metadata.version("d2lkit")
    d2lkit.setup_chapter()
    assert f"d2lkit {d2lkit.__version__}" in capsys.readouterr().out


def test_dependencies_are_lower_bounded_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    for requirement in project["dependencies"]:
        assert re.fullmatch(r"[\w-]+>=[\d.]+", requirement), requirement


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build``: the sdist, and the wheel built from it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True, text=True, timeout=600)
    return out


def test_build_makes_a_wheel_and_sdist_that_ship_the_records(dist):
    (wheel,) = dist.glob("d2lkit-*.whl")
    (sdist,) = dist.glob("d2lkit-*.tar.gz")
    assert sdist.stat().st_size > 0
    names = zipfile.ZipFile(wheel).namelist()
    records = [path.relative_to(ROOT).as_posix()
               for path in (ROOT / "d2lkit" / "records").rglob("*.json")]
    assert records and set(records) <= set(names)
    assert all(name.startswith(("d2lkit/", "d2lkit-")) for name in names), names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Python: >=3.10" in meta
    for line in re.findall(r"^Requires-Dist: (.*)$", meta, re.MULTILINE):
        assert re.fullmatch(r"[\w-]+>=[\d.]+", line), line


# --- the export, on a tiny book built with the project's Sphinx setup ------------------------

TINY_PAGE = myst_notebook("Tiny", "import d2lkit").split("# Tiny")[0] + r"""(sec-tiny-top)=
# Tiny

(sec-tiny-step)=
## The step

$$
x_{t+1} = x_t - \eta g_t
$$ (eq-tiny-step)

As {cite:t}`Robbins.Monro.1951` show (and {cite:p}`Robbins.Monro.1951`), {eq}`eq-tiny-step` is
{ref}`sec-tiny-step`, drawn in {numref}`fig-tiny-line`; slope {glue:text}`slope:.3f`.

```{code-cell} ipython3
:mystnb:
:  figure:
:    caption: A line of slope $1/2$, see {eq}`eq-tiny-step`.
:    name: fig-tiny-line
:  image:
:    alt: A straight line rising from 0 to 0.5.
import matplotlib.pyplot as plt
from d2lkit.report import glue
glue("slope", 0.5, display=False)
plt.plot([0, 1], [0, 0.5]);
```

```{note}
A note on {eq}`eq-tiny-step`.
```

## Exercises

```{exercise} A title
:label: ex-tiny-one
Change the slope.
```

## Solutions

```{solution-start} ex-tiny-one
:class: dropdown
```
It changes.
```{code-cell} ipython3
assert 1 + 1 == 2
```
```{solution-end}
```

```{bibliography}
```
"""


def test_export_of_a_tiny_book_resolves_every_construct(tmp_path):
    """Build a one-page book that uses every convention; its notebook reads as the page does."""
    from test_site import CONFIG, _tiny_book

    build = _tiny_book(tmp_path, "tiny", TINY_PAGE, execute="force")
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    config |= {"repository": {"url": "https://github.com/owner/name", "branch": "main"},
               "launch_buttons": CONFIG["launch_buttons"]}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    commit = "0123456789abcdef" * 2 + "01234567"
    result = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "GITHUB_SHA": commit})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sources = tmp_path / "_build" / "html" / "_sources"
    cells = json.loads((sources / "tiny.ipynb").read_text())["cells"]
    markdown = [cell_text(cell) for cell in cells if cell["cell_type"] == "markdown"]
    assert [item for text in markdown for item in myst_markdown.leftovers(text)] == []
    text = "\n\n".join(markdown)
    page = "https://owner.github.io/name/tiny.html"
    expected = [
        rf"As Robbins and Monro \(\[1951\]\({page}#[\w-]+\)\) show",
        rf"\(and \(\[Robbins and Monro, 1951\]\({page}#[\w-]+\)\)\)",
        rf"\[\(1\)\]\({page}#equation-eq-tiny-step\)",
        rf"\[The step\]\({page}#sec-tiny-step\)",
        rf"\[Fig\. 1\]\({page}#fig-tiny-line\)",
        r"slope 0\.500\.",
        r"x_\{t\+1\} = x_t - \\eta g_t \\tag\{1\}\$\$",
        r"^> \*\*Note\*\*",
        r"\*\*Exercise 1 \(A title\)\.\*\* Change the slope\.",
        r"\*\*Solution to Exercise 1\.\*\*",
    ]
    missing = [pattern for pattern in expected if not re.search(pattern, text, re.MULTILINE)]
    assert not missing, f"{missing}\n{text}"
    assert not re.search(r"^\(sec-", text, re.MULTILINE)
    figure = next(i for i, cell in enumerate(cells) if "plt.plot" in cell_text(cell))
    assert re.fullmatch(r"\*\*Figure 1\.\*\* A line of slope \$1/2\$, see \[\(1\)\]\(\S+\)\.",
                        cell_text(cells[figure + 1]))
    pin = f"d2lkit @ git+https://github.com/owner/name@{commit}"
    assert f'%pip install --quiet "{pin}"' in cell_text(cells[0])
    assert pin in (sources / "requirements.txt").read_text().splitlines()


# --- the exported notebooks of the build ------------------------------------------------------


def exported() -> list[Path]:
    return sorted(SOURCES.glob("*.ipynb"))


def cell_text(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


@needs_build
def test_every_exported_notebook_reads_as_plain_markdown():
    assert exported(), f"no notebooks in {SOURCES}"
    problems = []
    for path in exported():
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "markdown":
                # an unresolved {glue:text} is left as it is, and reported as a role
                problems += [f"{path.name} cell {index}: {item}"
                             for item in myst_markdown.leftovers(cell_text(cell))]
    assert not problems, "\n".join(problems)


@needs_build
def test_a_citation_renders_as_linked_text_with_nbconvert():
    from nbconvert import HTMLExporter

    for path in exported():
        notebook = json.loads(path.read_text())
        if any("references.html#" in cell_text(c) for c in notebook["cells"]
               if c["cell_type"] == "markdown"):
            break
    else:
        pytest.fail("no exported notebook cites a reference")
    html, _ = HTMLExporter().from_filename(str(path))
    assert re.search(r'<a href="[^"]*references\.html#[^"]+">', html), path.name
    text = re.sub(r"<[^>]+>", "", html)  # what a reader sees
    textual = r"[A-Z][\w-]+(?: and [A-Z][\w-]+| et al\.)? \(\d{4}[a-z]?\)"
    parenthetical = r"\([A-Z][\w-]+(?: and [A-Z][\w-]+| et al\.)?, \d{4}[a-z]?[);]"
    assert re.search(textual, text) or re.search(parenthetical, text), path.name
    assert "{cite" not in text


def page_link(html: str, host: str) -> str:
    (link,) = set(re.findall(rf'href="(https://{re.escape(host)}/[^"]+)"', html))
    return unquote(link.replace("&amp;", "&"))


@needs_build
def test_launch_buttons_open_the_page_notebook_and_its_setup_cell_pins_d2lkit():
    requirements = (SOURCES / "requirements.txt").read_text()
    for path in exported():
        html = (HTML / f"{path.stem}.html").read_text()
        colab = page_link(html, "colab.research.google.com")
        binder = page_link(html, "mybinder.org")
        assert re.fullmatch(rf"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/"
                            rf"notebooks/{path.name}", colab), colab
        assert re.fullmatch(rf"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/notebooks\?urlpath="
                            rf"lab/tree/{path.name}", binder), binder
        first = json.loads(path.read_text())["cells"][0]
        pin = PIN.search(cell_text(first))
        assert first["cell_type"] == "code" and pin, f"{path.name}: no pinned setup cell"
        assert pin.group("req") in requirements.splitlines(), "Binder installs another d2lkit"
        if pin.group("repo"):
            assert colab.split("/github/")[1].split("/blob/")[0] in pin.group("repo")


PROBE = ("import importlib.util, sys, d2lkit, json; print(json.dumps({'prefix': sys.prefix, "
         "'d2lkit': d2lkit.__file__, 'build_only': [m for m in " + repr(BUILD_ONLY)
         + " if importlib.util.find_spec(m)]}))")


@pytest.fixture(scope="module")
def fresh_env(dist, tmp_path_factory) -> Path:
    """A virtual environment with the Colab-like set, pytest and nbval, and d2lkit's wheel."""
    env = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    pins = [f"{name}=={metadata.version(name)}" for name in COLAB_SET + TEST_RUNNER]
    (wheel,) = dist.glob("d2lkit-*.whl")
    install = [python, "-m", "pip", "install", "-q", *pins, str(wheel)]
    if subprocess.run(install, timeout=1200).returncode != 0:  # a +cpu torch: PyTorch's index
        subprocess.run([*install, "--extra-index-url", "https://download.pytorch.org/whl/cpu"],
                       check=True, timeout=1200)
    return python


def clean_environment() -> dict[str, str]:
    """This process's environment (data mirror, profile) without its virtual environment."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


@needs_build
def test_every_exported_notebook_runs_in_a_fresh_environment_with_the_build_outputs(
        fresh_env, tmp_path):
    env = clean_environment()
    probe = subprocess.run([fresh_env, "-c", PROBE], capture_output=True, text=True, check=True,
                           cwd=tmp_path, env=env, timeout=300)
    found = json.loads(probe.stdout)
    assert found["build_only"] == [], f"the fresh environment has {found['build_only']}"
    assert Path(found["d2lkit"]).is_relative_to(found["prefix"]), "d2lkit is not the wheel's"
    notebooks = tmp_path / "notebooks"  # no checkout beside the notebooks
    notebooks.mkdir()
    for path in exported():
        (notebooks / path.name).write_bytes(path.read_bytes())
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repository's configuration
    result = subprocess.run(
        [fresh_env, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-c", "pytest.ini",
         "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZER),
         "--nbval-cell-timeout", str(CELL_TIMEOUT), "notebooks"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3 * 3600)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
