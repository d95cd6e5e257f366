"""CAR-T figures: CAR-T cells as a share of T cells (``car_t.tsv``) and the kinetics of the
largest product clonotypes (``car_t_clones.tsv``, ``car_t_clone_timeline.tsv``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cartrack.plots.layout import day_axis, empty_panel, patient_legend, patient_lines
from cartrack.plots.style import (
    CAR_T_STATUS_STYLES,
    DOUBLE_MM,
    PALETTES,
    SINGLE_MM,
    TISSUE_NAMES,
    colours_for,
    figure_size,
    patient_style,
    sorted_patients,
)


def car_t(
    table: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    width_mm: float = SINGLE_MM,
    tissue: str = "PB",
) -> Figure:
    """CAR-T cells as a share of blood T cells over time, one line per patient.

    `table` is ``car_t.tsv``: the share drawn is ``n_car_t / n_t_cells`` from its exact
    counts (``car_t_fraction`` is the same share, written to six digits); samples without
    cells (emptied by QC) are not drawn.
    """
    fig, ax = plt.subplots(figsize=figure_size(width_mm, 62), layout="constrained")
    t = table[table["tissue"] == tissue] if "tissue" in table and len(table) else table
    if "n_cells" in t:
        t = t[pd.to_numeric(t["n_cells"], errors="coerce") > 0]
    if {"n_car_t", "n_t_cells"} <= set(t.columns):
        n_t = t["n_t_cells"]
        t = t.assign(car_t_fraction=t["n_car_t"] / n_t.where(n_t > 0))
    if t.empty:
        empty_panel(ax, "no T cells")
        return fig
    colours, markers = patient_style(t["patient"], colours)
    patient_lines(ax, t, "car_t_fraction", colours, markers, scale=100)
    top = pd.to_numeric(t["car_t_fraction"], errors="coerce").max()
    ax.set_ylim(0, max(100 * top * 1.1, 1.0) if pd.notna(top) else 1.0)
    day_axis(ax, t["day"])
    where = "" if tissue == "PB" else f" {TISSUE_NAMES.get(tissue, tissue)}"
    ax.set_ylabel(f"CAR-T cells (% of{where} T cells)")
    patient_legend(
        ax,
        colours,
        markers,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=min(len(colours), 6),
    )
    return fig


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
        fig, ax = plt.subplots(figsize=figure_size(width_mm, 40), layout="constrained")
        empty_panel(ax, "no CAR-T cells")
        return fig
    n = len(patients)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        2 * nrows,
        ncols,
        figsize=figure_size(width_mm, 8 + 70 * nrows),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": [1, 1.3] * nrows},
    )
    colours = colours_for(patients, colours)
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
            empty_panel(lower, "no TCR clonotypes")
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
