"""Snakemake adapter of rule signatures_gsea: pseudobulk DE (PyDESeq2) and GSEA, baseline vs
post (pseudobulk_de.tsv, gsea.tsv)."""

import anndata as ad

from cartrack import gsea
from cartrack.genesets import read_gmt
from cartrack.logs import setup_logging
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params

adata = ad.read_h5ad(inp.h5ad)
gene_sets = gsea.merge_gene_sets(read_gmt(inp.family_gmt), read_gmt([*inp.gmt, inp.control_gmt]))
table, de = gsea.run_gsea(
    adata,
    gene_sets,
    cell_types=par.cell_types,
    post_min_day=par.post_min_day,
    visit_window_days=par.visit_window_days,
    tissue=par.tissue,
    min_cells=par.min_cells,
    per_timepoint=par.per_timepoint,
    min_counts=par.min_counts,
    permutations=par.permutations,
    sign_flip_min_patients=par.sign_flip_min_patients,
    max_flips=par.max_flips,
    min_size=par.min_size,
    max_size=par.max_size,
    seed=par.seed,
)
write_tsv(table, out.gsea)
write_tsv(de, out.de)
