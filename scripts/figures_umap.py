"""Rule figures_umap: UMAP by cell type, time point and patient, CAR-T cells highlighted."""

from cartrack.cohort import read_obs
from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.cells import umap

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
obs = read_obs(smk.input.h5mu, umap=True)
fig = umap(obs, colours=colours, width_mm=cfg.wide_width_mm, seed=smk.params.seed)
style.save(fig, smk.output.pdf, dpi=cfg.dpi)
