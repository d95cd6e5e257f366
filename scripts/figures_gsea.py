"""Rule figures_gsea: dot plot of the top GSEA terms per cell type."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.signatures import gsea_dotplot
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = FigureParams.from_config(smk.params.cfg)
style.configure(cfg)
fig = gsea_dotplot(read_tsv(smk.input.gsea), top=cfg.gsea_top_terms, width_mm=cfg.wide_width_mm)
style.save(fig, smk.output.pdf, dpi=cfg.dpi)
