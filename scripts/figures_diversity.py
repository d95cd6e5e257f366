"""Rule figures_diversity: Hill numbers over time, observed and rarefied."""

from cartrack.logs import setup_logging
from cartrack.plots import style
from cartrack.plots.b_cells import diversity
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = style.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
fig = diversity(
    read_tsv(inp.diversity),
    colours=colours,
    width_mm=cfg["wide_width_mm"],
    tissue=cfg["tissue"],
)
style.save(fig, style.figure_stem(out.pdf), dpi=cfg["dpi"])
