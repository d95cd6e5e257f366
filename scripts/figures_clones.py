"""Rule figures_clones: alluvial plot of the largest clones, clone status counts."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.clones import clone_status, clone_tracking
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
fig = clone_tracking(
    read_tsv(inp.clones),
    read_tsv(inp.timeline),
    samples=read_tsv(inp.b_cells),
    top=cfg.top_clones,
    width_mm=cfg.wide_width_mm,
)
style.save(fig, out.tracking_pdf, dpi=cfg.dpi)
fig = clone_status(read_tsv(inp.elimination), colours=colours, width_mm=cfg.width_mm)
style.save(fig, out.status_pdf, dpi=cfg.dpi)
