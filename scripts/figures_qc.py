"""Rule figures_qc: cells per sample before and after QC, and the QC thresholds."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.quality import qc_cells, qc_thresholds
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
qc = read_tsv(smk.input.qc)
fig = qc_cells(qc, colours=colours, width_mm=cfg.width_mm)
style.save(fig, smk.output.cells_pdf, dpi=cfg.dpi)
fig = qc_thresholds(qc, colours=colours, width_mm=cfg.wide_width_mm)
style.save(fig, smk.output.thresholds_pdf, dpi=cfg.dpi)
