"""Snakemake adapter of rule signatures_score: per-cell scores, signatures.tsv, changes."""

import anndata as ad

from cartrack import genesets, signatures
from cartrack.logs import setup_logging
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params

adata = ad.read_h5ad(inp.h5ad)
gene_sets = genesets.read_gmt(inp.gmt)
gene_sets = genesets.add_random_control(
    gene_sets, adata, size=par.random_control_size, seed=par.seed
)
control = {k: v for k, v in gene_sets.items() if k == genesets.RANDOM_CONTROL}
genesets.write_gmt(control, out.control_gmt, description="random negative control")
scores, summary, changes = signatures.score_and_compare(
    adata,
    gene_sets,
    min_genes=par.min_genes,
    on_too_few=par.on_too_few,
    ctrl_size=par.ctrl_size,
    n_bins=par.n_bins,
    min_cells=par.min_cells,
    groups=par.cell_type_groups,
    matched_controls=par.matched_controls,
    post_min_day=par.post_min_day,
    visit_window_days=par.visit_window_days,
    tissue=par.tissue,
    min_patients_test=par.min_patients_test,
    seed=par.seed,
)
write_tsv(signatures.scores_table(scores), out.scores)
write_tsv(summary, out.summary)
write_tsv(changes, out.changes)
