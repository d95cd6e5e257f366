"""Rule figures_gsea: dot plot of the top GSEA terms per cell type."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = smk.params.figures
plots.configure(font_size=cfg["font_size"], palette=cfg["palette"])
fig = plots.gsea_dotplot(
    plots.read_tsv(smk.input.gsea), top=cfg["gsea_top_terms"], width_mm=cfg["wide_width_mm"]
)
plots.save(fig, plots.figure_stem(smk.output.pdf), dpi=cfg["dpi"])
