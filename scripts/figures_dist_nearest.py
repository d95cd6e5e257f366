"""Rule figures_dist_nearest: distance-to-nearest histograms with the clone cut-offs."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.clones import dist_to_nearest
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
fig = dist_to_nearest(
    read_tsv(inp.distances),
    read_tsv(inp.thresholds),
    colours=colours,
    width_mm=cfg.wide_width_mm,
)
style.save(fig, out.pdf, dpi=cfg.dpi)
