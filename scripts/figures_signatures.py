"""Rule figures_signatures: signature scores over time, heatmap of changes from baseline."""

from cartrack.logs import setup_logging
from cartrack.params import FigureParams
from cartrack.plots import style
from cartrack.plots.signatures import signature_changes, signatures_time
from cartrack.tables import read_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
cfg = FigureParams.from_config(smk.params.cfg)
colours = style.configure(cfg, patients=smk.params.patients)
fig = signatures_time(
    read_tsv(inp.signatures),
    names=cfg.signatures,
    cell_types=cfg.signature_cell_types,
    colours=colours,
    width_mm=cfg.width_mm,
    tissue=cfg.tissue,
)
style.save(fig, out.time_pdf, dpi=cfg.dpi)
fig = signature_changes(read_tsv(inp.changes), first=cfg.signatures, width_mm=cfg.wide_width_mm)
style.save(fig, out.changes_pdf, dpi=cfg.dpi)
