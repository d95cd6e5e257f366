"""Rule figures_reconstitution: naive and IgM/IgD shares, clonal evenness; isotypes."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.b_cells import isotypes, reconstitution, recovery_days
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
b_cells = read_tsv(inp.b_cells)
fig = reconstitution(
    b_cells,
    recovery=recovery_days(read_tsv(inp.elimination), b_cells),
    colours=colours,
    width_mm=cfg.width_mm,
    tissue=cfg.tissue,
)
style.save(fig, out.reconstitution_pdf, dpi=cfg.dpi)
fig = isotypes(read_tsv(inp.isotypes), width_mm=cfg.wide_width_mm)
style.save(fig, out.isotypes_pdf, dpi=cfg.dpi)
