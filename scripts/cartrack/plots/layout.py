"""Figure helpers shared by the figure modules: sample order and labels, the "Days since
infusion" axis, time-point order, one panel per patient, patient lines and legends, and the
panel that says there is nothing to show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cartrack.plots.style import figure_size, natural_key

DAY_LABEL = "Days since infusion"
DAY_TICKS = (-365, -180, -90, -30, -14, 0, 14, 28, 90, 180, 365, 730, 1095, 1460, 1825)


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


def empty_panel(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


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


def sample_labels(samples: pd.DataFrame) -> list[str]:
    """x labels of samples: the time point (`D<day>` if none), with the tissue unless blood."""
    out = []
    for _, row in samples.iterrows():
        tp = row.get("timepoint")
        tp = tp if isinstance(tp, str) and tp else f"D{int(row['day'])}"
        tissue = row.get("tissue", "PB")
        out.append(tp if tissue == "PB" else f"{tissue}\n{tp}")
    return out


def order_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples of one patient: blood first, then other tissues, each by day."""
    s = samples.copy()
    if "tissue" not in s:
        s["tissue"] = "PB"
    return sort_samples(s)


def crowded(labels: Iterable[str], slot_mm: float) -> bool:
    """Whether the widest of `labels` would overflow a slot `slot_mm` wide."""
    size = matplotlib.rcParams["xtick.labelsize"]
    size = size if isinstance(size, int | float) else matplotlib.rcParams["font.size"] - 1
    widest = max((len(line) for lab in labels for line in str(lab).split("\n")), default=0)
    return widest * 0.6 * size / 72 * 25.4 > 0.95 * slot_mm


def panel_samples(table: pd.DataFrame, patients: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per patient its samples in plotting order (blood by day, then other tissues)."""
    out = {}
    for patient in patients:
        t = table[table["patient"].astype(str) == patient].drop_duplicates("sample")
        out[patient] = order_samples(t).reset_index(drop=True)
    return out


def rotate_for(panels: Mapping[str, pd.DataFrame], width_mm: float, ncols: int) -> bool:
    """One decision for all panels of a figure: upright labels if any panel is crowded."""
    most = max((len(s) for s in panels.values()), default=1) or 1
    labels = [lab for s in panels.values() for lab in sample_labels(s)]
    return crowded(labels, panel_mm(width_mm, ncols) / most)


def set_xlabels(ax, labels: Sequence[str], rotate: bool) -> None:
    """Category labels under bars; upright (and on one line) with `rotate`."""
    ax.set_xticks(np.arange(len(labels)))
    if rotate:
        ax.set_xticklabels([str(lab).replace("\n", " ") for lab in labels], rotation=90)
    else:
        ax.set_xticklabels(labels)


def panel_mm(width_mm: float, ncols: int, margin_mm: float = 30.0) -> float:
    """Approximate width of one panel of a row of `ncols` panels."""
    return max((width_mm - margin_mm) / max(ncols, 1), 10.0)


def day_axes(axes, days: Iterable, **kwargs) -> None:
    """:func:`day_axis` on stacked panels sharing x: the label on the lowest only."""
    days = list(days)
    for ax in axes:
        day_axis(ax, days, **kwargs)
    for ax in axes[:-1]:
        ax.set_xlabel("")


def patient_grid(
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
        figsize=figure_size(width_mm, top_mm + row_mm * nrows),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    return fig, axes.ravel(), ncols


def patient_legend(fig_or_ax, colours, markers=None, *, extra=(), **kwargs):
    handles = [
        Line2D([], [], color=c, marker=(markers or {}).get(p, "o"), lw=1, label=p, markersize=3.5)
        for p, c in colours.items()
    ]
    handles += list(extra)
    return fig_or_ax.legend(handles=handles, **kwargs)


def patient_lines(
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


def recovery_lines(ax, recovery: Mapping[str, float], colours) -> None:
    for patient, day in recovery.items():
        if pd.notna(day) and patient in colours:
            ax.axvline(float(day), color=colours[patient], lw=0.8, ls=(0, (1.5, 1.5)), zorder=0)
