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
