"""Quality-control figures: cells per sample through QC, and the per-sample QC thresholds
(``qc.tsv``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cartrack.plots.layout import empty_panel, sort_samples
from cartrack.plots.style import DOUBLE_MM, SINGLE_MM, colours_for, figure_size


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
    fig, ax = plt.subplots(
        figsize=figure_size(width_mm, 22 + 3.6 * max(n, 3)), layout="constrained"
    )
    if qc.empty:
        empty_panel(ax, "no samples")
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
    colours = colours_for(q["patient"], colours)
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
        1, 4, figsize=figure_size(width_mm, 24 + 3.6 * max(n, 3)), sharey=True, layout="constrained"
    )
    present = [p for p in panels if p[1] in qc.columns]
    if qc.empty or not present:
        for ax in axes:
            empty_panel(ax, "no QC thresholds")
        return fig
    q = sort_samples(qc)
    colours = colours_for(q["patient"], colours)
    y = np.arange(len(q))[::-1]
    cols = [colours[str(p)] for p in q["patient"]]
    for ax, (lo_col, hi_col, title, logx) in zip(axes, panels, strict=False):
        if hi_col not in q:
            empty_panel(ax, "not recorded")
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
