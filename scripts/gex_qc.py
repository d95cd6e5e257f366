"""Rule gex_qc: QC a group of samples (config ``qc.samples_per_job``, to spread Python's
start-up over several samples): read each, flag low-quality cells and doublets on the sample
alone, and write the group's kept cells, removed cells and QC tables. The removed cells get
their cell type in rule gex_qc_by_cell_type, against the cohort."""

import anndata as ad
import pandas as pd

from cartrack.design import InputError
from cartrack.integrate import merge_samples
from cartrack.io import INTERMEDIATE_COMPRESSION, read_gex
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.params import QcParams
from cartrack.qc import run_qc
from cartrack.tables import write_tsv

CELL_COLUMNS = [
    "barcode",
    "sample",
    "total_counts",
    "n_genes_by_counts",
    "pct_counts_mt",
    "pct_counts_in_top_20_genes",
    "doublet_score",
    "low_quality",
    "doublet",
]

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
params = QcParams.from_config(smk.params.cfg)
kept, removed, cells, summaries = [], [], [], []
for sample, path in zip(smk.params.samples, smk.input.gex, strict=True):
    with exit_on_input_error(smk.log[0]):
        gex, prot = read_gex(path, sample=sample)
        try:
            passed, summary = run_qc(gex, params, seed=smk.params.seed)
        except InputError as error:
            raise InputError(f"sample '{sample}': gex file '{path}': {error}") from None
    if prot is not None:
        passed.obsm["prot_counts"] = prot[passed.obs_names].to_df()
    kept.append(passed)
    out = gex[~gex.obs_names.isin(passed.obs_names)].copy()  # raw counts
    out.obs = out.obs[["sample", "low_quality", "doublet"]]
    removed.append(out)
    cells.append(gex.obs[CELL_COLUMNS].rename_axis("cell").reset_index())
    summaries.append({"sample": sample, **summary})

write_tsv(pd.concat(cells), smk.output.cells)
write_tsv(pd.DataFrame(summaries), smk.output.summary)
# samples that QC emptied (qc.on_empty_sample: drop) are left out of the merge
nonempty = [a for a in kept if a.n_obs]
merged = merge_samples(nonempty, smk.params.sheet) if nonempty else kept[0]
merged.write_h5ad(smk.output.h5ad, compression=INTERMEDIATE_COMPRESSION)
ad.concat(removed, join="outer", fill_value=0).write_h5ad(
    smk.output.removed, compression=INTERMEDIATE_COMPRESSION
)
