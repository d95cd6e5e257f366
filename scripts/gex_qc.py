"""Rule gex_qc: read one sample, QC it, write the kept cells, the removed cells and the QC
tables. The removed cells get their cell type in rule gex_qc_by_cell_type, against the cohort."""

import pandas as pd

from cartrack.design import InputError
from cartrack.io import read_gex
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.params import QcParams
from cartrack.qc import run_qc
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
sample = snakemake.wildcards.sample
with exit_on_input_error(snakemake.log[0]):
    gex, prot = read_gex(snakemake.input.gex, sample=sample)
    try:
        params = QcParams.from_config(snakemake.params.cfg)
        kept, summary = run_qc(gex, params, seed=snakemake.params.seed)
    except InputError as error:
        where = f"sample '{sample}': gex file '{snakemake.input.gex}'"
        raise InputError(f"{where}: {error}") from None
if prot is not None:
    kept.obsm["prot_counts"] = prot[kept.obs_names].to_df()
cols = [
    "barcode",
    "total_counts",
    "n_genes_by_counts",
    "pct_counts_mt",
    "pct_counts_in_top_20_genes",
    "doublet_score",
    "low_quality",
    "doublet",
]
write_tsv(gex.obs[cols].rename_axis("cell").reset_index(), snakemake.output.cells)
write_tsv(pd.DataFrame([{"sample": sample, **summary}]), snakemake.output.summary)
kept.write_h5ad(snakemake.output.h5ad, compression="gzip")
removed = gex[~gex.obs_names.isin(kept.obs_names)].copy()  # raw counts
removed.obs = removed.obs[["sample", "low_quality", "doublet"]]
removed.write_h5ad(snakemake.output.removed, compression="gzip")
