"""Rule figures_reconstitution: naive and IgM/IgD shares, clonal evenness; isotypes."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
b_cells = plots.read_tsv(inp.b_cells)
fig = plots.reconstitution(
    b_cells,
    recovery=plots.recovery_days(plots.read_tsv(inp.elimination), b_cells),
    colours=colours,
    width_mm=cfg["width_mm"],
    tissue=cfg["tissue"],
)
plots.save(fig, plots.figure_stem(out.reconstitution_pdf), dpi=cfg["dpi"])
isotypes = plots.isotype_table(plots.read_obs(inp.h5mu))
fig = plots.isotypes(isotypes, width_mm=cfg["wide_width_mm"])
plots.save(fig, plots.figure_stem(out.isotypes_pdf), dpi=cfg["dpi"])
