import pytest

from d2lkit import report


def test_fmt_sec_uses_the_masked_unit():
    assert report.fmt_sec(0.012345) == "0.0123 sec"
    assert report.fmt_sec(12.0) == "12 sec"


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


def test_the_book_records_exist():
    """The records the book prints are in the repository."""
    assert report.recorded("results", "python -m benchmarks.run")["targets"]
    assert report.recorded("full_profile/schedulers",
                           "python -m benchmarks.full_profile schedulers")["values"]
