"""Figures of the workflow: every function takes tables (or cell metadata) and returns a Figure.

Conventions shared by all figures:

- sized for a journal column (``width_mm``: 89 mm single, 183 mm double column), 7 pt text
  (:func:`set_style`), written as vector PDF with embedded TrueType fonts and 300 dpi PNG
  (:func:`save`);
- one colour per patient everywhere (:func:`patient_colours`, colour-blind-safe palettes),
  a fixed colour per cell type (:data:`CELL_TYPE_COLOURS`);
- time runs along "Days since infusion" on a symmetric-log axis (:func:`day_axis`): linear
  around the infusion (day 0; baseline days are <= 0), logarithmic beyond ``linthresh``;
- an empty input gives a figure that says so instead of an error.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from cartrack.design import ALL, CELL_TYPES, T_CELLS

log = logging.getLogger(__name__)

MM = 1 / 25.4  # inches per millimetre
SINGLE_MM = 89.0
DOUBLE_MM = 183.0
DAY_LABEL = "Days since infusion"

# Colour-blind-safe qualitative palettes: Okabe & Ito 2008 (https://jfly.uni-koeln.de/color/,
# the yellow moved last: it is hard to see as a line on white) and Paul Tol's
# (https://personal.sron.nl/~pault/).
PALETTES: dict[str, list[str]] = {
    "okabe_ito": [
        "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442",
    ],
    "tol_bright": ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB"],
    "tol_muted": [
        "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
        "#AA4499",
    ],
}  # fmt: skip
# Patients beyond the palette's length reuse its colours with another marker.
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]

# Paul Tol's muted scheme plus two of his vibrant colours and grey: B lineage in cool hues and
# plasma cells in reds, T/NK in greens and yellows, myeloid in orange and blue.
CELL_TYPE_COLOURS = {
    "B_naive": "#88CCEE",
    "B_transitional": "#44AA99",
    "B_memory": "#332288",
    "B_atypical": "#AA4499",
    "plasmablast": "#CC6677",
    "plasma_cell": "#882255",
    "T_CD4": "#117733",
    "T_CD8": "#999933",
    "NK": "#DDCC77",
    "monocyte": "#EE7733",
    "DC": "#0077BB",
    "other": "#BBBBBB",
}
# Groups that the signature tables report next to single cell types.
GROUP_LABELS = {"all": "All cells", "B_cells": "B cells", "B_lineage": "B lineage"}

STATUSES = ["eliminated", "persistent", "emergent", "early_only", "not_assessable"]
STATUS_COLOURS = {
    "eliminated": "#4477AA",
    "persistent": "#EE6677",
    "emergent": "#228833",
    "early_only": "#AA3377",
    "not_assessable": "#CCBB44",
}
REST_COLOUR = "#E8E8E8"
DP_HATCH = "////"
CAR_T_COLOUR = "#D55E00"

ISOTYPES = ["IgM", "IgD", "IgG", "IgA", "IgE"]
# Unswitched isotypes in blues, switched ones in warm colours (Tol bright / vibrant).
ISOTYPE_COLOURS = {
    "IgM": "#4477AA",
    "IgD": "#66CCEE",
    "IgG": "#EE6677",
    "IgA": "#CCBB44",
    "IgE": "#AA3377",
}

TISSUE_NAMES = {
    "PB": "blood",
    "BM": "marrow",
    "LN": "lymph node",
    "CSF": "CSF",
    "product": "product",
}

DAY_TICKS = (-365, -180, -90, -30, -14, 0, 14, 28, 90, 180, 365, 730, 1095, 1460, 1825)


# --------------------------------------------------------------------------------------
# style, colours, saving
# --------------------------------------------------------------------------------------
def set_style(*, font_size: float = 7.0) -> None:
    """Journal style: small sans-serif text, thin lines, no top/right spines, embedded fonts."""
    small = max(font_size - 1, 4)
    matplotlib.rcParams.update(
        {
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
            "font.size": font_size,
            "axes.titlesize": font_size,
            "axes.labelsize": font_size,
            "xtick.labelsize": small,
            "ytick.labelsize": small,
            "legend.fontsize": small,
            "legend.title_fontsize": small,
            "figure.titlesize": font_size + 1,
            "axes.linewidth": 0.6,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "xtick.major.width": 0.6,
            "ytick.major.width": 0.6,
            "xtick.major.size": 2.5,
            "ytick.major.size": 2.5,
            "lines.linewidth": 1.0,
            "lines.markersize": 3.5,
            "legend.frameon": False,
            "legend.handlelength": 1.4,
            "legend.borderaxespad": 0.3,
            "figure.dpi": 150,
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "svg.fonttype": "none",
        }
    )


def configure(
    *, font_size: float = 7.0, palette: str = "okabe_ito", patients: Iterable = ()
) -> dict[str, str]:
    """Set the style (:func:`set_style`) and return the patient colours of the whole cohort.

    Also quietens the font-subsetting chatter that PDF output sends to the log.
    """
    for name in ("fontTools", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    set_style(font_size=font_size)
    return patient_colours(patients, palette=palette)


def figure_stem(path: str | Path) -> Path:
    """A figure file's path without its extension (for :func:`save`)."""
    return Path(path).with_suffix("")


def save(fig: Figure, stem: str | Path, *, dpi: int = 300) -> list[Path]:
    """Write ``<stem>.pdf`` (vector, TrueType fonts embedded) and ``<stem>.png``; close `fig`."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.pdf", stem.parent / f"{stem.name}.png"]
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        fig.savefig(paths[0], metadata={"CreationDate": None})
        fig.savefig(paths[1], dpi=dpi)
    plt.close(fig)
    return paths


def natural_key(value: object) -> tuple:
    """Sort key that puts P2 before P10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(value)))


def sort_samples(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by patient (natural order), blood before other tissues, then day."""
    if table.empty:
        return table
    key = pd.DataFrame(index=table.index)
    key["p"] = table["patient"].map(natural_key) if "patient" in table else 0
    tissue = table["tissue"].astype(str) if "tissue" in table else pd.Series("PB", table.index)
    key["t"] = (tissue != "PB").astype(int)
    key["tn"] = tissue
    key["d"] = pd.to_numeric(table["day"], errors="coerce") if "day" in table else 0
    key["s"] = table["sample"].astype(str) if "sample" in table else ""
    order = sorted(range(len(key)), key=lambda i: tuple(key.iloc[i]))
    return table.iloc[order]


def sorted_patients(patients: Iterable) -> list[str]:
    return sorted({str(p) for p in patients if pd.notna(p) and str(p) != ""}, key=natural_key)


def patient_colours(patients: Iterable, *, palette: str = "okabe_ito") -> dict[str, str]:
    """One colour per patient (in natural sort order), from a colour-blind-safe palette.

    Use the same, complete patient list in every figure (the sample sheet's) so that a
    patient keeps its colour. Past the palette's length colours repeat; :func:`patient_markers`
    then tells the patients apart.
    """
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r}; choose one of {sorted(PALETTES)}")
    colours = PALETTES[palette]
    return {p: colours[i % len(colours)] for i, p in enumerate(sorted_patients(patients))}


def patient_markers(colours: Mapping[str, str]) -> dict[str, str]:
    """A marker per patient: ``o`` for the first round of colours, then others."""
    n = len(set(colours.values())) or 1
    return {p: MARKERS[(i // n) % len(MARKERS)] for i, p in enumerate(colours)}


def _colours_for(data_patients: Iterable, colours: Mapping[str, str] | None) -> dict[str, str]:
    """`colours` completed for any patient it lacks (so a figure never fails on a new one)."""
    patients = sorted_patients(data_patients)
    if colours is None:
        return patient_colours(patients)
    out = dict(colours)
    extra = [p for p in patients if p not in out]
    if extra:
        more = patient_colours([*out, *extra])
        out.update({p: more[p] for p in extra})
    return out


def label(name: str, *, title: bool = False) -> str:
    """Readable label of a cell type, group, signature or gene-set name."""
    text = _label(str(name))
    return text[:1].upper() + text[1:] if title else text


def _label(name: str) -> str:
    if name in GROUP_LABELS:
        return GROUP_LABELS[name]
    special = {"T_CD4": "CD4 T", "T_CD8": "CD8 T", "plasma_cell": "plasma cell", "DC": "DC"}
    if name in special:
        return special[name]
    if name.startswith("B_"):
        return f"{name[2:]} B"
    if name == "RANDOM_CONTROL":
        return "Random control"
    if name.startswith("HALLMARK_"):
        rest = name[len("HALLMARK_") :].lower().replace("_", " ")
        rest = rest.replace("interferon", "IFN").replace("alpha", "α").replace("gamma", "γ")
        return f"Hallmark {rest}"
    if name.isupper() and "_" not in name:
        return name
    return name.replace("_", " ")


def _size(width_mm: float, height_mm: float) -> tuple[float, float]:
    return width_mm * MM, height_mm * MM


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


def _as_bool(values: pd.Series) -> pd.Series:
    """Booleans from a TSV column (true/false strings, 0/1, bools; missing = False)."""
    if values.dtype == bool:
        return values
    mapped = values.map(
        lambda v: str(v).strip().lower() in {"true", "1", "t", "yes"} if pd.notna(v) else False
    )
    return mapped.astype(bool)


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A results table; an empty file gives an empty frame."""
    try:
        return pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


# --------------------------------------------------------------------------------------
# time axes
# --------------------------------------------------------------------------------------
def day_axis(ax, days: Iterable, *, linthresh: float = 28.0, infusion_line: bool = True) -> None:
    """Symmetric-log "Days since infusion" axis: linear within ±`linthresh`, log beyond."""
    d = pd.to_numeric(pd.Series(list(days), dtype=object), errors="coerce").dropna()
    lo = min(float(d.min()), 0.0) if len(d) else -7.0
    hi = max(float(d.max()), linthresh) if len(d) else 365.0
    ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
    transform = ax.xaxis.get_transform()
    a, b = transform.transform(np.array([lo, hi]))
    pad = 0.06 * (b - a)
    ax.set_xlim(*transform.inverted().transform(np.array([a - pad, b + pad])))
    ticks = [t for t in DAY_TICKS if lo - 1e-9 <= t <= hi * 1.05]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    if infusion_line:
        ax.axvline(0, color="0.55", lw=0.6, ls=":", zorder=0)
    ax.set_xlabel(DAY_LABEL)


def timepoint_days(label_: str) -> float:
    """Approximate day of a time-point label (`D28`, `W12`, `M6`, `Y1`; baseline = 0)."""
    m = re.fullmatch(r"([DWMY])(-?\d+)", str(label_).strip(), flags=re.IGNORECASE)
    if str(label_).lower() in {"baseline", "screening", "pre"}:
        return 0.0
    if not m:
        return np.inf
    factor = {"D": 1, "W": 7, "M": 30.4, "Y": 365.25}[m.group(1).upper()]
    return factor * int(m.group(2))


def timepoint_order(table: pd.DataFrame) -> list[str]:
    """Time-point labels ordered by their median day (`timepoint`, `day` columns)."""
    if table.empty or "timepoint" not in table:
        return []
    t = table.dropna(subset=["timepoint"])
    if "day" in t:
        med = t.groupby(t["timepoint"].astype(str))["day"].median()
    else:
        med = pd.Series({tp: timepoint_days(tp) for tp in t["timepoint"].astype(str).unique()})
    return sorted(med.index, key=lambda tp: (med[tp], natural_key(tp)))


def _sample_labels(samples: pd.DataFrame) -> list[str]:
    """x labels of samples: the time point (`D<day>` if none), with the tissue unless blood."""
    out = []
    for _, row in samples.iterrows():
        tp = row.get("timepoint")
        tp = tp if isinstance(tp, str) and tp else f"D{int(row['day'])}"
        tissue = row.get("tissue", "PB")
        out.append(tp if tissue == "PB" else f"{tissue}\n{tp}")
    return out


def _order_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples of one patient: blood first, then other tissues, each by day."""
    s = samples.copy()
    if "tissue" not in s:
        s["tissue"] = "PB"
    return sort_samples(s)


def _crowded(labels: Iterable[str], slot_mm: float) -> bool:
    """Whether the widest of `labels` would overflow a slot `slot_mm` wide."""
    size = matplotlib.rcParams["xtick.labelsize"]
    size = size if isinstance(size, int | float) else matplotlib.rcParams["font.size"] - 1
    widest = max((len(line) for lab in labels for line in str(lab).split("\n")), default=0)
    return widest * 0.6 * size / 72 * 25.4 > 0.95 * slot_mm


def _panel_labels(table: pd.DataFrame, patients: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per patient its samples in plotting order (blood by day, then other tissues)."""
    out = {}
    for patient in patients:
        t = table[table["patient"].astype(str) == patient].drop_duplicates("sample")
        out[patient] = _order_samples(t).reset_index(drop=True)
    return out


def _rotate_for(panels: Mapping[str, pd.DataFrame], width_mm: float, ncols: int) -> bool:
    """One decision for all panels of a figure: upright labels if any panel is crowded."""
    most = max((len(s) for s in panels.values()), default=1) or 1
    labels = [lab for s in panels.values() for lab in _sample_labels(s)]
    return _crowded(labels, _panel_mm(width_mm, ncols) / most)


def _set_xlabels(ax, labels: Sequence[str], rotate: bool) -> None:
    """Category labels under bars; upright (and on one line) with `rotate`."""
    ax.set_xticks(np.arange(len(labels)))
    if rotate:
        ax.set_xticklabels([str(lab).replace("\n", " ") for lab in labels], rotation=90)
    else:
        ax.set_xticklabels(labels)


def _panel_mm(width_mm: float, ncols: int, margin_mm: float = 30.0) -> float:
    """Approximate width of one panel of a row of `ncols` panels."""
    return max((width_mm - margin_mm) / max(ncols, 1), 10.0)


def _day_axes(axes, days: Iterable, **kwargs) -> None:
    """:func:`day_axis` on stacked panels sharing x: the label on the lowest only."""
    days = list(days)
    for ax in axes:
        day_axis(ax, days, **kwargs)
    for ax in axes[:-1]:
        ax.set_xlabel("")


def _patient_grid(
    n: int, *, ncols: int, width_mm: float, top_mm: float, row_mm: float
) -> tuple[Figure, np.ndarray, int]:
    """One panel per patient (at least one), `ncols` wide, sharing the y axis; returns the
    figure, the flat array of axes and the number of columns used."""
    n = max(n, 1)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=_size(width_mm, top_mm + row_mm * nrows),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    return fig, axes.ravel(), ncols


def _patient_legend(fig_or_ax, colours, markers=None, *, extra=(), **kwargs):
    handles = [
        Line2D([], [], color=c, marker=(markers or {}).get(p, "o"), lw=1, label=p, markersize=3.5)
        for p, c in colours.items()
    ]
    handles += list(extra)
    return fig_or_ax.legend(handles=handles, **kwargs)


def _patient_lines(
    ax, table: pd.DataFrame, value: str, colours, markers, *, scale: float = 1.0
) -> None:
    """One line per patient over days; missing values break the line."""
    for patient, g in table.groupby("patient", sort=False):
        g = g.sort_values("day")
        y = pd.to_numeric(g[value], errors="coerce") * scale
        ax.plot(
            g["day"],
            y,
            color=colours[str(patient)],
            marker=markers.get(str(patient), "o"),
            markeredgecolor="white",
            markeredgewidth=0.3,
            lw=1,
            clip_on=False,
        )


def _recovery_lines(ax, recovery: Mapping[str, float], colours) -> None:
    for patient, day in recovery.items():
        if pd.notna(day) and patient in colours:
            ax.axvline(float(day), color=colours[patient], lw=0.8, ls=(0, (1.5, 1.5)), zorder=0)


def recovery_days(*tables: pd.DataFrame) -> dict[str, float]:
    """`b_recovery_day` per patient from the first table that has it (b_cells or elimination)."""
    for t in tables:
        if t is not None and not t.empty and "b_recovery_day" in t:
            r = t.dropna(subset=["b_recovery_day"]).drop_duplicates("patient")
            return {
                str(p): float(d) for p, d in zip(r["patient"], r["b_recovery_day"], strict=False)
            }
    return {}


# --------------------------------------------------------------------------------------
# 1. QC
# --------------------------------------------------------------------------------------
def qc_cells(
    qc: pd.DataFrame, *, colours: Mapping[str, str] | None = None, width_mm: float = SINGLE_MM
) -> Figure:
    """Cells per sample before and after QC: passed, low quality and doublets stacked."""
    parts = [
        ("n_cells_passed", "passed", "#4477AA"),
        ("n_low_quality", "low quality", "#CCBB44"),
        ("n_doublets", "doublet", "#EE6677"),
    ]
    n = len(qc)
    fig, ax = plt.subplots(figsize=_size(width_mm, 22 + 3.6 * max(n, 3)), layout="constrained")
    if qc.empty:
        _empty(ax, "no samples")
        return fig
    q = sort_samples(qc)
    y = np.arange(len(q))[::-1]
    left = np.zeros(len(q))
    for col, name, colour in parts:
        v = pd.to_numeric(q.get(col, 0), errors="coerce").fillna(0).to_numpy()
        ax.barh(y, v, left=left, color=colour, height=0.75, label=name, lw=0)
        left += v
    if "n_cells_input" in q:
        ax.plot(q["n_cells_input"], y, "|", color="black", ms=6, mew=0.8, label="cells before QC")
    ax.set_yticks(y)
    ax.set_yticklabels(q["sample"])
    colours = _colours_for(q["patient"], colours)
    for tick, patient in zip(ax.get_yticklabels(), q["patient"], strict=False):
        tick.set_color(colours[str(patient)] if colours[str(patient)] != "#F0E442" else "black")
    ax.set_ylim(-0.6, len(q) - 0.4)
    ax.set_xlabel("Cells (n)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, handlelength=1.0)
    return fig


def qc_thresholds(
    qc: pd.DataFrame, *, colours: Mapping[str, str] | None = None, width_mm: float = DOUBLE_MM
) -> Figure:
    """The per-sample QC thresholds: kept ranges of counts and genes, top-20 and mito ceilings."""
    panels = [
        ("min_total_counts", "max_total_counts", "UMI counts per cell\n(range kept)", True),
        ("min_n_genes", "max_n_genes", "Genes per cell\n(range kept)", True),
        (None, "max_pct_top20", "Counts in top-20 genes\n(%, ceiling)", False),
        (None, "max_pct_mito", "Mitochondrial counts\n(%, ceiling)", False),
    ]
    n = len(qc)
    fig, axes = plt.subplots(
        1, 4, figsize=_size(width_mm, 24 + 3.6 * max(n, 3)), sharey=True, layout="constrained"
    )
    present = [p for p in panels if p[1] in qc.columns]
    if qc.empty or not present:
        for ax in axes:
            _empty(ax, "no QC thresholds")
        return fig
    q = sort_samples(qc)
    colours = _colours_for(q["patient"], colours)
    y = np.arange(len(q))[::-1]
    cols = [colours[str(p)] for p in q["patient"]]
    for ax, (lo_col, hi_col, title, logx) in zip(axes, panels, strict=False):
        if hi_col not in q:
            _empty(ax, "not recorded")
            ax.set_title(title)
            continue
        hi = pd.to_numeric(q[hi_col], errors="coerce").to_numpy()
        if lo_col and lo_col in q:
            lo = pd.to_numeric(q[lo_col], errors="coerce").to_numpy()
            ax.hlines(y, lo, hi, colors=cols, lw=2.2, alpha=0.9)
            ax.scatter(lo, y, c=cols, marker="|", s=25, lw=1)
            ax.scatter(hi, y, c=cols, marker="|", s=25, lw=1)
        else:
            ax.hlines(y, 0, hi, colors=cols, lw=2.2, alpha=0.9)
            ax.set_xlim(left=0)
        if logx:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(title)
        ax.grid(axis="x", color="0.9", lw=0.5)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(q["sample"])
    axes[0].set_ylim(-0.6, len(q) - 0.4)
    fig.suptitle("Cells inside these ranges passed QC", fontsize=matplotlib.rcParams["font.size"])
    return fig


# --------------------------------------------------------------------------------------
# 2. UMAP
# --------------------------------------------------------------------------------------
def read_obs(path: str | Path, *, umap: bool = False) -> pd.DataFrame:
    """Cell metadata of the gene-expression modality (``mod/gex`` of an .h5mu, or an .h5ad).

    Reads only ``obs`` (and ``obsm/X_umap`` as columns ``umap_1``, ``umap_2`` with `umap`),
    never the expression matrix.
    """
    import h5py
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        group = f["mod/gex"] if "mod" in f and "gex" in f["mod"] else f
        obs = read_elem(group["obs"])
        if umap:
            if "obsm" in group and "X_umap" in group["obsm"]:
                xy = np.asarray(read_elem(group["obsm/X_umap"]))[:, :2]
                obs["umap_1"], obs["umap_2"] = xy[:, 0], xy[:, 1]
            else:
                log.warning("%s: no obsm/X_umap; the UMAP figure will be empty", path)
    return obs


def _scatter(ax, xy: np.ndarray, colour, size: float, **kwargs) -> None:
    ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=size, lw=0, rasterized=True, **kwargs)


def umap(
    obs: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    width_mm: float = DOUBLE_MM,
    seed: int = 0,
    point_size: float | None = None,
) -> Figure:
    """UMAP of all cells by cell type, time point, patient, and with CAR-T cells highlighted.

    Points are rasterised inside the otherwise vector PDF; cells are drawn in a fixed random
    order so no patient or time point hides the others.
    """
    fig, axes = plt.subplots(2, 2, figsize=_size(width_mm, width_mm * 0.78), layout="constrained")
    axes = axes.ravel()
    titles = ["Cell type", "Time point", "Patient", "CAR-T cells"]
    if obs.empty or "umap_1" not in obs:
        for ax, title in zip(axes, titles, strict=False):
            _empty(ax, "no UMAP coordinates")
            ax.set_title(title)
        return fig
    rng = np.random.default_rng(seed)
    o = obs.iloc[rng.permutation(len(obs))]
    xy = o[["umap_1", "umap_2"]].to_numpy(dtype=float)
    size = point_size if point_size is not None else float(np.clip(6000 / len(o), 0.3, 6))
    # cell type
    ct = o["cell_type"].astype(str)
    _scatter(axes[0], xy, ct.map(CELL_TYPE_COLOURS).fillna("#BBBBBB").to_list(), size)
    present = [c for c in CELL_TYPES if c in set(ct)] + sorted(set(ct) - set(CELL_TYPES))
    _legend_right(axes[0], {label(c): CELL_TYPE_COLOURS.get(c, "#BBBBBB") for c in present})
    # time point, ordered by median day, coloured along viridis (perceptually uniform, CVD-safe)
    tp = o["timepoint"].astype(str) if "timepoint" in o else "D" + o["day"].astype(str)
    order = timepoint_order(pd.DataFrame({"timepoint": tp, "day": o["day"]}))
    cmap = matplotlib.colormaps["viridis"]
    tcol = {
        t: matplotlib.colors.to_hex(cmap(i / max(len(order) - 1, 1))) for i, t in enumerate(order)
    }
    _scatter(axes[1], xy, tp.map(tcol).to_list(), size)
    _legend_right(axes[1], tcol)
    # patient
    colours = _colours_for(o["patient"], colours)
    pc = o["patient"].astype(str).map(colours)
    _scatter(axes[2], xy, pc.to_list(), size)
    _legend_right(axes[2], {p: colours[p] for p in sorted_patients(o["patient"])})
    # CAR-T on top of everything else
    car = _as_bool(o["car_t"]) if "car_t" in o else pd.Series(False, index=o.index)
    _scatter(axes[3], xy[~car.to_numpy()], "#D9D9D9", size)
    _scatter(axes[3], xy[car.to_numpy()], CAR_T_COLOUR, max(size * 2, 1.5))
    _legend_right(
        axes[3],
        {f"CAR-T (n = {int(car.sum())})": CAR_T_COLOUR, "other cells": "#D9D9D9"},
    )
    for ax, title in zip(axes, titles, strict=False):
        ax.set_title(title, loc="left")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_aspect("equal", adjustable="datalim")
    return fig


def _legend_right(ax, entries: Mapping[str, str]) -> None:
    handles = [
        Line2D([], [], ls="", marker="o", markersize=4, color=c, label=k)
        for k, c in entries.items()
    ]
    ncols = 2 if len(handles) > 12 else 1
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        ncols=ncols,
        handletextpad=0.2,
        borderaxespad=0.2,
        labelspacing=0.3,
    )


# --------------------------------------------------------------------------------------
# 3. composition and B-cell fraction
# --------------------------------------------------------------------------------------
def composition(
    cell_types: pd.DataFrame,
    *,
    samples: pd.DataFrame | None = None,
    width_mm: float = DOUBLE_MM,
    ncols: int = 3,
) -> Figure:
    """Cell-type composition of each sample, one panel per patient (blood first, then marrow).

    `samples` (any table with ``sample`` and ``timepoint``, e.g. b_cells.tsv) names the bars
    by time point; without it they read ``D<day>``.
    """
    if samples is not None and "timepoint" in samples and "timepoint" not in cell_types:
        tp = samples.drop_duplicates("sample").set_index("sample")["timepoint"]
        cell_types = cell_types.assign(timepoint=cell_types["sample"].map(tp))
    patients = sorted_patients(cell_types.get("patient", []))
    fig, axes, ncols = _patient_grid(
        len(patients), ncols=ncols, width_mm=width_mm, top_mm=12, row_mm=42
    )
    if not patients:
        _empty(axes[0], "no cell types")
        return fig
    present = [c for c in CELL_TYPES if c in set(cell_types["cell_type"].astype(str))]
    present += sorted(set(cell_types["cell_type"].astype(str)) - set(CELL_TYPES))
    panels = _panel_labels(cell_types, patients)
    rotate = _rotate_for(panels, width_mm, ncols)
    for ax, patient in zip(axes, patients, strict=False):
        t = cell_types[cell_types["patient"].astype(str) == patient]
        wide = t.pivot_table(
            index="sample", columns="cell_type", values="fraction", aggfunc="sum", fill_value=0
        )
        samples = panels[patient].set_index("sample")
        wide = wide.reindex(samples.index).fillna(0)
        x = np.arange(len(wide))
        bottom = np.zeros(len(wide))
        for c in present:
            v = wide[c].to_numpy() * 100 if c in wide else np.zeros(len(wide))
            ax.bar(x, v, bottom=bottom, width=0.8, color=CELL_TYPE_COLOURS.get(c, "#BBBBBB"), lw=0)
            bottom += v
        _set_xlabels(ax, _sample_labels(samples.reset_index()), rotate)
        ax.set_title(patient, loc="left")
        ax.set_ylim(0, 100)
        ax.set_xlim(-0.6, len(x) - 0.4)
    for ax in axes[::ncols]:
        ax.set_ylabel("Cells (% of sample)")
    for ax in axes[len(patients) :]:
        ax.set_visible(False)
    handles = [Patch(color=CELL_TYPE_COLOURS.get(c, "#BBBBBB"), label=label(c)) for c in present]
    fig.legend(handles=handles, loc="outside right center", handlelength=1.0)
    return fig


def b_fraction(
    b_cells: pd.DataFrame,
    *,
    recovery: Mapping[str, float] | None = None,
    level: float | None = 0.01,
    colours: Mapping[str, str] | None = None,
    width_mm: float = SINGLE_MM,
    tissue: str = "PB",
) -> Figure:
    """B cells as a share of blood cells over time: aplasia and recovery (marked per patient)."""
    fig, ax = plt.subplots(figsize=_size(width_mm, 62), layout="constrained")
    t = b_cells[b_cells["tissue"] == tissue] if "tissue" in b_cells else b_cells
    if t.empty or "b_fraction" not in t:
        _empty(ax, "no B-cell counts")
        return fig
    colours = _colours_for(t["patient"], colours)
    colours = {p: colours[p] for p in sorted_patients(t["patient"])}
    markers = patient_markers(colours)
    _patient_lines(ax, t, "b_fraction", colours, markers, scale=100)
    recovery = recovery or {}
    _recovery_lines(ax, {p: d for p, d in recovery.items() if p in colours}, colours)
    for patient, day in recovery.items():
        row = t[(t["patient"].astype(str) == patient) & (t["day"] == day)]
        if pd.notna(day) and len(row) and patient in colours:
            ax.plot(
                day,
                float(row["b_fraction"].iloc[0]) * 100,
                marker="*",
                ms=8,
                color=colours[patient],
                mec="black",
                mew=0.5,
                zorder=5,
                clip_on=False,
            )
    ax.set_yscale("symlog", linthresh=1.0, linscale=0.6)
    ymax = max(100 * pd.to_numeric(t["b_fraction"], errors="coerce").max(), 1.0)
    ax.set_ylim(0, ymax * 1.3)
    ticks = [t_ for t_ in (0, 0.5, 1, 2, 5, 10, 20, 50, 100) if t_ <= ymax * 1.3]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t_:g}" for t_ in ticks])
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    extra = [
        Line2D(
            [],
            [],
            ls="",
            marker="*",
            ms=7,
            color="0.5",
            mec="black",
            mew=0.5,
            label="B-cell recovery",
        ),
    ]
    if level is not None:
        ax.axhline(level * 100, color="0.4", lw=0.7, ls="--", zorder=0)
        extra.append(Line2D([], [], color="0.4", lw=0.7, ls="--", label="recovery level"))
    day_axis(ax, t["day"])
    ax.set_ylabel(f"B cells (% of {TISSUE_NAMES.get(tissue, tissue)} cells)")
    _patient_legend(
        ax,
        colours,
        markers,
        extra=extra,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=min(len(colours) + len(extra), 5),
    )
    return fig


# --------------------------------------------------------------------------------------
# 4. clone tracking
# --------------------------------------------------------------------------------------
def tracked_clones(clones: pd.DataFrame, *, top: int = 10) -> pd.DataFrame:
    """Per patient the `top` largest clones (by cells) plus every double-positive clone."""
    if clones.empty:
        return clones.assign(double_positive=pd.Series(dtype=bool))
    c = clones.copy()
    c["double_positive"] = _as_bool(c["double_positive"]) if "double_positive" in c else False
    c = c.sort_values(["patient", "n_cells", "clone_id"], ascending=[True, False, True])
    c["_rank"] = c.groupby("patient").cumcount()
    keep = c[(c["_rank"] < top) | c["double_positive"]]
    return keep.drop(columns="_rank")


def clone_tracking(
    clones: pd.DataFrame,
    timeline: pd.DataFrame,
    *,
    samples: pd.DataFrame | None = None,
    top: int = 10,
    width_mm: float = DOUBLE_MM,
    ncols: int = 3,
) -> Figure:
    """Alluvial plot of the largest clones of each patient across its samples.

    Each bar is one sample: the share of its BCR+ B cells in each tracked clone, coloured by
    the clone's status, double-positive (CD19+BCMA+) clones hatched, all other clones light
    grey. Bands join a clone between consecutive samples of the same tissue.

    Parameters
    ----------
    samples
        ``b_cells.tsv`` (sample, patient, day, tissue, timepoint, n_bcr_cells): draws samples
        without BCR+ cells too, as empty slots.
    """
    chosen = tracked_clones(clones, top=top)
    pats = sorted_patients(
        [*timeline.get("patient", []), *(samples["patient"] if samples is not None else [])]
    )
    fig, axes, ncols = _patient_grid(
        len(pats), ncols=ncols, width_mm=width_mm, top_mm=16, row_mm=44
    )
    if not pats:
        _empty(axes[0], "no clones")
        return fig
    status = chosen.set_index("clone_id")["status"] if len(chosen) else pd.Series(dtype=object)
    dp = chosen.set_index("clone_id")["double_positive"] if len(chosen) else pd.Series(dtype=bool)
    meta_cols = ["sample", "patient", "day", "tissue", "timepoint"]
    slots = timeline[[c for c in meta_cols if c in timeline]]
    if samples is not None and len(samples):
        slots = pd.concat([samples[[c for c in meta_cols if c in samples]], slots])
    panels = _panel_labels(slots, pats)
    rotate = _rotate_for(panels, width_mm, ncols)
    for ax, patient in zip(axes, pats, strict=False):
        tl = timeline[timeline["patient"].astype(str) == patient]
        smp = panels[patient]
        ax.set_title(patient, loc="left")
        _set_xlabels(ax, _sample_labels(smp), rotate)
        ax.set_xlim(-0.6, len(smp) - 0.4)
        ax.set_ylim(0, 100)
        order = chosen[chosen["patient"].astype(str) == patient]
        order = order.sort_values(["double_positive", "n_cells"], ascending=[False, False])
        ids = order["clone_id"].tolist()
        frac = tl.pivot_table(
            index="clone_id", columns="sample", values="clone_fraction", aggfunc="sum"
        )
        has_cells = set(tl["sample"])
        w = 0.6
        spans: dict[tuple[str, int], tuple[float, float]] = {}
        for i, sample in enumerate(smp["sample"]):
            if sample not in has_cells:
                ax.text(
                    i,
                    2,
                    "no BCR+ cells",
                    ha="center",
                    va="bottom",
                    color="0.45",
                    rotation=90,
                    fontsize=matplotlib.rcParams["xtick.labelsize"],
                )
                continue
            bottom = 0.0
            for cid in ids:
                v = frac.at[cid, sample] * 100 if cid in frac.index else np.nan
                if not np.isfinite(v) or v <= 0:
                    continue
                ax.bar(
                    i,
                    v,
                    bottom=bottom,
                    width=w,
                    color=STATUS_COLOURS.get(status[cid], "#888888"),
                    hatch=DP_HATCH if dp[cid] else None,
                    edgecolor="white",
                    lw=0.3,
                )
                spans[(cid, i)] = (bottom, bottom + v)
                bottom += v
            ax.bar(i, 100 - bottom, bottom=bottom, width=w, color=REST_COLOUR, lw=0)
        # bands between consecutive samples of the same tissue
        tissues = smp["tissue"].astype(str).tolist() if "tissue" in smp else ["PB"] * len(smp)
        for i in range(len(smp) - 1):
            if tissues[i] != tissues[i + 1]:
                continue
            for cid in ids:
                a, b = spans.get((cid, i)), spans.get((cid, i + 1))
                if a and b:
                    poly = Polygon(
                        [
                            (i + w / 2, a[0]),
                            (i + 1 - w / 2, b[0]),
                            (i + 1 - w / 2, b[1]),
                            (i + w / 2, a[1]),
                        ],
                        closed=True,
                        color=STATUS_COLOURS.get(status[cid], "#888888"),
                        alpha=0.35,
                        lw=0,
                    )
                    ax.add_patch(poly)
    for ax in axes[::ncols]:
        ax.set_ylabel("Share of BCR+ B cells (%)")
    for ax in axes[len(pats) :]:
        ax.set_visible(False)
    handles = [Patch(color=STATUS_COLOURS[s], label=s.replace("_", " ")) for s in STATUSES]
    handles += [
        Patch(
            facecolor="white",
            edgecolor="black",
            hatch=DP_HATCH,
            lw=0.5,
            label="double-positive (CD19+BCMA+)",
        ),
        Patch(color=REST_COLOUR, label="other clones"),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=6,
        title=f"Clone status ({top} largest clones per patient and all double-positive ones)",
    )
    return fig


def clone_status(
    clones: pd.DataFrame, *, colours: Mapping[str, str] | None = None, width_mm: float = SINGLE_MM
) -> Figure:
    """Clones per patient by status: all clones, and double-positive clones alone."""
    pats = sorted_patients(clones.get("patient", []))
    fig, axes = plt.subplots(
        1,
        2,
        figsize=_size(width_mm, 30 + 6 * max(len(pats), 2)),
        sharey=True,
        layout="constrained",
    )
    if clones.empty:
        for ax, title in zip(axes, ["All clones", "Double-positive clones"], strict=False):
            _empty(ax, "no clones")
            ax.set_title(title, loc="left")
        return fig
    c = clones.copy()
    c["double_positive"] = _as_bool(c["double_positive"]) if "double_positive" in c else False
    y = np.arange(len(pats))[::-1]
    for ax, subset, title in [
        (axes[0], c, "All clones"),
        (axes[1], c[c["double_positive"]], "Double-positive clones"),
    ]:
        ax.set_title(title, loc="left")
        counts = (
            subset.groupby(["patient", "status"]).size().unstack(fill_value=0).reindex(pats)
        ).fillna(0)
        left = np.zeros(len(pats))
        for s in STATUSES:
            v = counts[s].to_numpy() if s in counts else np.zeros(len(pats))
            ax.barh(y, v, left=left, color=STATUS_COLOURS[s], height=0.7, lw=0)
            left += v
        ax.set_xlabel("Clones (n)")
        if subset.empty:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_xlim(0, 1)
            ax.set_xticks([])
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4, integer=True))
            for yi, total in zip(y, left, strict=False):
                ax.text(
                    total,
                    yi,
                    f" {int(total)}",
                    va="center",
                    ha="left",
                    fontsize=matplotlib.rcParams["xtick.labelsize"],
                )
            ax.set_xlim(0, left.max() * 1.2)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(pats)
    axes[0].set_ylabel("Patient")
    handles = [Patch(color=STATUS_COLOURS[s], label=s.replace("_", " ")) for s in STATUSES]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, handlelength=1.0)
    return fig


def dist_to_nearest(
    distances: pd.DataFrame,
    thresholds: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    width_mm: float = DOUBLE_MM,
    ncols: int = 4,
    binwidth: float = 0.02,
) -> Figure:
    """Per patient: histogram of heavy-chain distance-to-nearest, the clone cut-off as a line.

    `distances` is ``results/bcr/dist_to_nearest.tsv`` (``patient``, ``dist_nearest``),
    `thresholds` ``clone_thresholds.tsv`` (``patient``, ``method``, ``threshold``): the
    figure SHazaM's ``plotDensityThreshold`` draws, one panel per patient.
    """
    pats = sorted_patients(
        list(thresholds.get("patient", pd.Series(dtype=str)).astype(str))
        + list(distances.get("patient", pd.Series(dtype=str)).astype(str))
    )
    colours = _colours_for(pats, colours)
    fig, axes, _ = _patient_grid(len(pats), ncols=ncols, width_mm=width_mm, top_mm=12, row_mm=28)
    bins = np.arange(0, 1 + binwidth, binwidth)
    cut = (
        thresholds.assign(patient=thresholds["patient"].astype(str)).set_index("patient")
        if {"patient", "threshold", "method"} <= set(thresholds.columns)
        else pd.DataFrame(columns=["threshold", "method"])
    )
    if "dist_nearest" not in distances.columns:
        distances = pd.DataFrame(columns=["patient", "dist_nearest"])
    for ax in axes[len(pats) :]:
        ax.set_visible(False)
    if not pats:
        _empty(axes[0], "no heavy chains")
        return fig
    for ax, patient in zip(axes, pats, strict=False):
        d = pd.to_numeric(
            distances.loc[distances["patient"].astype(str) == patient, "dist_nearest"],
            errors="coerce",
        ).dropna()
        ax.set_title(patient, loc="left")
        if d.empty:
            _empty(ax, "no distances")
        else:
            ax.hist(d, bins=bins, color=colours[patient], lw=0)
        if patient in cut.index:
            t, method = float(cut.loc[patient, "threshold"]), str(cut.loc[patient, "method"])
            ax.axvline(t, color="0.2", lw=0.8, ls="--")
            ax.text(
                t,
                0.97,
                f" {t:.3f} ({method})",
                transform=ax.get_xaxis_transform(),
                ha="left",
                va="top",
                fontsize=matplotlib.rcParams["xtick.labelsize"],
            )
        ax.set_xlim(0, min(1.0, max(0.6, float(d.max()) + binwidth) if len(d) else 0.6))
        ax.set_xlabel("Distance to nearest")
    axes[0].set_ylabel("Heavy chains (n)")
    return fig


# --------------------------------------------------------------------------------------
# 5. B-cell reconstitution
# --------------------------------------------------------------------------------------
RECONSTITUTION = [
    ("naive_fraction", "Naive + transitional\n(% of B cells)", 100),
    ("igm_igd_fraction", "IgM/IgD\n(% of heavy chains)", 100),
    ("shannon_evenness", "Clonal evenness\n(Shannon, 0-1)", 1),
]


def reconstitution(
    b_cells: pd.DataFrame,
    *,
    recovery: Mapping[str, float] | None = None,
    colours: Mapping[str, str] | None = None,
    width_mm: float = SINGLE_MM,
    tissue: str = "PB",
) -> Figure:
    """Naive share, IgM/IgD share and clonal evenness of blood B cells over time per patient.

    Samples without B cells (aplasia) leave gaps; dotted lines mark each patient's recovery day.
    """
    fig, axes = plt.subplots(
        len(RECONSTITUTION), 1, figsize=_size(width_mm, 118), sharex=True, layout="constrained"
    )
    t = b_cells[b_cells["tissue"] == tissue] if "tissue" in b_cells else b_cells
    if t.empty:
        for ax, (_, ylabel, _s) in zip(axes, RECONSTITUTION, strict=False):
            _empty(ax, "no B-cell data")
            ax.set_ylabel(ylabel)
        return fig
    colours = _colours_for(t["patient"], colours)
    colours = {p: colours[p] for p in sorted_patients(t["patient"])}
    markers = patient_markers(colours)
    for ax, (col, ylabel, scale) in zip(axes, RECONSTITUTION, strict=False):
        ax.set_ylabel(ylabel)
        if col not in t or pd.to_numeric(t[col], errors="coerce").notna().sum() == 0:
            ax.text(
                0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, color="0.4"
            )
        else:
            _patient_lines(ax, t, col, colours, markers, scale=scale)
            missing = t[pd.to_numeric(t[col], errors="coerce").isna()]
            ax.scatter(
                missing["day"],
                np.full(len(missing), -0.05 * scale),
                marker="x",
                s=10,
                lw=0.7,
                c=[colours[str(p)] for p in missing["patient"]],
                clip_on=False,
                zorder=4,
            )
        _recovery_lines(ax, {p: d for p, d in (recovery or {}).items() if p in colours}, colours)
        ax.set_ylim(-0.1 * scale, 1.05 * scale)
    _day_axes(axes, t["day"])
    extra = [
        Line2D([], [], color="0.4", lw=0.8, ls=(0, (1.5, 1.5)), label="B-cell recovery"),
        Line2D([], [], color="0.4", ls="", marker="x", mew=0.7, ms=3, label="no B cells / BCRs"),
    ]
    _patient_legend(
        fig,
        colours,
        markers,
        extra=extra,
        loc="outside upper center",
        ncols=min(len(colours) + 2, 5),
    )
    return fig


HILL_ORDERS = [
    ("hill_q0", "Clones\n(Hill q = 0)"),
    ("hill_q1", "exp(Shannon)\n(Hill q = 1)"),
    ("hill_q2", "Inverse Simpson\n(Hill q = 2)"),
]


def diversity(
    table: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    width_mm: float = DOUBLE_MM,
    tissue: str = "PB",
) -> Figure:
    """Clonal diversity over time: Hill numbers q = 0, 1, 2, observed (left) and rarefied to
    each patient's common depth (right; ``diversity.tsv``). Only the rarefied values compare
    samples of different depth; the depth per patient is given in the legend."""
    fig, axes = plt.subplots(
        len(HILL_ORDERS),
        2,
        figsize=_size(width_mm, 118),
        sharex=True,
        sharey="row",
        squeeze=False,
        layout="constrained",
    )
    t = table[table["tissue"] == tissue] if "tissue" in table else table
    if t.empty or "hill_q0" not in t:
        for ax in axes.ravel():
            _empty(ax, "no BCR data")
        return fig
    colours = _colours_for(t["patient"], colours)
    colours = {p: colours[p] for p in sorted_patients(t["patient"])}
    markers = patient_markers(colours)
    for row, (col, ylabel) in zip(axes, HILL_ORDERS, strict=True):
        for ax, column in zip(row, (col, f"{col}_rarefied"), strict=True):
            values = pd.to_numeric(t[column], errors="coerce") if column in t else pd.Series()
            if values.notna().sum() == 0:
                ax.text(0.5, 0.5, "no values", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")  # fmt: skip
            else:
                _patient_lines(ax, t, column, colours, markers)
                ax.set_ylim(bottom=0)
        row[0].set_ylabel(ylabel)
    axes[0, 0].set_title("Observed", loc="left")
    axes[0, 1].set_title("Rarefied", loc="left")
    for col in range(2):
        _day_axes(axes[:, col], t["day"])
    depth = t.dropna(subset=["depth"]).drop_duplicates("patient").set_index("patient")["depth"]
    entries = {p: f"{p} ({int(depth[p])} cells)" if p in depth else p for p in colours}
    handles = [
        Line2D([], [], color=c, marker=markers.get(p, "o"), lw=1, label=entries[p], ms=3.5)
        for p, c in colours.items()
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 4))
    return fig


def isotype_table(obs: pd.DataFrame) -> pd.DataFrame:
    """Cells per sample and isotype (subclasses pooled: IgG1-4 as IgG), from cell metadata.

    Counts every cell with a heavy-chain isotype (``isotype`` column).
    """
    cols = ["sample", "patient", "day", "tissue", "timepoint", "isotype", "n_cells", "fraction"]
    if obs.empty or "isotype" not in obs:
        return pd.DataFrame(columns=cols)
    iso = obs["isotype"].astype(object).where(obs["isotype"].notna(), "").astype(str)
    iso = iso.str.extract(r"^(Ig[MDGAE])", expand=False)
    o = obs.assign(isotype=iso).dropna(subset=["isotype"])
    if o.empty:
        return pd.DataFrame(columns=cols)
    keys = [c for c in ["sample", "patient", "day", "tissue", "timepoint"] if c in o]
    for k in keys:
        o[k] = o[k].astype(object)
    n = o.groupby([*keys, "isotype"], observed=True).size().rename("n_cells").reset_index()
    n["fraction"] = n["n_cells"] / n.groupby("sample")["n_cells"].transform("sum")
    return n


def isotypes(table: pd.DataFrame, *, width_mm: float = DOUBLE_MM, ncols: int = 3) -> Figure:
    """Isotype composition of each sample's B-lineage cells, one panel per patient."""
    pats = sorted_patients(table.get("patient", []))
    fig, axes, ncols = _patient_grid(
        len(pats), ncols=ncols, width_mm=width_mm, top_mm=12, row_mm=40
    )
    if not pats:
        _empty(axes[0], "no isotypes")
        return fig
    panels = _panel_labels(table, pats)
    rotate = _rotate_for(panels, width_mm, ncols)
    for ax, patient in zip(axes, pats, strict=False):
        t = table[table["patient"].astype(str) == patient]
        smp = panels[patient]
        wide = t.pivot_table(index="sample", columns="isotype", values="fraction", aggfunc="sum")
        wide = wide.reindex(smp["sample"]).fillna(0)
        ncell = t.groupby("sample")["n_cells"].sum().reindex(smp["sample"]).fillna(0)
        x = np.arange(len(smp))
        bottom = np.zeros(len(smp))
        for iso in ISOTYPES:
            v = wide[iso].to_numpy() * 100 if iso in wide else np.zeros(len(smp))
            ax.bar(x, v, bottom=bottom, color=ISOTYPE_COLOURS[iso], width=0.75, lw=0)
            bottom += v
        for xi, n in zip(x, ncell, strict=False):
            ax.text(
                xi,
                101,
                f"{int(n)}",
                ha="center",
                va="bottom",
                fontsize=matplotlib.rcParams["xtick.labelsize"] - 0.5,
            )
        _set_xlabels(ax, _sample_labels(smp), rotate)
        ax.set_xlim(-0.6, len(x) - 0.4)
        ax.set_ylim(0, 100)
        ax.set_title(patient, loc="left", pad=9)
    for ax in axes[::ncols]:
        ax.set_ylabel("Heavy-chain isotype\n(% of BCR+ cells)")
    for ax in axes[len(pats) :]:
        ax.set_visible(False)
    handles = [Patch(color=ISOTYPE_COLOURS[i], label=i) for i in ISOTYPES]
    fig.legend(
        handles=handles,
        loc="outside right center",
        handlelength=1.0,
        title="Isotype\n(above bars:\nBCR+ cells, n)",
    )
    return fig


# --------------------------------------------------------------------------------------
# 6. signatures
# --------------------------------------------------------------------------------------
def signatures_time(
    signatures: pd.DataFrame,
    *,
    names: Sequence[str] = ("IFN", "BAFF"),
    cell_types: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    width_mm: float = SINGLE_MM,
    tissue: str = "PB",
) -> Figure:
    """Mean signature score per sample over time, one line per patient, one panel per signature.

    ``cell_types``: the cell type (or group) drawn per signature, key ``default`` for the
    others (default: `all` cells for every signature).
    """
    names = list(names) or ["IFN"]
    cell_types = dict(cell_types or {})
    fig, axes = plt.subplots(
        len(names),
        1,
        figsize=_size(width_mm, 16 + 40 * len(names)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    axes = axes.ravel()
    t = signatures
    if not t.empty and "tissue" in t:
        t = t[t["tissue"] == tissue]
    colours = _colours_for(t.get("patient", []), colours)
    colours = {p: colours[p] for p in sorted_patients(t.get("patient", []))}
    markers = patient_markers(colours)
    for ax, name in zip(axes, names, strict=False):
        cell_type = cell_types.get(name, cell_types.get("default", ALL))
        s = t
        if not t.empty:
            s = t[(t["signature"] == name) & (t["cell_type"].astype(str) == cell_type)]
        where = label(cell_type)
        where = where[:1].lower() + where[1:]  # "naive B", "monocyte", "all cells"
        ax.set_ylabel(f"{label(name)} score\n(mean, {where})")
        if s.empty:
            _empty(ax, f"no {label(name)} scores in {where}")
            continue
        _patient_lines(ax, s, "mean_score", colours, markers)
        ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    _day_axes(axes, t["day"] if not t.empty else [])
    if colours:
        _patient_legend(
            fig, colours, markers, loc="outside upper center", ncols=min(len(colours), 6)
        )
    return fig


def _stars(fdr: float) -> str:
    if not np.isfinite(fdr):
        return ""
    return "***" if fdr < 0.001 else "**" if fdr < 0.01 else "*" if fdr < 0.05 else ""


def _row_order(values: Iterable[str]) -> list[str]:
    vals = set(map(str, values))
    first = [g for g in GROUP_LABELS if g in vals]
    types = [c for c in CELL_TYPES if c in vals]
    return first + types + sorted(vals - set(first) - set(types))


def _signature_order(values: Iterable[str], first: Sequence[str] = ("IFN", "BAFF")) -> list[str]:
    vals = set(map(str, values))
    head = [s for s in first if s in vals]
    tail = ["RANDOM_CONTROL"] if "RANDOM_CONTROL" in vals else []
    return head + sorted(vals - set(head) - set(tail)) + tail


def signature_changes(
    changes: pd.DataFrame, *, first: Sequence[str] = ("IFN", "BAFF"), width_mm: float = DOUBLE_MM
) -> Figure:
    """Heatmap of the change from baseline (post - baseline mean score) per cell type and time.

    One panel per signature; stars give the FDR of the paired test (* < 0.05, ** < 0.01,
    *** < 0.001); grey cells had no paired patients.
    """
    sigs = _signature_order(changes.get("signature", []), first)
    n = max(len(sigs), 1)
    rows = _row_order(changes.get("cell_type", []))
    tps = timepoint_order(changes) if not changes.empty else []
    ncols = min(n, 5)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=_size(width_mm, 18 + nrows * (10 + 4.2 * max(len(rows), 3))),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    axes = axes.ravel()
    if changes.empty:
        _empty(axes[0], "no signature changes")
        return fig
    delta = pd.to_numeric(changes["delta"], errors="coerce")
    vmax = float(np.nanmax(np.abs(delta))) if delta.notna().any() else 1.0
    vmax = vmax or 1.0
    norm = TwoSlopeNorm(vcenter=0, vmin=-vmax, vmax=vmax)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    image = None
    for ax, sig in zip(axes, sigs, strict=False):
        c = changes[changes["signature"] == sig]
        grid = c.pivot_table(index="cell_type", columns="timepoint", values="delta")
        grid = grid.reindex(index=rows, columns=tps)
        fdr = c.pivot_table(index="cell_type", columns="timepoint", values="fdr")
        fdr = fdr.reindex(index=rows, columns=tps)
        values = grid.to_numpy(dtype=float)
        image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            if not np.isfinite(value):
                ax.add_patch(
                    matplotlib.patches.Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor="white",
                        edgecolor="0.7",
                        hatch="xxxx",
                        lw=0,
                    )
                )
                continue
            star = _stars(fdr.iat[i, j])
            if star:
                dark = abs(norm(value) - 0.5) > 0.3
                ax.text(j, i, star, ha="center", va="center", color="white" if dark else "black")
        ax.set_xticks(np.arange(len(tps)))
        ax.set_xticklabels(tps, rotation=90 if len(tps) > 6 else 0)
        ax.set_yticks(np.arange(len(rows)))
        ax.set_yticklabels([label(r) for r in rows])
        ax.set_title("\n".join(textwrap.wrap(label(sig), 22)), loc="left")
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
    for ax in axes[len(sigs) :]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("Time point")
    if image is not None:
        bar = fig.colorbar(image, ax=axes[: len(sigs)].tolist(), shrink=0.8, aspect=25, pad=0.01)
        bar.set_label("Change from baseline\n(mean score, post - baseline)")
        bar.outline.set_linewidth(0.4)
        fig.legend(
            handles=[
                Patch(
                    facecolor="white",
                    edgecolor="0.7",
                    hatch="xxxx",
                    lw=0.4,
                    label="no paired patients",
                ),
                Line2D(
                    [],
                    [],
                    ls="",
                    marker="$*$",
                    color="black",
                    label="FDR < 0.05 (** < 0.01, *** < 0.001)",
                ),
            ],
            loc="outside lower center",
            ncols=2,
        )
    return fig


# --------------------------------------------------------------------------------------
# 7. GSEA
# --------------------------------------------------------------------------------------
def comparison_label(comparison: str) -> str:
    c = str(comparison)
    if c == "baseline_vs_post":
        return "all post"
    return c.removeprefix("baseline_vs_")


def gsea_dotplot(
    gsea: pd.DataFrame, *, top: int = 10, width_mm: float = DOUBLE_MM, fdr_floor: float = 1e-3
) -> Figure:
    """Top GSEA terms per cell type: colour = NES (> 0: higher at baseline), size = -log10 FDR.

    Terms are the `top` with the lowest FDR (then highest |NES|) of each cell type, over all
    comparisons; columns are the comparisons against baseline (all post time points pooled,
    then each time point).
    """
    cts = _row_order(gsea.get("cell_type", []))
    n = max(len(cts), 1)
    g = gsea.copy()
    terms: list[str] = []
    if not g.empty:
        g["nes"] = pd.to_numeric(g["nes"], errors="coerce")
        g["fdr"] = pd.to_numeric(g["fdr"], errors="coerce")
        g = g.dropna(subset=["nes"])
        for ct in cts:
            sub = g[g["cell_type"] == ct].assign(abs_nes=lambda d: d["nes"].abs())
            best = sub.sort_values(["fdr", "abs_nes"], ascending=[True, False])
            for term in best["term"].drop_duplicates().head(top):
                if term not in terms:
                    terms.append(term)
    comps = sorted(
        set(g.get("comparison", [])),
        key=lambda c: (c != "baseline_vs_post", timepoint_days(comparison_label(c)), c),
    )
    height = 26 + 4.0 * max(len(terms), 3)
    fig, axes = plt.subplots(
        1, n, figsize=_size(width_mm, height), sharey=True, squeeze=False, layout="constrained"
    )
    axes = axes.ravel()
    if g.empty or not terms:
        _empty(axes[0], "no GSEA results")
        return fig
    vmax = float(np.nanmax(np.abs(g["nes"]))) or 1.0
    norm = TwoSlopeNorm(vcenter=0, vmin=-vmax, vmax=vmax)
    cmap = matplotlib.colormaps["RdBu_r"]
    ypos = {t: i for i, t in enumerate(terms[::-1])}

    def area(fdr):
        return 4 + 14 * np.clip(-np.log10(np.clip(fdr, fdr_floor, 1)), 0, None)

    rotate = _crowded([comparison_label(c) for c in comps], _panel_mm(width_mm, n) / len(comps))
    sc = None
    for ax, ct in zip(axes, cts, strict=False):
        sub = g[(g["cell_type"] == ct) & g["term"].isin(terms)]
        x = sub["comparison"].map({c: i for i, c in enumerate(comps)})
        y = sub["term"].map(ypos)
        sc = ax.scatter(
            x,
            y,
            s=area(sub["fdr"].fillna(1)),
            c=sub["nes"],
            cmap=cmap,
            norm=norm,
            edgecolors="black",
            linewidths=0.3,
        )
        _set_xlabels(ax, [comparison_label(c) for c in comps], rotate)
        ax.set_xlim(-0.6, len(comps) - 0.4)
        ax.set_ylim(-0.6, len(terms) - 0.4)
        ax.set_title(label(ct, title=True), loc="left")
        ax.grid(color="0.92", lw=0.5)
        ax.set_axisbelow(True)
        ax.set_xlabel("vs baseline")
    axes[0].set_yticks(np.arange(len(terms)))
    axes[0].set_yticklabels(["\n".join(textwrap.wrap(label(t), 28)) for t in terms[::-1]])
    bar = fig.colorbar(sc, ax=axes.tolist(), shrink=0.6, aspect=20, pad=0.01)
    bar.set_label("NES\n(> 0: higher at baseline)")
    bar.outline.set_linewidth(0.4)
    sizes = [0.25, 0.05, 0.01, fdr_floor]
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color="0.5",
            mec="black",
            mew=0.3,
            markersize=np.sqrt(area(f)),
            label=f"{f:g}" if f > fdr_floor else f"≤ {f:g}",
        )
        for f in sizes
    ]
    fig.legend(handles=handles, title="FDR", loc="outside right lower", labelspacing=0.8)
    return fig


# --------------------------------------------------------------------------------------
# 8. CAR-T kinetics
# --------------------------------------------------------------------------------------
def car_t_table(obs: pd.DataFrame) -> pd.DataFrame:
    """Per sample: T cells (T_CD4 + T_CD8), CAR-T cells among them and their share."""
    cols = [
        "sample",
        "patient",
        "day",
        "tissue",
        "timepoint",
        "n_t_cells",
        "n_car_t",
        "car_t_fraction",
    ]
    if obs.empty:
        return pd.DataFrame(columns=cols)
    o = obs.copy()
    o["_t"] = o["cell_type"].astype(str).isin(T_CELLS)
    o["_car"] = (_as_bool(o["car_t"]) if "car_t" in o else False) & o["_t"]
    keys = [c for c in ["sample", "patient", "day", "tissue", "timepoint"] if c in o]
    for k in keys:
        o[k] = o[k].astype(object)
    out = o.groupby(keys, sort=True).agg(n_t_cells=("_t", "sum"), n_car_t=("_car", "sum"))
    out = out.reset_index()
    out["car_t_fraction"] = out["n_car_t"] / out["n_t_cells"].where(out["n_t_cells"] > 0)
    return out[[c for c in cols if c in out]]


def car_t(
    table: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    width_mm: float = SINGLE_MM,
    tissue: str = "PB",
) -> Figure:
    """CAR-T cells as a share of blood T cells over time, one line per patient."""
    fig, ax = plt.subplots(figsize=_size(width_mm, 62), layout="constrained")
    t = table[table["tissue"] == tissue] if "tissue" in table and len(table) else table
    if t.empty:
        _empty(ax, "no T cells")
        return fig
    colours = _colours_for(t["patient"], colours)
    colours = {p: colours[p] for p in sorted_patients(t["patient"])}
    markers = patient_markers(colours)
    _patient_lines(ax, t, "car_t_fraction", colours, markers, scale=100)
    top = pd.to_numeric(t["car_t_fraction"], errors="coerce").max()
    ax.set_ylim(0, max(100 * top * 1.1, 1.0) if pd.notna(top) else 1.0)
    day_axis(ax, t["day"])
    where = "" if tissue == "PB" else f" {TISSUE_NAMES.get(tissue, tissue)}"
    ax.set_ylabel(f"CAR-T cells (% of{where} T cells)")
    _patient_legend(
        ax,
        colours,
        markers,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=min(len(colours), 6),
    )
    return fig


CAR_T_STATUS_STYLES = {
    "persistent": "-",
    "contracted": (0, (4, 1.5)),
    "lost": (0, (1, 1.2)),
    "not_assessable": (0, (3, 1, 1, 1)),
}


def top_product_clonotypes(clones: pd.DataFrame, *, top: int = 5) -> pd.DataFrame:
    """Per patient the `top` CAR-T clonotypes with most product cells (most CAR-T cells
    where the patient has no product sample)."""
    if clones.empty:
        return clones
    c = clones.copy()
    c["_product"] = pd.to_numeric(c.get("n_cells_product", 0), errors="coerce").fillna(0)
    c = c.sort_values(["patient", "_product", "n_car_t"], ascending=[True, False, False])
    return c.groupby("patient", sort=False).head(top).drop(columns="_product")


def car_t_kinetics(
    car_t_samples: pd.DataFrame,
    clones: pd.DataFrame,
    timeline: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    top: int = 5,
    tissue: str = "PB",
    width_mm: float = DOUBLE_MM,
    ncols: int = 4,
    min_cells: int = 10,
) -> Figure:
    """CAR-T kinetics per patient: CAR-T share of T cells (top) and the largest product
    clonotypes as a share of the CAR-T cells (bottom), in `tissue` and the product (day 0).

    Parameters
    ----------
    car_t_samples, clones, timeline
        ``car_t.tsv``, ``car_t_clones.tsv`` and ``car_t_clone_timeline.tsv``.
    top
        Clonotypes per patient (:func:`top_product_clonotypes`).
    min_cells
        Samples with fewer CAR-T cells with a TCR get hollow markers (shares of a handful of
        cells jump by whole tens of percent).
    """
    keep = [tissue, "product"]
    s = car_t_samples[car_t_samples["tissue"].isin(keep)] if len(car_t_samples) else car_t_samples
    patients = sorted_patients(s["patient"]) if len(s) else []
    if not patients:
        fig, ax = plt.subplots(figsize=_size(width_mm, 40), layout="constrained")
        _empty(ax, "no CAR-T cells")
        return fig
    n = len(patients)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        2 * nrows,
        ncols,
        figsize=_size(width_mm, 8 + 70 * nrows),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": [1, 1.3] * nrows},
    )
    colours = _colours_for(patients, colours)
    chosen = top_product_clonotypes(clones, top=top)
    t = timeline[timeline["tissue"].isin(keep)] if len(timeline) else timeline
    line_colours = PALETTES["okabe_ito"]
    for k, patient in enumerate(patients):
        row, col = 2 * (k // ncols), k % ncols
        upper, lower = axes[row, col], axes[row + 1, col]
        ps = s[s["patient"].astype(str) == patient].sort_values("day")
        blood = ps[ps["tissue"] == tissue]
        y = 100 * pd.to_numeric(blood["car_t_fraction"], errors="coerce")
        upper.plot(blood["day"], y, color=colours[patient], marker="o", ms=3, lw=1, clip_on=False)
        product = ps[ps["tissue"] == "product"]
        # an empty unclipped line has an infinite extent and breaks constrained layout
        if len(product):
            upper.plot(
                product["day"],
                100 * pd.to_numeric(product["car_t_fraction"], errors="coerce"),
                ls="",
                marker="D",
                ms=3.5,
                mfc="white",
                color=colours[patient],
                clip_on=False,
            )
        upper.set_title(patient, color=colours[patient], fontweight="bold")
        upper.set_ylim(bottom=0)
        mine = chosen[chosen["patient"].astype(str) == patient] if len(chosen) else chosen
        handles = []
        for j, (_, c) in enumerate(mine.iterrows()):
            tl = t[t["clonotype_id"] == c["clonotype_id"]].sort_values("day")
            tl = tl.groupby("day", as_index=False)["car_t_share"].max()
            # days the clonotype was not seen in a sampled CAR-T sample count as zero
            days = ps.loc[ps["n_car_t_tcr"].fillna(0) > 0, "day"].drop_duplicates()
            tl = tl.set_index("day").reindex(sorted(days), fill_value=0).reset_index()
            colour = line_colours[j % len(line_colours)]
            style = CAR_T_STATUS_STYLES.get(str(c["status"]), "-")
            lower.plot(tl["day"], 100 * tl["car_t_share"], color=colour, ls=style, lw=1)
            depth = tl["day"].map(ps.groupby("day")["n_car_t_tcr"].sum()).fillna(0)
            for shallow in (False, True):
                m = (depth < min_cells) == shallow
                if not m.any():
                    continue
                lower.plot(
                    tl.loc[m, "day"], 100 * tl.loc[m, "car_t_share"], ls="", marker="o", ms=2.5,
                    color=colour, mfc="white" if shallow else colour, clip_on=False,
                )  # fmt: skip
            short = str(c["clonotype_id"]).removeprefix(f"{patient}_")
            handles.append(
                Line2D([], [], color=colour, ls=style, lw=1, label=f"{short} ({c['status']})")
            )
        if handles:
            lower.legend(handles=handles, loc="upper right", fontsize="small", handlelength=2.2)
        else:
            _empty(lower, "no TCR clonotypes")
        lower.set_ylim(bottom=0)
        for ax in (upper, lower):
            if ax.has_data():
                day_axis(ax, ps["day"])
        upper.set_xlabel("")
        if col == 0:
            upper.set_ylabel("CAR-T (% of T cells)")
            lower.set_ylabel("Clonotype (% of CAR-T)")
    for k in range(len(patients), nrows * ncols):
        row, col = 2 * (k // ncols), k % ncols
        axes[row, col].set_visible(False)
        axes[row + 1, col].set_visible(False)
    where = TISSUE_NAMES.get(tissue, tissue)
    fig.suptitle(f"CAR-T kinetics in {where} (diamond: product)", fontsize="medium")
    return fig
