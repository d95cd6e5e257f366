"""Rule figures_clones: alluvial plot of the largest clones, clone status counts."""

from cartrack.logs import setup_logging
from cartrack.plots import style
from cartrack.plots.clones import clone_status, clone_tracking
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = style.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
fig = clone_tracking(
    read_tsv(inp.clones),
    read_tsv(inp.timeline),
    samples=read_tsv(inp.b_cells),
    top=cfg["top_clones"],
    width_mm=cfg["wide_width_mm"],
)
style.save(fig, style.figure_stem(out.tracking_pdf), dpi=cfg["dpi"])
fig = clone_status(read_tsv(inp.elimination), colours=colours, width_mm=cfg["width_mm"])
style.save(fig, style.figure_stem(out.status_pdf), dpi=cfg["dpi"])
