"""Rule gex_qc: read one sample, QC it, write the kept cells and the QC tables.

Every cell, removed or not, also gets a cell type from this sample alone (column
``qc_cell_type`` of the cells table) so qc_by_cell_type.tsv can say what QC removed.
"""

import pandas as pd
import scanpy as sc

from cartrack.annotate import annotate_cell_types, read_markers
from cartrack.design import InputError
from cartrack.io import read_gex
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.qc import run_qc
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
sample = snakemake.wildcards.sample
with exit_on_input_error(snakemake.log[0]):
    gex, prot = read_gex(snakemake.input.gex, sample=sample)
    try:
        kept, summary = run_qc(gex, seed=snakemake.params.seed, **snakemake.params.qc)
    except InputError as error:
        where = f"sample '{sample}': gex file '{snakemake.input.gex}'"
        raise InputError(f"{where}: {error}") from None
if prot is not None:
    kept.obsm["prot_counts"] = prot[kept.obs_names].to_df()
ann = snakemake.params.annotation
pre = gex.copy()
sc.pp.normalize_total(pre, target_sum=1e4)
sc.pp.log1p(pre)
annotate_cell_types(
    pre,
    read_markers(snakemake.input.markers),
    batch_key="",  # one sample
    **{k: ann[k] for k in ("min_lineage_score", "min_confidence", "min_subset_score",
                           "min_proliferation_score", "default_subsets", "contaminant_lineages",
                           "ctrl_size", "n_bins")},
    seed=snakemake.params.seed,
)  # fmt: skip
gex.obs["qc_cell_type"] = pre.obs["cell_type"].astype(str)
cols = [
    "barcode",
    "total_counts",
    "n_genes_by_counts",
    "pct_counts_mt",
    "pct_counts_in_top_20_genes",
    "doublet_score",
    "low_quality",
    "doublet",
    "qc_cell_type",
]
write_tsv(gex.obs[cols].rename_axis("cell").reset_index(), snakemake.output.cells)
write_tsv(pd.DataFrame([{"sample": sample, **summary}]), snakemake.output.summary)
kept.write_h5ad(snakemake.output.h5ad, compression="gzip")
