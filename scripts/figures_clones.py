"""Rule figures_clones: alluvial plot of the largest clones, clone status counts."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
clones = plots.read_tsv(inp.clones)
fig = plots.clone_tracking(
    clones,
    plots.read_tsv(inp.timeline),
    samples=plots.read_tsv(inp.b_cells),
    top=cfg["top_clones"],
    width_mm=cfg["wide_width_mm"],
)
plots.save(fig, plots.figure_stem(out.tracking_pdf), dpi=cfg["dpi"])
fig = plots.clone_status(clones, colours=colours, width_mm=cfg["width_mm"])
plots.save(fig, plots.figure_stem(out.status_pdf), dpi=cfg["dpi"])
