"""Rule figures_qc: cells per sample before and after QC, and the QC thresholds."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
qc = plots.read_tsv(smk.input.qc)
fig = plots.qc_cells(qc, colours=colours, width_mm=cfg["width_mm"])
plots.save(fig, plots.figure_stem(smk.output.cells_pdf), dpi=cfg["dpi"])
fig = plots.qc_thresholds(qc, colours=colours, width_mm=cfg["wide_width_mm"])
plots.save(fig, plots.figure_stem(smk.output.thresholds_pdf), dpi=cfg["dpi"])
