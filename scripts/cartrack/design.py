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
#: `cell_type` value for all cells of a sample in the signature tables.
ALL = "all"
#: Named groups of `cell_type` labels (CONTRACT.md) that tables can report next to single types.
CELL_TYPE_GROUPS: dict[str, tuple[str, ...]] = {"B_cells": B_CELLS, "B_lineage": B_LINEAGE}

TISSUES = ("PB", "BM", "LN", "CSF", "product")
BLOOD = "PB"
PRODUCT = "product"  # the infused CAR-T product: neither baseline nor after infusion

CLONE_STATUSES = ("eliminated", "persistent", "emergent", "early_only", "not_assessable")

BASELINE = "baseline"
EARLY = "early"
POST = "post"


class InputError(ValueError):
    """Bad user input; message names sample, file, column/field and value."""


def phase(day, *, post_min_day: int, visit_window_days: int, tissue=None):
    """``baseline``, ``early`` or ``post`` for a visit day: the one rule every table uses.

    ``baseline``: day <= 0. ``post``: day >= ``post_min_day - visit_window_days``, so a
    protocol visit scheduled on ``post_min_day`` and taken up to ``visit_window_days`` early
    (the demo's "D28" visit of P02 on day 27) counts as after infusion. ``early``: the days
    between, where B cells may still be dying; they count neither way. Both are required
    (``tracking.post_min_day`` / ``tracking.visit_window_days``, defaults in the config
    schema); ``visit_window_days=0`` (no window) is the plain cut-off.

    A sample of tissue ``product`` (the infused CAR-T cells, given `tissue`) is phase
    ``product``: it counts neither as baseline nor as after infusion.

    Works on a scalar or array-like of days; array input gives a NumPy array of labels.
    """
    if not 0 <= visit_window_days < post_min_day:
        raise ValueError(f"visit_window_days must be in [0, post_min_day), got {visit_window_days}")
    d = np.asarray(pd.to_numeric(day), dtype=float)
    first_post = post_min_day - visit_window_days
    out = np.where(d <= 0, BASELINE, np.where(d >= first_post, POST, EARLY))
    if tissue is not None:
        out = np.where(np.asarray(tissue, dtype=object) == PRODUCT, PRODUCT, out)
    return str(out) if out.ndim == 0 else out.astype(object)


def default_timepoint(day) -> str:
    """The sheet's default time-point label, ``D<day>``."""
    return f"D{int(day)}"
