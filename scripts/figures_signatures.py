"""Rule figures_signatures: signature scores over time, heatmap of changes from baseline."""

from cartrack import plots
from cartrack.logs import setup_logging

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, cfg = smk.input, smk.output, smk.params.figures
colours = plots.configure(
    font_size=cfg["font_size"], palette=cfg["palette"], patients=smk.params.patients
)
fig = plots.signatures_time(
    plots.read_tsv(inp.signatures),
    names=cfg["signatures"],
    cell_types=cfg["signature_cell_types"],
    colours=colours,
    width_mm=cfg["width_mm"],
    tissue=cfg["tissue"],
)
plots.save(fig, plots.figure_stem(out.time_pdf), dpi=cfg["dpi"])
fig = plots.signature_changes(
    plots.read_tsv(inp.changes), first=cfg["signatures"], width_mm=cfg["wide_width_mm"]
)
plots.save(fig, plots.figure_stem(out.changes_pdf), dpi=cfg["dpi"])
