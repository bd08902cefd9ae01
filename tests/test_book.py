"""Checks of the book as built: every chapter executed, and nbval's comparison has teeth."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import myst_notebook
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"
SANITIZE = ROOT / ".ci" / "nbval_sanitize.cfg"


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for entry in toc.get("chapters", []):
        files.append(entry["file"])
    for part in toc.get("parts", []):
        files.extend(entry["file"] for entry in part["chapters"])
    return files


def _notebook_chapters() -> list[str]:
    return [f for f in _toc_files()
            if "format_name: myst" in (ROOT / "book" / f"{f}.md").read_text()]


def test_toc_has_one_copy():
    link = ROOT / "book" / "_toc.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_toc.yml").resolve()


@pytest.mark.parametrize("chapter", _notebook_chapters())
def test_chapter_was_executed(chapter):
    notebook = EXECUTED / f"{chapter}.ipynb"
    assert notebook.is_file(), f"{notebook} missing: run `jupyter-book build book` first"
    cells = json.loads(notebook.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] for c in code)
    assert not any(o["output_type"] == "error" for c in code for o in c["outputs"])
    first = "".join(code[0]["outputs"][0].get("text", ""))
    assert re.match(r"profile: (quick|full) \| device: \w+ \| torch ", first)


def _sanitize(text: str) -> str:
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text()):  # nbval's own parser
        text = re.sub(regex, replace, text)
    return text


def test_sanitizer_masks_only_what_cannot_reproduce():
    assert _sanitize("loss: 0.243, 0.0123 sec/epoch") == "loss:·0.243,TIME/epoch"
    table = "sgd  0.243  {}  -"
    assert _sanitize(table.format("0.1 sec")) == _sanitize(table.format("12.25 sec  "))
    assert _sanitize(table.format("1 sec")) != _sanitize(table.format("1 sec").replace("3", "4"))
    aligned = _sanitize("full:   98.2 GFLOP/s =  1.2% of peak")
    assert aligned == _sanitize("full: 1.0 GFLOP/s = 41.2% of peak")
    assert _sanitize("speedup 3.1x, at 0x7f3a2b10") == "speedup·RATIOx,·at·0xADDRESS"
    record = "{{'steps': [50, 80], 'median_s': {}, 'lr': 0.0058}}"
    assert _sanitize(record.format("0.766")) == _sanitize(record.format("4.8e-05"))
    other_steps = record.replace("80", "90")
    assert _sanitize(record.format("0.766")) != _sanitize(other_steps.format("0.766"))
    kept = "test acc 0.882, 1.5e-07 max diff, <Figure size 600x300 with 1 Axes>"
    assert _sanitize(kept) == kept.replace(" ", "·")


def _loss_cell(cells: list[dict]) -> int:
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if re.search(r"loss: 0\.\d{3}", "".join(out.get("text", ""))):
                return i
    raise AssertionError("no cell prints a loss")


def _run_nbval(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(notebook), "--nbval-sanitize-with",
         str(SANITIZE), "-p", "no:cacheprovider", "-q"],
        cwd=notebook.parent, capture_output=True, text=True, timeout=600)


def test_nbval_catches_a_changed_loss(tmp_path):
    source = EXECUTED / "minibatch_sgd.ipynb"
    assert source.is_file(), f"{source} missing: run `jupyter-book build book` first"
    nb = json.loads(source.read_text())
    nb["cells"] = nb["cells"][: _loss_cell(nb["cells"]) + 1]  # stop after the first printed loss
    (tmp_path / "intact.ipynb").write_text(json.dumps(nb))
    stream = next(o for o in nb["cells"][-1]["outputs"] if "loss: 0." in "".join(o.get("text", "")))
    text = "".join(stream["text"])
    changed = re.sub(r"loss: 0\.(\d)(\d)(\d)",
                     lambda m: f"loss: 0.{m[1]}{m[2]}{(int(m[3]) + 1) % 10}", text, count=1)
    assert changed != text
    stream["text"] = changed
    (tmp_path / "mutated.ipynb").write_text(json.dumps(nb))

    intact = _run_nbval(tmp_path / "intact.ipynb")
    assert intact.returncode == 0, intact.stdout[-3000:]
    mutated = _run_nbval(tmp_path / "mutated.ipynb")
    assert mutated.returncode != 0
    assert "Cell outputs differ" in mutated.stdout


FAILING_PAGE = myst_notebook("Broken", 'raise RuntimeError("this cell fails on purpose")')


def test_readme_clean_command_empties_the_build_cache(tmp_path):
    """The README's command to clean the cache removes the root's _build/, cache included."""
    commands = set(re.findall(r"`(jupyter-book clean [^`]*)`", (ROOT / "README.md").read_text()))
    assert len(commands) == 1, commands
    (tmp_path / "book").mkdir()
    (tmp_path / "_build" / ".jupyter_cache").mkdir(parents=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), *commands.pop().split()[1:]], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    assert not (tmp_path / "_build").exists()


def test_failing_cell_fails_the_build(tmp_path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config = {"title": "broken", "execute": config["execute"],
              "sphinx": {"config": {k: v for k, v in config["sphinx"]["config"].items()
                                    if k.startswith("nb_")}}}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: broken\n")
    (tmp_path / "book" / "broken.md").write_text(FAILING_PAGE)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", "book"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "this cell fails on purpose" in result.stdout + result.stderr
    assert not (tmp_path / "_build" / "html" / "broken.html").exists()


@pytest.mark.parametrize("chapter", _notebook_chapters())
def test_no_code_cell_ends_with_a_semicolon(chapter):
    """nbval runs cells without IPython's history, where a trailing `;` hides nothing."""
    source = (ROOT / "book" / f"{chapter}.md").read_text()
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", source, re.MULTILINE | re.DOTALL)
    assert not [c for c in cells if c.rstrip().endswith(";")], "assign the value instead"
