"""Rule bcr_clones: merged airr AnnData, clones and the tracking tables."""

import anndata as ad

from cartrack.clones import nearest_distances
from cartrack.double_positive import read_gex_cells
from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import setup_logging
from cartrack.params import CloneParams, ReadParams, TrackingParams
from cartrack.tables import write_tsv
from cartrack.tracking import track_clones

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params
tracking = TrackingParams.from_config(par.tracking)

gex_cells = read_gex_cells(
    inp.gex,
    genes=[tracking.cd19_gene, tracking.bcma_gene],
    proteins=[p for p in (tracking.cd19_protein, tracking.bcma_protein) if p],
    isotype_pattern=tracking.isotype_control_pattern,
)
res = track_clones(
    [ad.read_h5ad(inp.bcr)],  # merged by bcr_read
    gex_cells,
    par.sheet,
    tracking=tracking,
    clone=CloneParams.from_config(par.bcr["clone"]),
    productive_only=ReadParams.from_config(par.bcr).productive_only,
)
write_tsv(res.clones, out.clones)
write_tsv(res.clone_timeline, out.timeline)
write_tsv(res.b_cells, out.b_cells)
write_tsv(res.elimination, out.elimination)
write_tsv(res.diversity, out.diversity)
write_tsv(res.isotypes, out.isotypes)
write_tsv(res.chain_qc, out.chain_qc)
write_tsv(res.cell_clones, out.cell_clones)
write_tsv(res.airr.uns["clone_thresholds"], out.thresholds)
write_tsv(nearest_distances(res.airr), out.dist_nearest)
res.airr.write_h5ad(out.airr, compression=INTERMEDIATE_COMPRESSION)
