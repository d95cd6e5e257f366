"""Rule figures_gsea: dot plot of the top GSEA terms per cell type."""

from cartrack.logs import setup_logging
from cartrack.plots import style
from cartrack.plots.signatures import gsea_dotplot
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
cfg = smk.params.figures
style.configure(font_size=cfg["font_size"], palette=cfg["palette"])
fig = gsea_dotplot(
    read_tsv(smk.input.gsea), top=cfg["gsea_top_terms"], width_mm=cfg["wide_width_mm"]
)
style.save(fig, style.figure_stem(smk.output.pdf), dpi=cfg["dpi"])
