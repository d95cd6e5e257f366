"""B-cell reconstitution figures: the B-cell share through aplasia and recovery, naive and
IgM/IgD shares and clonal evenness (``b_cells.tsv``, ``elimination.tsv``), clonal diversity
(``diversity.tsv``) and isotypes (``isotypes.tsv``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cartrack.plots.layout import (
    day_axes,
    day_axis,
    empty_panel,
    panel_samples,
    patient_grid,
    patient_legend,
    patient_lines,
    recovery_lines,
    rotate_for,
    sample_labels,
    set_xlabels,
)
from cartrack.plots.style import (
    DOUBLE_MM,
    ISOTYPE_COLOURS,
    ISOTYPES,
    SINGLE_MM,
    TISSUE_NAMES,
    figure_size,
    patient_style,
    sorted_patients,
)


def recovery_days(*tables: pd.DataFrame) -> dict[str, float]:
    """`b_recovery_day` per patient from the first table that has it (b_cells or elimination)."""
    for t in tables:
        if t is not None and not t.empty and "b_recovery_day" in t:
            r = t.dropna(subset=["b_recovery_day"]).drop_duplicates("patient")
            return {
                str(p): float(d) for p, d in zip(r["patient"], r["b_recovery_day"], strict=False)
            }
    return {}


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
    fig, ax = plt.subplots(figsize=figure_size(width_mm, 62), layout="constrained")
    t = b_cells[b_cells["tissue"] == tissue] if "tissue" in b_cells else b_cells
    if t.empty or "b_fraction" not in t:
        empty_panel(ax, "no B-cell counts")
        return fig
    colours, markers = patient_style(t["patient"], colours)
    patient_lines(ax, t, "b_fraction", colours, markers, scale=100)
    recovery = recovery or {}
    recovery_lines(ax, {p: d for p, d in recovery.items() if p in colours}, colours)
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
    patient_legend(
        ax,
        colours,
        markers,
        extra=extra,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=min(len(colours) + len(extra), 5),
    )
    return fig


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
        len(RECONSTITUTION),
        1,
        figsize=figure_size(width_mm, 118),
        sharex=True,
        layout="constrained",
    )
    t = b_cells[b_cells["tissue"] == tissue] if "tissue" in b_cells else b_cells
    if t.empty:
        for ax, (_, ylabel, _s) in zip(axes, RECONSTITUTION, strict=False):
            empty_panel(ax, "no B-cell data")
            ax.set_ylabel(ylabel)
        return fig
    colours, markers = patient_style(t["patient"], colours)
    for ax, (col, ylabel, scale) in zip(axes, RECONSTITUTION, strict=False):
        ax.set_ylabel(ylabel)
        if col not in t or pd.to_numeric(t[col], errors="coerce").notna().sum() == 0:
            ax.text(
                0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, color="0.4"
            )
        else:
            patient_lines(ax, t, col, colours, markers, scale=scale)
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
        recovery_lines(ax, {p: d for p, d in (recovery or {}).items() if p in colours}, colours)
        ax.set_ylim(-0.1 * scale, 1.05 * scale)
    day_axes(axes, t["day"])
    extra = [
        Line2D([], [], color="0.4", lw=0.8, ls=(0, (1.5, 1.5)), label="B-cell recovery"),
        Line2D([], [], color="0.4", ls="", marker="x", mew=0.7, ms=3, label="no B cells / BCRs"),
    ]
    patient_legend(
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
        figsize=figure_size(width_mm, 118),
        sharex=True,
        sharey="row",
        squeeze=False,
        layout="constrained",
    )
    t = table[table["tissue"] == tissue] if "tissue" in table else table
    if t.empty or "hill_q0" not in t:
        for ax in axes.ravel():
            empty_panel(ax, "no BCR data")
        return fig
    colours, markers = patient_style(t["patient"], colours)
    for row, (col, ylabel) in zip(axes, HILL_ORDERS, strict=True):
        for ax, column in zip(row, (col, f"{col}_rarefied"), strict=True):
            values = pd.to_numeric(t[column], errors="coerce") if column in t else pd.Series()
            if values.notna().sum() == 0:
                ax.text(0.5, 0.5, "no values", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")  # fmt: skip
            else:
                patient_lines(ax, t, column, colours, markers)
                ax.set_ylim(bottom=0)
        row[0].set_ylabel(ylabel)
    axes[0, 0].set_title("Observed", loc="left")
    axes[0, 1].set_title("Rarefied", loc="left")
    for col in range(2):
        day_axes(axes[:, col], t["day"])
    depth = t.dropna(subset=["depth"]).drop_duplicates("patient").set_index("patient")["depth"]
    entries = {p: f"{p} ({int(depth[p])} cells)" if p in depth else p for p in colours}
    handles = [
        Line2D([], [], color=c, marker=markers.get(p, "o"), lw=1, label=entries[p], ms=3.5)
        for p, c in colours.items()
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 4))
    return fig


def isotypes(table: pd.DataFrame, *, width_mm: float = DOUBLE_MM, ncols: int = 3) -> Figure:
    """Isotype composition of each sample's cells with a heavy-chain isotype, one panel per
    patient.

    `table` is ``isotypes.tsv``; the bars are each isotype's ``n_cells`` over the sample's
    (its exact counts: ``fraction`` is the same share, written to six digits).
    """
    pats = sorted_patients(table.get("patient", []))
    fig, axes, ncols = patient_grid(len(pats), ncols=ncols, width_mm=width_mm, top_mm=12, row_mm=40)
    if not pats:
        empty_panel(axes[0], "no isotypes")
        return fig
    panels = panel_samples(table, pats)
    rotate = rotate_for(panels, width_mm, ncols)
    for ax, patient in zip(axes, pats, strict=False):
        t = table[table["patient"].astype(str) == patient]
        smp = panels[patient]
        counts = t.pivot_table(index="sample", columns="isotype", values="n_cells", aggfunc="sum")
        wide = counts.div(counts.sum(axis=1), axis=0)
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
        set_xlabels(ax, sample_labels(smp), rotate)
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
