"""Rule figures_umap: UMAP by cell type, time point and patient, CAR-T cells highlighted."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
obs = plots.read_obs(smk.input.h5mu, umap=True)
fig = plots.umap(obs, colours=colours, width_mm=cfg["wide_width_mm"], seed=smk.params.seed)
plots.save(fig, plots.figure_stem(smk.output.pdf), dpi=cfg["dpi"])
