"""Rule figures_car_t: CAR-T share of T cells per patient, and CAR-T clonotype kinetics."""

from cartrack.logs import setup_logging
from cartrack.plots import style
from cartrack.plots.car_t_cells import car_t, car_t_kinetics
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = style.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
samples = read_tsv(inp.car_t)
fig = car_t(samples, colours=colours, width_mm=cfg["width_mm"], tissue=cfg["tissue"])
style.save(fig, style.figure_stem(out.pdf), dpi=cfg["dpi"])
fig = car_t_kinetics(
    samples,
    read_tsv(inp.clones),
    read_tsv(inp.timeline),
    colours=colours,
    top=smk.params.top_clonotypes,
    tissue=cfg["tissue"],
    width_mm=cfg["wide_width_mm"],
)
style.save(fig, style.figure_stem(out.kinetics_pdf), dpi=cfg["dpi"])
