"""Signature figures: scores over time (``signatures.tsv``), the heatmap of changes from
baseline (``signature_changes.tsv``) and the GSEA dot plot (``gsea.tsv``)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cartrack.design import ALL, CELL_TYPES
from cartrack.plots.layout import (
    crowded,
    day_axes,
    empty_panel,
    panel_mm,
    patient_legend,
    patient_lines,
    set_xlabels,
    timepoint_days,
    timepoint_order,
)
from cartrack.plots.style import (
    DOUBLE_MM,
    GROUP_LABELS,
    SINGLE_MM,
    figure_size,
    label,
    patient_style,
)


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
        figsize=figure_size(width_mm, 16 + 40 * len(names)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    axes = axes.ravel()
    t = signatures
    if not t.empty and "tissue" in t:
        t = t[t["tissue"] == tissue]
    colours, markers = patient_style(t.get("patient", []), colours)
    for ax, name in zip(axes, names, strict=False):
        cell_type = cell_types.get(name, cell_types.get("default", ALL))
        s = t
        if not t.empty:
            s = t[(t["signature"] == name) & (t["cell_type"].astype(str) == cell_type)]
        where = label(cell_type)
        where = where[:1].lower() + where[1:]  # "naive B", "monocyte", "all cells"
        ax.set_ylabel(f"{label(name)} score\n(mean, {where})")
        if s.empty:
            empty_panel(ax, f"no {label(name)} scores in {where}")
            continue
        patient_lines(ax, s, "mean_score", colours, markers)
        ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    day_axes(axes, t["day"] if not t.empty else [])
    if colours:
        patient_legend(
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
        figsize=figure_size(width_mm, 18 + nrows * (10 + 4.2 * max(len(rows), 3))),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    axes = axes.ravel()
    if changes.empty:
        empty_panel(axes[0], "no signature changes")
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
        1,
        n,
        figsize=figure_size(width_mm, height),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    axes = axes.ravel()
    if g.empty or not terms:
        empty_panel(axes[0], "no GSEA results")
        return fig
    vmax = float(np.nanmax(np.abs(g["nes"]))) or 1.0
    norm = TwoSlopeNorm(vcenter=0, vmin=-vmax, vmax=vmax)
    cmap = matplotlib.colormaps["RdBu_r"]
    ypos = {t: i for i, t in enumerate(terms[::-1])}

    def area(fdr):
        return 4 + 14 * np.clip(-np.log10(np.clip(fdr, fdr_floor, 1)), 0, None)

    rotate = crowded([comparison_label(c) for c in comps], panel_mm(width_mm, n) / len(comps))
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
        set_xlabels(ax, [comparison_label(c) for c in comps], rotate)
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
