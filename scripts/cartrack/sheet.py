"""The sample sheet: read, fill defaults, resolve paths and check the design rules.

Every problem is reported with the sheet's row number, the column and the value, all at
once, before any job starts.
"""

import csv
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cartrack import multi
from cartrack.design import TISSUES, InputError, phase
from cartrack.io import check_gex_path

log = logging.getLogger(__name__)

REQUIRED = ["sample", "patient", "day", "tissue", "gex"]
OPTIONAL = ["bcr", "timepoint", "batch", "tcr"]
VDJ_COLUMNS = ("bcr", "tcr")
SAMPLE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
BASELINE_LABEL = re.compile(r"baseline|screen|^pre", re.IGNORECASE)
BCR_SUFFIXES = (".csv", ".csv.gz", ".json", ".tsv", ".tsv.gz")
NA_STRINGS = ("NA", "N/A", "NaN", "nan", "NULL")  # what R and spreadsheets write for blank


def _table(text: str, path: Path) -> pd.DataFrame:
    """Tab-separated text as a table of strings; blank lines skipped, and fields past the
    header (trailing tabs) dropped when empty, refused when not."""
    lines = [line for line in text.splitlines() if line.strip()]
    rows = list(csv.reader(lines, delimiter="\t"))
    header = [h.strip() for h in rows[0]]
    named = [h for h in header if h]
    if len(set(named)) < len(named):
        dups = sorted({h for h in named if named.count(h) > 1})
        raise InputError(f"sample sheet '{path}': column(s) {dups} appear twice; keep one")
    width = len(header)
    for n, row in enumerate(rows[1:], start=2):
        beyond = [v for v in row[width:] if v.strip()]
        if beyond:
            raise InputError(
                f"sample sheet '{path}': row {n} has {len(row)} fields, the header {width} "
                f"(extra value '{beyond[0]}'): add the column's name to the header or remove it"
            )
        row[:] = (row + [""] * width)[:width]
    for i in [i for i, h in enumerate(header) if not h]:  # trailing tabs in the header
        values = [r[i] for r in rows[1:] if r[i].strip()]
        if values:
            raise InputError(
                f"sample sheet '{path}': a column without a name holds values (e.g. "
                f"'{values[0]}'); name it or remove it"
            )
    keep = [i for i, h in enumerate(header) if h]
    return pd.DataFrame(
        [[r[i] for i in keep] for r in rows[1:]], columns=[header[i] for i in keep], dtype=str
    )


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the sheet as strings, with optional columns added and blanks as ''.

    A UTF-8 byte-order mark, Windows line ends and trailing blanks are tolerated; ``#`` is
    an ordinary character (paths may hold it); R's ``NA`` counts as blank.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InputError(
            f"sample sheet '{path}' {what}: set config key 'samples' to the sheet's path, "
            "relative to the working folder"
        )
    raw = path.read_bytes()
    if b"\0" in raw[:4096]:
        raise InputError(
            f"sample sheet '{path}' is a binary file, not a tab-separated text table: "
            "save it from your spreadsheet as 'Text (tab-delimited)'"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"sample sheet '{path}': byte {err.start} is not UTF-8; save the sheet as UTF-8 text"
        ) from None
    if not text.strip():
        raise InputError(
            f"sample sheet '{path}' is empty: give a header row and one row per sample"
        )
    sheet = _table(text, path)
    missing = [c for c in REQUIRED if c not in sheet.columns]
    if missing:
        hint = (
            "it looks comma-separated: save it tab-separated"
            if "," in text.splitlines()[0] and len(sheet.columns) == 1
            else "is it tab-separated?"
        )
        raise InputError(
            f"sample sheet '{path}': missing required column(s) {missing}; "
            f"found {list(sheet.columns)} ({hint})"
        )
    if len(sheet) == 0:
        raise InputError(
            f"sample sheet '{path}' has a header but no samples: add one row per sample"
        )
    for col in OPTIONAL:
        if col not in sheet.columns:
            sheet[col] = ""
    sheet = sheet.apply(lambda c: c.str.strip())
    extra = [c for c in sheet.columns if c not in REQUIRED + OPTIONAL]
    if extra:
        log.warning("sample sheet '%s': column(s) %s are not used and left out", path, extra)
    sheet = sheet.drop(columns=extra)
    for col in OPTIONAL:
        sheet.loc[sheet[col].isin(NA_STRINGS), col] = ""
    return sheet


def validate_sheet(
    sheet: pd.DataFrame,
    *,
    sheet_path: str | Path,
    exists: Callable[[Path], bool] | None = None,
) -> pd.DataFrame:
    """Check the design rules and return the sheet indexed by sample, ready to use.

    Paths are resolved against the sheet's folder. `exists(path)` decides whether a file
    counts as present without checking it on disk (for files a rule will make, such as the
    demo cohort's). Raises InputError listing every problem.
    """
    base = Path(sheet_path).resolve().parent
    errors = []

    def err(i: int, col: str, value: str, what: str) -> None:
        errors.append(
            f"row {i + 2} (sample '{sheet.at[i, 'sample']}'), column '{col}', "
            f"value '{value}': {what}"
        )

    for i, row in sheet.iterrows():
        if not SAMPLE_ID.match(row["sample"]):
            err(i, "sample", row["sample"], "use only letters, digits, '_' and '-'")
        if not row["patient"]:
            err(i, "patient", row["patient"], "patient id is required")
        if not re.fullmatch(r"[+-]?\d+", row["day"]):
            err(i, "day", row["day"], "must be an integer number of days from infusion")
        if row["tissue"] not in TISSUES:
            err(i, "tissue", row["tissue"], f"must be one of {sorted(TISSUES)}")
    for sample in sheet.loc[sheet["sample"].duplicated(), "sample"].unique():
        rows = [str(i + 2) for i in sheet.index[sheet["sample"] == sample]]
        errors.append(
            f"rows {', '.join(rows)}, column 'sample', value '{sample}': sample ids must be unique"
        )

    out = sheet.copy()
    for col in ("gex", *VDJ_COLUMNS):
        out[col] = [str((base / p).resolve()) if p else "" for p in sheet[col]]
    for i in out.index:
        for col, message in _resolve_multi(out, i).items():
            err(i, col, sheet.at[i, col], message)
    for i, row in out.iterrows():
        gex = Path(row["gex"]) if row["gex"] else None
        if gex is None:
            err(i, "gex", "", "a gene-expression file is required")
        elif not (exists and exists(gex)):
            reason = check_gex_path(gex)
            if reason:
                err(i, "gex", sheet.at[i, "gex"], f"{reason} (resolved to {gex})")
        for col in VDJ_COLUMNS:
            if not row[col]:
                continue
            vdj = Path(row[col])
            if not vdj.name.endswith(BCR_SUFFIXES):
                err(
                    i,
                    col,
                    sheet.at[i, col],
                    "expected filtered_contig_annotations.csv[.gz], all_contig_annotations.json "
                    "or an AIRR .tsv[.gz]",
                )
            elif not (exists and exists(vdj)) and not vdj.is_file():
                err(i, col, sheet.at[i, col], f"file not found (resolved to {vdj})")
    if errors:
        raise InputError(
            f"sample sheet '{sheet_path}' has {len(errors)} problem(s):\n  " + "\n  ".join(errors)
        )

    out["day"] = out["day"].astype(int)
    out["timepoint"] = [t or f"D{d}" for t, d in zip(out["timepoint"], out["day"], strict=True)]
    out["batch"] = [b or s for b, s in zip(out["batch"], out["sample"], strict=True)]
    return out.set_index("sample", drop=False)


def _resolve_multi(out: pd.DataFrame, i: int) -> dict[str, str]:
    """Replace Cell Ranger ``multi`` folders in row `i` by the files inside (in place).

    A ``gex`` folder also fills empty ``bcr`` / ``tcr`` entries with its V(D)J files.
    Returns the problems found, by column.
    """
    sample, problems = out.at[i, "sample"], {}
    gex_folder = out.at[i, "gex"] if multi.is_multi_folder(out.at[i, "gex"]) else ""
    for col in ("gex", *VDJ_COLUMNS):
        folder = out.at[i, col] or (gex_folder if col != "gex" else "")
        if not folder or not multi.is_multi_folder(folder):
            continue
        try:
            if out.at[i, col]:
                out.at[i, col] = str(multi.resolve(folder, col, sample=sample))
            else:
                found = getattr(multi.find_multi_files(folder, sample=sample), col)
                if found is not None:
                    out.at[i, col] = str(found)
                    log.info("sample %s: %s from the multi folder %s", sample, col, found)
        except InputError as error:
            problems[col] = str(error)
    return problems


def load_sheet(path: str | Path, *, exists: Callable[[Path], bool] | None = None) -> pd.DataFrame:
    """Read and validate the sample sheet at `path`."""
    return validate_sheet(read_sheet(path), sheet_path=path, exists=exists)


def shown_path(path: str) -> str:
    """A path for tables: relative to the working folder when inside it, so that two runs
    in different folders write the same table."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def require_column(sheet: pd.DataFrame, column: str, *, config_key: str) -> None:
    """Refuse a config value that names a sheet column the sheet does not have."""
    if column not in sheet.columns:
        raise InputError(
            f"config {config_key} is '{column}', which is not a column of the sample sheet "
            f"(columns: {', '.join(sheet.columns)}); name one of them or add the column"
        )


def design_checks(
    sheet: pd.DataFrame, *, post_min_day: int, visit_window_days: int = 0
) -> pd.DataFrame:
    """Design warnings of a validated sheet, one row each (columns of design_checks.tsv).

    Checks: a patient without baseline (day <= 0) or without a sample on or after
    `post_min_day`; a time-point label saying baseline on a day after infusion; two samples
    of one patient and tissue with the same label; one file named by several samples.
    Every warning is logged as well.
    """
    rows = []

    def warn(check, sample, patient, column, value, message):
        log.warning("sample sheet: %s%s", f"sample '{sample}': " if sample else "", message)
        rows.append([check, "warning", sample, patient, column, str(value), message])

    post = phase(sheet["day"], post_min_day=post_min_day, visit_window_days=visit_window_days)
    post = post == "post"
    if not post.any():
        warn(
            "no_post_sample", "", "", "day", int(sheet["day"].max()),
            f"no sample on or after tracking.post_min_day ({post_min_day}): no clone can be "
            "called eliminated or persistent; lower post_min_day or add later samples",
        )  # fmt: skip
    for patient, days in sheet.groupby("patient")["day"]:
        if (days > 0).all():
            warn(
                "no_baseline", "", patient, "day", int(days.min()),
                f"patient '{patient}' has no baseline sample (day <= 0): clone elimination "
                "and signature changes cannot be assessed for it",
            )  # fmt: skip
        elif post.any() and not (days >= post_min_day).any():
            warn(
                "no_post_sample", "", patient, "day", int(days.max()),
                f"patient '{patient}' has no sample on or after tracking.post_min_day "
                f"({post_min_day}): its clones are not assessable",
            )  # fmt: skip
    for sample, row in sheet.iterrows():
        if BASELINE_LABEL.search(row["timepoint"]) and row["day"] > 0:
            warn(
                "baseline_after_infusion", sample, row["patient"], "timepoint", row["timepoint"],
                f"labelled '{row['timepoint']}' but day {row['day']} is after infusion: it "
                "counts as a post-infusion sample; check the day (baseline days are <= 0)",
            )  # fmt: skip
    for (patient, tissue, label), group in sheet.groupby(["patient", "tissue", "timepoint"]):
        if len(group) > 1:
            samples = ", ".join(group.index)
            warn(
                "timepoint_collision", group.index[1], patient, "timepoint", label,
                f"samples {samples} of patient '{patient}' in {tissue} share the time-point "
                f"label '{label}' (days {', '.join(map(str, group['day']))}): plots and "
                "paired tests cannot tell them apart; give each its own label",
            )  # fmt: skip
    for col in ("gex", "bcr"):
        for path, group in sheet[sheet[col] != ""].groupby(col):
            if len(group) > 1:
                warn(
                    "same_file_twice", group.index[1], group["patient"].iloc[1], col,
                    shown_path(path),
                    f"samples {', '.join(group.index)} name the same {col} file: their cells "
                    "would be counted twice unless the file holds several samples in a "
                    "'sample' column",
                )  # fmt: skip
    return pd.DataFrame(
        rows, columns=["check", "severity", "sample", "patient", "column", "value", "message"]
    )
