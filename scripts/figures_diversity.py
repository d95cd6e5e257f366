"""Rule figures_diversity: Hill numbers over time, observed and rarefied."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.b_cells import diversity
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
fig = diversity(
    read_tsv(inp.diversity),
    colours=colours,
    width_mm=cfg.wide_width_mm,
    tissue=cfg.tissue,
)
style.save(fig, out.pdf, dpi=cfg.dpi)
