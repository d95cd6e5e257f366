"""The sample sheet: defaults, path resolution and errors naming row, column and value."""

import logging
from pathlib import Path

import pytest

from cartrack.design import InputError
from cartrack.sheet import design_checks, load_sheet

HEADER = "sample\tpatient\tday\ttissue\tgex\tbcr\ttimepoint\tbatch\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    (tmp_path / "contigs.csv").write_text("barcode\n")
    return tmp_path


def write(folder: Path, rows: list[str], header: str = HEADER) -> Path:
    path = folder / "samples.tsv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_defaults_and_resolution(files):
    sheet = load_sheet(
        write(files, ["S1\tP1\t-3\tPB\ta.h5\tcontigs.csv\t\t", "S2\tP1\t14\tPB\ta.h5\t\t\t"])
    )
    assert list(sheet.index) == ["S1", "S2"]
    assert sheet.loc["S1", "gex"] == str(files / "a.h5")
    assert sheet.loc["S1", "bcr"] == str(files / "contigs.csv")
    assert sheet.loc["S2", "bcr"] == ""
    assert sheet.loc["S2", "timepoint"] == "D14"
    assert sheet.loc["S2", "batch"] == "S2"
    assert sheet["day"].dtype.kind == "i"


def test_optional_columns_may_be_absent(files):
    header = "sample\tpatient\tday\ttissue\tgex\n"
    sheet = load_sheet(write(files, ["S1\tP1\t0\tBM\ta.h5"], header=header))
    assert sheet.loc["S1", "bcr"] == "" and sheet.loc["S1", "timepoint"] == "D0"


@pytest.mark.parametrize(
    ("row", "column", "value"),
    [
        ("S 1\tP1\t0\tPB\ta.h5\t\t\t", "sample", "S 1"),
        ("S1\tP1\tday7\tPB\ta.h5\t\t\t", "day", "day7"),
        ("S1\tP1\t7.5\tPB\ta.h5\t\t\t", "day", "7.5"),
        ("S1\tP1\t0\tblood\ta.h5\t\t\t", "tissue", "blood"),
        ("S1\tP1\t0\tPB\tmissing.h5\t\t\t", "gex", "missing.h5"),
        ("S1\tP1\t0\tPB\ta.h5\tnope.csv\t\t", "bcr", "nope.csv"),
        ("S1\tP1\t0\tPB\ta.h5\tcontigs.fasta\t\t", "bcr", "contigs.fasta"),
        ("S1\t\t0\tPB\ta.h5\t\t\t", "patient", ""),
    ],
)
def test_errors_name_row_column_value(files, row, column, value):
    with pytest.raises(InputError) as err:
        load_sheet(write(files, [row]))
    message = str(err.value)
    assert "row 2" in message and f"column '{column}'" in message and f"value '{value}'" in message


def test_all_problems_reported_at_once(files):
    with pytest.raises(InputError) as err:
        load_sheet(write(files, ["S1\tP1\tx\tPB\ta.h5\t\t\t", "S1\tP1\t0\tXX\ta.h5\t\t\t"]))
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "rows 2, 3, column 'sample', value 'S1'" in message


def test_missing_required_column(files):
    with pytest.raises(InputError, match=r"missing required column\(s\) \['tissue'\]"):
        load_sheet(write(files, ["S1\tP1\t0\ta.h5"], header="sample\tpatient\tday\tgex\n"))


def test_missing_baseline_is_a_warning(files, caplog):
    sheet = load_sheet(write(files, ["S1\tP1\t14\tPB\ta.h5\t\t\t"]))
    with caplog.at_level(logging.WARNING):
        checks = design_checks(sheet, post_min_day=28)
    assert "patient 'P1' has no baseline sample" in caplog.text
    assert "no_baseline" in set(checks["check"])


def test_files_made_by_a_rule_need_not_exist(files):
    sheet = load_sheet(
        write(files, ["S1\tP1\t0\tPB\tdemo/x.h5\tdemo/y.csv\t\t"]),
        exists=lambda p: "demo" in p.parts,
    )
    assert sheet.loc["S1", "gex"].endswith("demo/x.h5")


def test_shipped_demo_sheet_is_valid(repo):
    sheet = load_sheet(repo / "config" / "samples.tsv", exists=lambda p: True)
    assert sheet["patient"].nunique() == 4
    assert set(sheet["tissue"]) == {"PB", "BM", "product"}
    assert (sheet.groupby("patient")["day"].min() <= 0).all()


def test_demo_sheet_has_no_design_warnings(repo):
    """Null case of the design checks: the trial-like demo design raises none."""
    sheet = load_sheet(repo / "config" / "samples.tsv", exists=lambda p: True)
    assert design_checks(sheet, post_min_day=28).empty


def test_design_warnings_name_sample_column_value(files):
    sheet = load_sheet(
        write(
            files,
            ["S1\tP1\t-3\tPB\ta.h5\t\tbaseline\t", "S2\tP1\t3\tPB\ta.h5\t\tbaseline\t"],
        )
    )
    checks = design_checks(sheet, post_min_day=28).set_index("check")
    assert set(checks.index) == {
        "no_post_sample",
        "baseline_after_infusion",
        "timepoint_collision",
        "same_file_twice",
    }
    row = checks.loc["baseline_after_infusion"]
    assert (row["sample"], row["column"], row["value"]) == ("S2", "timepoint", "baseline")
