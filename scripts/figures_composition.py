"""Rule figures_composition: cell-type composition, and B-cell fraction with recovery days."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams, TrackingParams
from cartrack.plots import style
from cartrack.plots.b_cells import b_fraction, recovery_days
from cartrack.plots.cells import composition
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
cell_types = read_tsv(inp.cell_types)
b_cells = read_tsv(inp.b_cells)
elimination = read_tsv(inp.elimination)

fig = composition(cell_types, samples=b_cells, width_mm=cfg.wide_width_mm)
style.save(fig, out.composition_pdf, dpi=cfg.dpi)
fig = b_fraction(
    b_cells,
    recovery=recovery_days(elimination, b_cells),
    level=TrackingParams.from_config(smk.params.tracking).recovery_b_fraction,
    colours=colours,
    width_mm=cfg.width_mm,
    tissue=cfg.tissue,
)
style.save(fig, out.b_fraction_pdf, dpi=cfg.dpi)
