"""Snakemake adapter of rule signatures_score: per-cell scores, signatures.tsv, changes."""

import anndata as ad

from cartrack import signatures
from cartrack.logs import setup_logging
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params

adata = ad.read_h5ad(inp.h5ad)
gene_sets = signatures.read_gmt(inp.gmt)
gene_sets = signatures.add_random_control(
    gene_sets, adata, size=par.random_control_size, seed=par.seed
)
control = {k: v for k, v in gene_sets.items() if k == signatures.RANDOM_CONTROL}
signatures.write_gmt(control, out.control_gmt, description="random negative control")
usable = signatures.usable_gene_sets(
    gene_sets, adata.var_names, min_genes=par.min_genes, on_too_few=par.on_too_few
)
scores = signatures.score_cells(
    adata,
    usable,
    min_genes=par.min_genes,
    on_too_few=par.on_too_few,
    ctrl_size=par.ctrl_size,
    n_bins=par.n_bins,
    seed=par.seed,
    inplace=False,
)
write_tsv(signatures.scores_table(scores), out.scores)
summary = signatures.summarise_scores(
    adata.obs, scores, min_cells=par.min_cells, groups=par.cell_type_groups
)
write_tsv(summary, out.summary)
matched = signatures.matched_control_sets(
    adata, usable, n_sets=par.matched_controls, n_bins=par.n_bins, seed=par.seed
)
controls = signatures.control_summary(adata, summary, usable, matched, groups=par.cell_type_groups)
changes = signatures.signature_changes(
    summary,
    controls=controls,
    post_min_day=par.post_min_day,
    visit_window_days=par.visit_window_days,
    tissue=par.tissue,
    min_patients_test=par.min_patients_test,
)
write_tsv(changes, out.changes)
