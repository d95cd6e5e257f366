"""Writing the workflow's TSV tables in the contract's format."""

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
