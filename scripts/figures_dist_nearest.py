"""Rule figures_dist_nearest: distance-to-nearest histograms with the clone cut-offs."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
fig = plots.dist_to_nearest(
    plots.read_tsv(inp.distances),
    plots.read_tsv(inp.thresholds),
    colours=colours,
    width_mm=cfg["wide_width_mm"],
)
plots.save(fig, plots.figure_stem(out.pdf), dpi=cfg["dpi"])
