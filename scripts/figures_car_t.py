"""Rule figures_car_t: CAR-T share of T cells per patient, and CAR-T clonotype kinetics."""

from cartrack.logs import setup_logging
from cartrack.params import CarTParams, FigureParams
from cartrack.plots import style
from cartrack.plots.car_t_cells import car_t, car_t_kinetics
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
samples = read_tsv(inp.car_t)
fig = car_t(samples, colours=colours, width_mm=cfg.width_mm, tissue=cfg.tissue)
style.save(fig, out.pdf, dpi=cfg.dpi)
fig = car_t_kinetics(
    samples,
    read_tsv(inp.clones),
    read_tsv(inp.timeline),
    colours=colours,
    top=CarTParams.from_config(smk.params.car_t).top_clonotypes,
    tissue=cfg.tissue,
    width_mm=cfg.wide_width_mm,
)
style.save(fig, out.kinetics_pdf, dpi=cfg.dpi)
