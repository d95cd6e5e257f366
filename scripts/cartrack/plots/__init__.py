"""Figures of the workflow: every function draws ready tables (results/tables/*.tsv, or the
cells of ``cohort.h5mu`` for the UMAP) and returns a Figure; none computes a table.

Modules: :mod:`~cartrack.plots.style` (sizes, palettes and colours, the journal theme,
labels, saving), :mod:`~cartrack.plots.layout` (helpers shared by the figures), and one
module per report section: :mod:`~cartrack.plots.quality`, :mod:`~cartrack.plots.cells`,
:mod:`~cartrack.plots.b_cells`, :mod:`~cartrack.plots.clones`,
:mod:`~cartrack.plots.signatures`, :mod:`~cartrack.plots.car_t_cells`. The names below are
the public API in one place (``from cartrack import plots; plots.umap(...)``); rule adapters
import the modules they draw with, which are also the inputs of their rules.

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

from cartrack.plots.b_cells import b_fraction, diversity, isotypes, reconstitution, recovery_days
from cartrack.plots.car_t_cells import car_t, car_t_kinetics, top_product_clonotypes
from cartrack.plots.cells import composition, umap
from cartrack.plots.clones import clone_status, clone_tracking, dist_to_nearest, tracked_clones
from cartrack.plots.layout import day_axis, sort_samples, timepoint_days, timepoint_order
from cartrack.plots.quality import qc_cells, qc_thresholds
from cartrack.plots.signatures import gsea_dotplot, signature_changes, signatures_time
from cartrack.plots.style import (
    CELL_TYPE_COLOURS,
    DOUBLE_MM,
    ISOTYPE_COLOURS,
    PALETTES,
    SINGLE_MM,
    STATUS_COLOURS,
    configure,
    label,
    patient_colours,
    patient_markers,
    patient_style,
    save,
    set_style,
)
from cartrack.tables import read_tsv

__all__ = [
    "CELL_TYPE_COLOURS",
    "DOUBLE_MM",
    "ISOTYPE_COLOURS",
    "PALETTES",
    "SINGLE_MM",
    "STATUS_COLOURS",
    "b_fraction",
    "car_t",
    "car_t_kinetics",
    "clone_status",
    "clone_tracking",
    "composition",
    "configure",
    "day_axis",
    "dist_to_nearest",
    "diversity",
    "gsea_dotplot",
    "isotypes",
    "label",
    "patient_colours",
    "patient_markers",
    "patient_style",
    "qc_cells",
    "qc_thresholds",
    "read_tsv",
    "reconstitution",
    "recovery_days",
    "save",
    "set_style",
    "signature_changes",
    "signatures_time",
    "sort_samples",
    "timepoint_days",
    "timepoint_order",
    "top_product_clonotypes",
    "tracked_clones",
    "umap",
]
