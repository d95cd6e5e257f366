"""Rule figures_composition: cell-type composition, and B-cell fraction with recovery days."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
cell_types = plots.read_tsv(inp.cell_types)
b_cells = plots.read_tsv(inp.b_cells)
elimination = plots.read_tsv(inp.elimination)

fig = plots.composition(cell_types, samples=b_cells, width_mm=cfg["wide_width_mm"])
plots.save(fig, plots.figure_stem(out.composition_pdf), dpi=cfg["dpi"])
fig = plots.b_fraction(
    b_cells,
    recovery=plots.recovery_days(elimination, b_cells),
    level=smk.params.recovery_level,
    colours=colours,
    width_mm=cfg["width_mm"],
    tissue=cfg["tissue"],
)
plots.save(fig, plots.figure_stem(out.b_fraction_pdf), dpi=cfg["dpi"])
