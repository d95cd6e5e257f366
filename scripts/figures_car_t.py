"""Rule figures_car_t: CAR-T share of T cells per patient, and CAR-T clonotype kinetics."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
table = plots.car_t_table(plots.read_obs(smk.input.h5mu))
fig = plots.car_t(table, colours=colours, width_mm=cfg["width_mm"], tissue=cfg["tissue"])
plots.save(fig, plots.figure_stem(smk.output.pdf), dpi=cfg["dpi"])
fig = plots.car_t_kinetics(
    plots.read_tsv(smk.input.car_t),
    plots.read_tsv(smk.input.clones),
    plots.read_tsv(smk.input.timeline),
    colours=colours,
    top=smk.params.top_clonotypes,
    tissue=cfg["tissue"],
    width_mm=cfg["wide_width_mm"],
)
plots.save(fig, plots.figure_stem(smk.output.kinetics_pdf), dpi=cfg["dpi"])
