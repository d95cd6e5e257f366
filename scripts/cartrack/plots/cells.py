"""Cell-type figures: the cohort's UMAP (cells of ``cohort.h5mu``) and the cell-type
composition of each sample (``cell_types.tsv``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cartrack.design import CELL_TYPES
from cartrack.plots.layout import (
    empty_panel,
    panel_samples,
    patient_grid,
    rotate_for,
    sample_labels,
    set_xlabels,
    timepoint_order,
)
from cartrack.plots.style import (
    CAR_T_COLOUR,
    CELL_TYPE_COLOURS,
    DOUBLE_MM,
    colours_for,
    figure_size,
    label,
    sorted_patients,
)
from cartrack.tables import as_bool


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
    fig, axes = plt.subplots(
        2, 2, figsize=figure_size(width_mm, width_mm * 0.78), layout="constrained"
    )
    axes = axes.ravel()
    titles = ["Cell type", "Time point", "Patient", "CAR-T cells"]
    if obs.empty or "umap_1" not in obs:
        for ax, title in zip(axes, titles, strict=False):
            empty_panel(ax, "no UMAP coordinates")
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
    colours = colours_for(o["patient"], colours)
    pc = o["patient"].astype(str).map(colours)
    _scatter(axes[2], xy, pc.to_list(), size)
    _legend_right(axes[2], {p: colours[p] for p in sorted_patients(o["patient"])})
    # CAR-T on top of everything else
    car = as_bool(o["car_t"]) if "car_t" in o else pd.Series(False, index=o.index)
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
    fig, axes, ncols = patient_grid(
        len(patients), ncols=ncols, width_mm=width_mm, top_mm=12, row_mm=42
    )
    if not patients:
        empty_panel(axes[0], "no cell types")
        return fig
    present = [c for c in CELL_TYPES if c in set(cell_types["cell_type"].astype(str))]
    present += sorted(set(cell_types["cell_type"].astype(str)) - set(CELL_TYPES))
    panels = panel_samples(cell_types, patients)
    rotate = rotate_for(panels, width_mm, ncols)
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
        set_xlabels(ax, sample_labels(samples.reset_index()), rotate)
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
