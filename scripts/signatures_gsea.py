"""Snakemake adapter of rule signatures_gsea: pseudobulk GSEA baseline vs post (gsea.tsv)."""

import anndata as ad

from cartrack import signatures
from cartrack.logs import setup_logging
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params

adata = ad.read_h5ad(inp.h5ad)
gene_sets = signatures.read_gmt([*inp.gmt, inp.control_gmt])
table = signatures.run_gsea(
    adata,
    gene_sets,
    cell_types=par.cell_types,
    post_min_day=par.post_min_day,
    tissue=par.tissue,
    min_cells=par.min_cells,
    per_timepoint=par.per_timepoint,
    prior_count=par.prior_count,
    min_counts=par.min_counts,
    permutations=par.permutations,
    min_size=par.min_size,
    max_size=par.max_size,
    seed=par.seed,
)
write_tsv(table, out.gsea)
