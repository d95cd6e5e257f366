"""The figures' style kit: sizes, palettes and fixed colours, the journal theme, readable
labels and saving.

Every figure module draws with these, so that a patient, a cell type or a clone status has
the same colour in every figure, and a style change is made here once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from cartrack.params import FigureParams

MM = 1 / 25.4  # inches per millimetre
SINGLE_MM = 89.0
DOUBLE_MM = 183.0


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

# one colour per clone status (cartrack.design.CLONE_STATUSES)
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
# line style per CAR-T clonotype status (car_t_clones.tsv)
CAR_T_STATUS_STYLES = {
    "persistent": "-",
    "contracted": (0, (4, 1.5)),
    "lost": (0, (1, 1.2)),
    "not_assessable": (0, (3, 1, 1, 1)),
}

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


def set_style(*, font_size: float) -> None:
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


def configure(figures: FigureParams | None = None, *, patients: Iterable = ()) -> dict[str, str]:
    """Set the style (:func:`set_style`) and return the patient colours of the whole cohort.

    `figures` is the config section ``figures`` (``font_size``, ``palette``; the schema's
    defaults when None). Also quietens the font-subsetting chatter that PDF output sends to
    the log.
    """
    figures = figures if figures is not None else FigureParams.from_config()
    for name in ("fontTools", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    set_style(font_size=figures.font_size)
    return patient_colours(patients, palette=figures.palette)


def save(fig: Figure, path: str | Path, *, dpi: int | None = None) -> list[Path]:
    """Write ``<stem>.pdf`` (vector, TrueType fonts embedded) and ``<stem>.png``; close `fig`.

    `path` is the stem or either file (``qc_cells``, ``qc_cells.pdf``); `dpi` that of the
    PNG (the schema's ``figures.dpi`` when None).
    """
    dpi = dpi if dpi is not None else FigureParams.from_config().dpi
    stem = Path(path)
    if stem.suffix.lower() in (".pdf", ".png"):
        stem = stem.with_suffix("")
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


def patient_style(
    patients: Iterable, colours: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Colours (:func:`colours_for`) and markers (:func:`patient_markers`) of the patients
    drawn in a figure, in natural order."""
    patients = list(patients)
    colours = colours_for(patients, colours)
    colours = {p: colours[p] for p in sorted_patients(patients)}
    return colours, patient_markers(colours)


def colours_for(data_patients: Iterable, colours: Mapping[str, str] | None) -> dict[str, str]:
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


def figure_size(width_mm: float, height_mm: float) -> tuple[float, float]:
    return width_mm * MM, height_mm * MM
