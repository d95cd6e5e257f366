"""The workflow's TSV tables in the contract's format: writing them, and reading them back."""

from pathlib import Path

import pandas as pd


def write_tsv(df: pd.DataFrame, path: str | Path, *, float_format: str = "%.6g") -> None:
    """Write a table: tab-separated, header, no index, booleans true/false, missing empty."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == bool or str(out[col].dtype) == "boolean":
            out[col] = out[col].map({True: "true", False: "false"}).astype(object)
        elif out[col].dtype == object:
            out[col] = out[col].map(
                lambda v: {True: "true", False: "false"}.get(v, v) if isinstance(v, bool) else v
            )
    out.to_csv(path, sep="\t", index=False, na_rep="", float_format=float_format)


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A results table; an empty file gives an empty frame."""
    try:
        return pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def as_bool(values: pd.Series) -> pd.Series:
    """Booleans from a TSV column (true/false strings, 0/1, bools; missing = False)."""
    if values.dtype == bool:
        return values
    mapped = values.map(
        lambda v: str(v).strip().lower() in {"true", "1", "t", "yes"} if pd.notna(v) else False
    )
    return mapped.astype(bool)
