"""Rule gex_integrate: merge the QC-passed samples and embed the cohort."""

import anndata as ad

from cartrack.integrate import embed, merge_samples, normalise
from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import setup_logging
from cartrack.params import IntegrationParams

setup_logging(snakemake.log[0])
params = IntegrationParams.from_config(snakemake.params.integration)
samples = [ad.read_h5ad(p) for p in snakemake.input.h5ads]
# samples that QC emptied (qc.on_empty_sample: drop) must not narrow the shared genes
samples = [a for a in samples if a.n_obs > 0]
adata = merge_samples(samples, snakemake.params.sheet)
normalise(adata, target_sum=params.target_sum)
embed(adata, params, seed=snakemake.params.seed)
adata.write_h5ad(snakemake.output.h5ad, compression=INTERMEDIATE_COMPRESSION)
