"""The study design's vocabulary, written once: cell types, tissues, statuses, phases.

Everything else imports these names; ``sheet.py`` is the only place that normalises the
sample sheet. Defaults of configurable values (such as ``tracking.post_min_day``) live in
the config schema only, so functions here take them as required keyword arguments.
"""

import numpy as np
import pandas as pd

CELL_TYPES = (
    "B_naive", "B_transitional", "B_memory", "B_atypical", "plasmablast", "plasma_cell",
    "T_CD4", "T_CD8", "NK", "monocyte", "DC", "other",
)  # fmt: skip
B_CELLS = CELL_TYPES[:4]
NAIVE_B = CELL_TYPES[:2]  # naive_fraction counts naive and transitional B cells
B_LINEAGE = CELL_TYPES[:6]
T_CELLS = ("T_CD4", "T_CD8")

TISSUES = ("PB", "BM", "LN", "CSF", "product")
BLOOD = "PB"

CLONE_STATUSES = ("eliminated", "persistent", "emergent", "early_only", "not_assessable")

BASELINE = "baseline"
EARLY = "early"
POST = "post"


class InputError(ValueError):
    """Bad user input; message names sample, file, column/field and value."""


def phase(day, *, post_min_day: int):
    """``baseline`` (day <= 0), ``early`` (1 .. post_min_day - 1) or ``post`` (>= post_min_day).

    Works on a scalar or array-like of days; array input gives a NumPy array of labels.
    """
    d = np.asarray(pd.to_numeric(day), dtype=float)
    out = np.where(d <= 0, BASELINE, np.where(d >= post_min_day, POST, EARLY))
    return str(out) if out.ndim == 0 else out.astype(object)


def default_timepoint(day) -> str:
    """The sheet's default time-point label, ``D<day>``."""
    return f"D{int(day)}"
