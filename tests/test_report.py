import re
import sys
from pathlib import Path

import pytest
import tomllib

from d2lkit import report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks are scripts of the repository, not installed


def test_fmt_sec_uses_the_masked_unit():
    assert report.fmt_sec(0.012345) == "0.0123 sec"
    assert report.fmt_sec(12.0) == "12 sec"


def test_glue_rounds_floats_to_digits_that_reproduce(monkeypatch):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    noisy = {"acc": [2.4785368958974905, 1], "run": ("cosine", 66.06443926337664), "n": 3}
    report.glue("record", noisy, display=False)
    assert glued["record"] == {"acc": [2.47853689590, 1], "run": ("cosine", 66.0644392634),
                               "n": 3}
    report.glue("twin", {"acc": [2.478536895897489, 1]}, display=False)
    assert glued["twin"]["acc"] == glued["record"]["acc"]   # the last bits no longer show
    assert type(glued["record"]["n"]) is int


def test_format_table_aligns_and_rounds():
    text = report.format_table([("sgd", 0.24312), ("adam", 1.5)], ["run", "loss"])
    assert text.splitlines() == [
        "run   loss",
        "----  -----",
        "sgd   0.243",
        "adam  1.500",
    ]


def test_format_table_rejects_ragged_rows():
    with pytest.raises(ValueError):
        report.format_table([(1, 2, 3)], ["a", "b"])


def test_recorded_reads_the_json_a_script_wrote(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.json").write_text('{"acc": 0.9}')
    assert report.recorded("sub/run", "python -m benchmarks.x", root=tmp_path) == {"acc": 0.9}


def test_recorded_names_the_command_that_writes_a_missing_record(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `python -m benchmarks.x sched`"):
        report.recorded("nothing", "python -m benchmarks.x sched", root=tmp_path)


def test_the_book_records_are_package_data():
    """The records the book prints ship with d2lkit and are read through importlib.resources."""
    assert report.recorded("results", "python -m benchmarks.run")["targets"]
    assert report.recorded("full_profile/schedulers",
                           "python -m benchmarks.full_profile schedulers")["values"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["d2lkit"]
    records = ROOT / "d2lkit" / report.RECORDS
    shipped = {path for pattern in patterns for path in (ROOT / "d2lkit").glob(pattern)}
    assert set(records.rglob("*.json")) <= shipped


def test_the_scripts_write_where_recorded_reads():
    from benchmarks import full_profile, run

    records = ROOT / "d2lkit" / report.RECORDS
    assert records / "results.json" == run.RESULTS
    assert records / "full_profile" == full_profile.RECORDS


def test_nothing_in_the_package_reads_the_repository():
    """No d2lkit module builds a path out of its own folder (``parents[1]``, ``'..'``)."""
    for module in (ROOT / "d2lkit").rglob("*.py"):
        text = module.read_text()
        assert not re.search(r"parents?\[|\.\.[/\\]|\"benchmarks", text), module
