"""Rule figures_dist_nearest: distance-to-nearest histograms with the clone cut-offs."""

from cartrack.logs import setup_logging
from cartrack.plots import style
from cartrack.plots.clones import dist_to_nearest
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = style.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
fig = dist_to_nearest(
    read_tsv(inp.distances),
    read_tsv(inp.thresholds),
    colours=colours,
    width_mm=cfg["wide_width_mm"],
)
style.save(fig, style.figure_stem(out.pdf), dpi=cfg["dpi"])
