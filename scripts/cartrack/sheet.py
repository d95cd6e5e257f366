"""The sample sheet: read, fill defaults, resolve paths and check the design rules.

Every problem is reported with the sheet's row number, the column and the value, all at
once, before any job starts.
"""

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cartrack import multi
from cartrack.design import TISSUES, InputError
from cartrack.io import check_gex_path

log = logging.getLogger(__name__)

REQUIRED = ["sample", "patient", "day", "tissue", "gex"]
OPTIONAL = ["bcr", "timepoint", "batch", "tcr"]
VDJ_COLUMNS = ("bcr", "tcr")
SAMPLE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
BCR_SUFFIXES = (".csv", ".csv.gz", ".json", ".tsv", ".tsv.gz")


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the sheet as strings, with optional columns added and blanks as ''."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sample sheet '{path}' does not exist")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    sheet.columns = sheet.columns.str.strip()
    missing = [c for c in REQUIRED if c not in sheet.columns]
    if missing:
        raise InputError(
            f"sample sheet '{path}': missing required column(s) {missing}; "
            f"found {list(sheet.columns)} (is it tab-separated?)"
        )
    for col in OPTIONAL:
        if col not in sheet.columns:
            sheet[col] = ""
    return sheet.apply(lambda c: c.str.strip())


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
    for patient, days in out.groupby("patient")["day"]:
        if (days > 0).all():
            log.warning(
                "patient '%s' has no baseline sample (day <= 0): clone elimination "
                "and signature changes cannot be assessed for it",
                patient,
            )
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
