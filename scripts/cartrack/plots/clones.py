"""Clone-tracking figures: the largest clones of each patient across its samples
(``clones.tsv``, ``clone_timeline.tsv``), clones per status (``elimination.tsv``) and the
distance-to-nearest histograms behind the clone cut-off."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon

from cartrack.design import CLONE_STATUSES
from cartrack.plots.layout import (
    empty_panel,
    panel_samples,
    patient_grid,
    rotate_for,
    sample_labels,
    set_xlabels,
)
from cartrack.plots.style import (
    DOUBLE_MM,
    DP_HATCH,
    REST_COLOUR,
    SINGLE_MM,
    STATUS_COLOURS,
    colours_for,
    figure_size,
    sorted_patients,
)
from cartrack.tables import as_bool


def tracked_clones(clones: pd.DataFrame, *, top: int = 10) -> pd.DataFrame:
    """Per patient the `top` largest clones (by cells) plus every double-positive clone."""
    if clones.empty:
        return clones.assign(double_positive=pd.Series(dtype=bool))
    c = clones.copy()
    c["double_positive"] = as_bool(c["double_positive"]) if "double_positive" in c else False
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
    fig, axes, ncols = patient_grid(len(pats), ncols=ncols, width_mm=width_mm, top_mm=16, row_mm=44)
    if not pats:
        empty_panel(axes[0], "no clones")
        return fig
    status = chosen.set_index("clone_id")["status"] if len(chosen) else pd.Series(dtype=object)
    dp = chosen.set_index("clone_id")["double_positive"] if len(chosen) else pd.Series(dtype=bool)
    meta_cols = ["sample", "patient", "day", "tissue", "timepoint"]
    slots = timeline[[c for c in meta_cols if c in timeline]]
    if samples is not None and len(samples):
        slots = pd.concat([samples[[c for c in meta_cols if c in samples]], slots])
    panels = panel_samples(slots, pats)
    rotate = rotate_for(panels, width_mm, ncols)
    for ax, patient in zip(axes, pats, strict=False):
        tl = timeline[timeline["patient"].astype(str) == patient]
        smp = panels[patient]
        ax.set_title(patient, loc="left")
        set_xlabels(ax, sample_labels(smp), rotate)
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
    handles = [Patch(color=STATUS_COLOURS[s], label=s.replace("_", " ")) for s in CLONE_STATUSES]
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
    elimination: pd.DataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    width_mm: float = SINGLE_MM,
) -> Figure:
    """Clones per patient by status: all clones, and double-positive clones alone.

    `elimination` is ``elimination.tsv``, whose ``n_<status>`` columns count the patient's
    clones by status and ``n_dp_<status>`` its double-positive ones (called on baseline
    cells, so never emergent or early-only); patients without clones are left out.
    """
    e = elimination
    if "n_clones" in e:
        e = e[pd.to_numeric(e["n_clones"], errors="coerce").fillna(0) > 0]
    pats = sorted_patients(e.get("patient", []))
    fig, axes = plt.subplots(
        1,
        2,
        figsize=figure_size(width_mm, 30 + 6 * max(len(pats), 2)),
        sharey=True,
        layout="constrained",
    )
    if not pats:
        for ax, title in zip(axes, ["All clones", "Double-positive clones"], strict=False):
            empty_panel(ax, "no clones")
            ax.set_title(title, loc="left")
        return fig
    rows = e.assign(patient=e["patient"].astype(str)).set_index("patient").reindex(pats)
    y = np.arange(len(pats))[::-1]
    for ax, prefix, title in [
        (axes[0], "n_", "All clones"),
        (axes[1], "n_dp_", "Double-positive clones"),
    ]:
        ax.set_title(title, loc="left")
        left = np.zeros(len(pats))
        for s in CLONE_STATUSES:
            column = f"{prefix}{s}"
            v = (
                pd.to_numeric(rows[column], errors="coerce").fillna(0).to_numpy()
                if column in rows
                else np.zeros(len(pats))
            )
            ax.barh(y, v, left=left, color=STATUS_COLOURS[s], height=0.7, lw=0)
            left += v
        ax.set_xlabel("Clones (n)")
        if not left.any():
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
    handles = [Patch(color=STATUS_COLOURS[s], label=s.replace("_", " ")) for s in CLONE_STATUSES]
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
    colours = colours_for(pats, colours)
    fig, axes, _ = patient_grid(len(pats), ncols=ncols, width_mm=width_mm, top_mm=12, row_mm=28)
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
        empty_panel(axes[0], "no heavy chains")
        return fig
    for ax, patient in zip(axes, pats, strict=False):
        d = pd.to_numeric(
            distances.loc[distances["patient"].astype(str) == patient, "dist_nearest"],
            errors="coerce",
        ).dropna()
        ax.set_title(patient, loc="left")
        if d.empty:
            empty_panel(ax, "no distances")
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
