"""Rule figures_car_t: CAR-T cells as a share of T cells over time per patient."""

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
