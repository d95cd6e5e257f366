"""Rule figures_diversity: Hill numbers over time, observed and rarefied."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
fig = plots.diversity(
    plots.read_tsv(inp.diversity),
    colours=colours,
    width_mm=cfg["wide_width_mm"],
    tissue=cfg["tissue"],
)
plots.save(fig, plots.figure_stem(out.pdf), dpi=cfg["dpi"])
